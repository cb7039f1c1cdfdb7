package sdkfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// designExample is the example of DESIGN 6, verbatim.
const designExample = `
projects:
  acme:
    configs:
      - key: summarizer
        versions:            # ascending; the last is current
          - version: 1
            variants: [{model: openai/gpt-4o-mini, weight: 50}, {model: anthropic/claude-haiku-4.5, weight: 50}]
            # targeting: {...}  optional, the SDK's shape
    prompts:
      - key: onboarding
        versions:
          - {version: 1, system_prompt: "You help {{user_name}}.", user_template: "Hi {{user_name}}"}
    prompt_ab_tests:
      - key: onboarding-test
        versions:
          - version: 1
            variants: [{prompt_key: onboarding, prompt_version: 1, weight: 50}, {prompt_key: onboarding, weight: 50}]
    datasets:
      - key: golden
        versions:
          - version: 1
            entries: [{input: "...", output: "...", systemMessage: "...", metadata: {}}]
`

func TestDesignExample(t *testing.T) {
	f, err := Parse([]byte(designExample))
	require.NoError(t, err)
	assert.Equal(t, []string{"acme"}, f.Projects())
	p := f.Project("acme")
	assert.JSONEq(t, `{"configs":[{"key":"summarizer","version":1,"variants":[{"model":"openai/gpt-4o-mini","weight":50},{"model":"anthropic/claude-haiku-4.5","weight":50}]}]}`,
		string(p.ConfigsJSON()))
	assert.JSONEq(t, `{"prompts":[{"key":"onboarding","version":1,"system_prompt":"You help {{user_name}}.","user_template":"Hi {{user_name}}"}]}`,
		string(p.PromptsJSON()))
	assert.JSONEq(t, `{"prompt_ab_tests":[{"key":"onboarding-test","version":1,"variants":[{"prompt_key":"onboarding","prompt_version":1,"weight":50},{"prompt_key":"onboarding","prompt_version":null,"weight":50}]}]}`,
		string(p.PromptABTestsJSON()))
	b, ok := p.DatasetJSON("golden", 0)
	require.True(t, ok)
	assert.JSONEq(t, `{"dataset":{"key":"golden","name":"golden"},"version":{"version":1},"entries":[{"input":"...","output":"...","systemMessage":"...","metadata":{}}]}`, string(b))
	b, ok = p.ConfigVersionJSON("summarizer", 1)
	require.True(t, ok)
	assert.JSONEq(t, `{"key":"summarizer","version":1,"variants":[{"model":"openai/gpt-4o-mini","weight":50},{"model":"anthropic/claude-haiku-4.5","weight":50}]}`, string(b))

	// An unknown project is served empty lists, never null.
	other := f.Project("other")
	assert.Equal(t, `{"configs":[]}`, string(other.ConfigsJSON()))
	assert.Equal(t, `{"prompts":[]}`, string(other.PromptsJSON()))
	assert.Equal(t, `{"prompt_ab_tests":[]}`, string(other.PromptABTestsJSON()))
}

// Every problem is reported, each naming its project, key and version.
func TestValidationErrors(t *testing.T) {
	const bad = `
projects:
  acme:
    configs:
      - key: summarizer
        versions:
          - version: 2
            variants: [{model: a, weight: 60}, {model: b, weight: 60}]
          - version: 1
            variants: [{model: "", weight: 100}]
            targeting:
              individualTargets: [{field: customerId, value: vip, variantIndex: 3}]
              rules: [{conditions: [{field: plan, operator: like, value: x}], variantIndex: 0}]
      - key: summarizer
        versions: [{version: 1, variants: [{model: a, weight: 100}]}]
      - key: "bad/key"
        versions: [{version: 1, variants: [{model: a, weight: 100}]}]
      - key: empty
        versions: []
    prompts:
      - key: onboarding
        versions:
          - {version: 1}
    prompt_ab_tests:
      - key: t
        versions:
          - version: 1
            variants: [{prompt_key: onboarding, prompt_version: 7, weight: 50}, {prompt_key: nope, weight: 50}]
    datasets:
      - key: golden
        versions:
          - version: 1
            entries: [{output: "x"}]
  beta:
    configs:
      - key: c
        versions: [{version: 1, variants: [{model: a, weight: -5}, {model: b, weight: 105}]}]
`
	_, err := Parse([]byte(bad))
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		`project "acme", config "summarizer", version 2: variant weights add up to 120, want 100`,
		`project "acme", config "summarizer", version 1: versions must be listed in ascending order without repeats (the last is current): 1 follows 2`,
		`project "acme", config "summarizer", version 1: variants[0]: model is required`,
		`project "acme", config "summarizer", version 1: targeting.individualTargets[0]: variantIndex 3 is not a variant (0..0)`,
		`project "acme", config "summarizer", version 1: targeting.rules[0].conditions[0]: unknown operator "like"`,
		`project "acme", config "summarizer": is listed twice`,
		`project "acme": configs[2]: key contains a space, a control character or one of / ? # % \`,
		`project "acme", config "empty": has no versions`,
		`project "acme", prompt "onboarding", version 1: has neither system_prompt nor user_template`,
		`project "acme", prompt A/B test "t", version 1: variants[0]: prompt "onboarding" has no version 7`,
		`project "acme", prompt A/B test "t", version 1: variants[1]: prompt "nope" is not among this project's prompts`,
		`project "acme", dataset "golden", version 1: entries[0]: input is required`,
		`project "beta", config "c", version 1: variants[0]: weight -5 is outside 0..100`,
		`project "beta", config "c", version 1: variants[1]: weight 105 is outside 0..100`,
	} {
		assert.Contains(t, msg, want)
	}
}

func TestParseShapeErrors(t *testing.T) {
	_, err := Parse([]byte("projects:\n  acme:\n    configs:\n      - key: x\n        versons: []\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "line 5: field versons not found")

	_, err = Parse([]byte("projects: [1, 2]\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "SDK file is not valid")

	_, err = Parse([]byte("  \n# only a comment\n"))
	assert.True(t, errors.Is(err, ErrEmptyFile), "%v", err)

	_, err = Parse([]byte("projects: {}\n---\nprojects: {}\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "more than one YAML document")

	f, err := Parse([]byte("projects: {}\n"))
	require.NoError(t, err)
	assert.Empty(t, f.Projects())

	_, err = Parse([]byte("projects:\n  \"a b\": {}\n"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `project "a b": name contains a space`)

	// Targeting values must be what the SDK compares with ===.
	_, err = Parse([]byte(`projects:
  acme:
    configs:
      - key: c
        versions:
          - version: 1
            variants: [{model: a, weight: 50}, {model: b, weight: 50}]
            targeting:
              rules:
                - conditions: [{field: plan, operator: in, value: enterprise}]
                  variantIndex: 1
                - conditions: [{field: email, operator: endsWith, value: 5}]
                  variantIndex: 1
`))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `targeting.rules[0].conditions[0]: operator in needs a list value`)
	assert.Contains(t, err.Error(), `targeting.rules[1].conditions[0]: operator endsWith needs a string value`)
}

// Targeting as served: both lists always present, enabled defaulting to
// true as in the SDKs (enabled !== false).
func TestTargetingShape(t *testing.T) {
	f, err := Parse([]byte(`projects:
  acme:
    configs:
      - key: c
        versions:
          - version: 1
            variants: [{model: a, weight: 33.3}, {model: b, weight: 33.3}, {model: c, weight: 33.4}]
            targeting:
              rules:
                - conditions: [{field: plan, operator: eq, value: pro}, {field: seats, operator: nin, value: [1, 2]}]
                  variantIndex: 2
`))
	require.NoError(t, err)
	b, _ := f.Project("acme").ConfigVersionJSON("c", 1)
	var got map[string]any
	require.NoError(t, json.Unmarshal(b, &got))
	assert.Equal(t, map[string]any{
		"enabled":           true,
		"individualTargets": []any{},
		"rules": []any{map[string]any{"variantIndex": float64(2), "conditions": []any{
			map[string]any{"field": "plan", "operator": "eq", "value": "pro"},
			map[string]any{"field": "seats", "operator": "nin", "value": []any{float64(1), float64(2)}},
		}}},
	}, got["targeting"])
}

func TestValidateCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	require.NoError(t, os.WriteFile(good, []byte(designExample), 0o600))
	var out bytes.Buffer
	cmd := NewCommand()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"validate", good})
	require.NoError(t, cmd.Execute())
	assert.Contains(t, out.String(), "valid: 1 projects, 1 configs, 1 prompts, 1 prompt A/B tests, 1 datasets")

	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte(strings.Replace(designExample, "weight: 50}, {model: anthropic", "weight: 40}, {model: anthropic", 1)), 0o600))
	out.Reset()
	cmd = NewCommand()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"validate", bad})
	err := cmd.Execute()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `project "acme", config "summarizer", version 1: variant weights add up to 90`)

	t.Setenv(EnvSDKFile, good)
	out.Reset()
	cmd = NewCommand()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"validate"})
	require.NoError(t, cmd.Execute())
	assert.Contains(t, out.String(), good+": valid")
}
