package openroutermappingprocessor

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/fallom/fallom-collector/internal/fallomattr"
)

// Every column the exporter stores is also read back as the top-precedence
// source of its own field, so mapping twice maps the same and junk in a
// fallom.* key is removed rather than stored.
func TestEveryColumnIsASource(t *testing.T) {
	for _, col := range fallomattr.Columns {
		r, ok := exactRules[col]
		if !assert.True(t, ok, col) {
			continue
		}
		top := false
		for _, tg := range r.targets {
			top = top || tg.rank == 0
		}
		if r.content != nil {
			top = top || r.rank == 0
		}
		assert.True(t, top, "%s is not its field's first key", col)
	}
}

// The tables are consistent: no key listed twice for one field, prefixes end
// with a dot, every dialect has a name.
func TestTablesAreConsistent(t *testing.T) {
	for _, fs := range fieldSpecs {
		seen := map[string]bool{}
		for _, s := range fs.keys {
			assert.False(t, seen[s.key], "duplicate key %s", s.key)
			seen[s.key] = true
		}
	}
	for _, pr := range prefixRules {
		assert.True(t, strings.HasSuffix(pr.prefix, "."), pr.prefix)
	}
	for d := dOtelGenAI; d <= dOpenRouter; d++ {
		assert.NotEmpty(t, dialectNames[d])
	}
	assert.Equal(t, dOpenRouter, dialectOfKey("trace.metadata.openrouter.provider_name"))
	assert.Equal(t, dTraceloop, dialectOfKey("gen_ai.prompt.0.role"))
	assert.Equal(t, dOtelGenAI, dialectOfKey("gen_ai.prompt"))
	assert.Equal(t, dNone, dialectOfKey("http.method"))
}
