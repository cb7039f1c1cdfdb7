package openroutermappingprocessor

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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

// The README is the tables' documentation: every key of every table is
// named in it (a newcomer who adds a row is told where it is missing), and
// every token rule's source and provider.
func TestReadmeNamesEveryKey(t *testing.T) {
	b, err := os.ReadFile("README.md")
	require.NoError(t, err)
	readme := string(b)
	named := func(what, k string) {
		assert.Contains(t, readme, "`"+k+"`", "%s %s is not in the README", what, k)
	}
	for _, fs := range fieldSpecs {
		for _, s := range fs.keys {
			named("key", s.key)
		}
	}
	for _, cs := range contentSpecs {
		k := cs.key
		if strings.HasSuffix(k, ".") {
			k += "N" + cs.suffix
			if cs.suffix == "" {
				k += ".*"
			}
		}
		named("content key", k)
	}
	for _, es := range eventContentSpecs {
		named("event", es.event)
		named("event key", es.key)
	}
	for _, es := range embeddedSpecs {
		named("embedded member", es.path)
	}
	for _, us := range usageShapes {
		for _, m := range us.members {
			named("usage member", m.path)
		}
	}
	for _, tr := range tokenRules {
		for _, p := range tr.providers {
			named("provider prefix", p)
		}
		assert.Contains(t, readme, tr.version, "token rule version")
	}
	for _, dr := range dialectRules {
		k := dr.key
		if strings.HasSuffix(k, ".") {
			k += "*"
		}
		named("dialect key", k)
	}
}
