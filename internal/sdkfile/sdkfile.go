// Package sdkfile reads the SDK file (DESIGN 6): per project, the model A/B
// configs, prompts, prompt A/B tests and datasets that the fallomsdk receiver
// serves to the Fallom SDKs, in exactly the JSON shapes their parsers read
// (FALLOM_SDK.md 3-5).
//
//	projects:
//	  acme:
//	    configs:
//	      - key: summarizer
//	        versions:            # ascending; the last is current
//	          - version: 1
//	            variants: [{model: openai/gpt-4o-mini, weight: 50}, {model: anthropic/claude-haiku-4.5, weight: 50}]
//	    prompts:
//	      - key: onboarding
//	        versions:
//	          - {version: 1, system_prompt: "You help {{user_name}}.", user_template: "Hi {{user_name}}"}
//	    prompt_ab_tests:
//	      - key: onboarding-test
//	        versions:
//	          - version: 1
//	            variants: [{prompt_key: onboarding, prompt_version: 1, weight: 50}, {prompt_key: onboarding, weight: 50}]
//	    datasets:
//	      - key: golden
//	        versions:
//	          - version: 1
//	            entries: [{input: "...", output: "...", systemMessage: "...", metadata: {}}]
//
// Parse checks the whole file and names the project, key and version of each
// problem; a file that parses is served as is, so every answer has the shape
// the SDKs expect.
package sdkfile // import "github.com/fallom/fallom-collector/internal/sdkfile"

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxLabelLen bounds project names and keys: they end up in URLs, database
// rows and telemetry.
const MaxLabelLen = 128

// Operators are the targeting condition operators the SDKs evaluate
// (FALLOM_SDK.md 3.1).
var Operators = []string{"eq", "neq", "in", "nin", "contains", "startsWith", "endsWith"}

// weightTotal is what the variant weights of a config or prompt A/B test
// version must add up to: they are percentages, and the SDK gives whatever
// they leave below 100 to the last variant, which would make the file say
// one split and the SDK do another.
const weightTotal = 100

// weightTolerance absorbs binary rounding of decimal weights (33.3 + 33.3 + 33.4).
const weightTolerance = 1e-6

// fileDoc is the YAML layout.
type fileDoc struct {
	Projects map[string]*projectDoc `yaml:"projects"`
}

type projectDoc struct {
	Configs       []configDoc  `yaml:"configs"`
	Prompts       []promptDoc  `yaml:"prompts"`
	PromptABTests []abTestDoc  `yaml:"prompt_ab_tests"`
	Datasets      []datasetDoc `yaml:"datasets"`
}

type configDoc struct {
	Key      string             `yaml:"key"`
	Versions []configVersionDoc `yaml:"versions"`
}

type configVersionDoc struct {
	Version   int          `yaml:"version"`
	Variants  []Variant    `yaml:"variants"`
	Targeting *targetingIn `yaml:"targeting"`
}

// Variant is one model of a config version; Weight is a percentage.
type Variant struct {
	Model  string  `yaml:"model" json:"model"`
	Weight float64 `yaml:"weight" json:"weight"`
}

type targetingIn struct {
	Enabled           *bool              `yaml:"enabled"`
	IndividualTargets []IndividualTarget `yaml:"individualTargets"`
	Rules             []Rule             `yaml:"rules"`
}

// Targeting is a config version's targeting in the SDK's shape: both lists
// are always present (possibly empty) so either SDK can iterate them.
type Targeting struct {
	Enabled           bool               `json:"enabled"`
	IndividualTargets []IndividualTarget `json:"individualTargets"`
	Rules             []Rule             `json:"rules"`
}

// IndividualTarget sends the context whose Field equals Value to a variant.
type IndividualTarget struct {
	Field        string `yaml:"field" json:"field"`
	Value        any    `yaml:"value" json:"value"`
	VariantIndex int    `yaml:"variantIndex" json:"variantIndex"`
}

// Rule sends a context matching every condition to a variant.
type Rule struct {
	Conditions   []Condition `yaml:"conditions" json:"conditions"`
	VariantIndex int         `yaml:"variantIndex" json:"variantIndex"`
}

// Condition is one test of a rule.
type Condition struct {
	Field    string `yaml:"field" json:"field"`
	Operator string `yaml:"operator" json:"operator"`
	Value    any    `yaml:"value" json:"value"`
}

type promptDoc struct {
	Key      string             `yaml:"key"`
	Versions []promptVersionDoc `yaml:"versions"`
}

type promptVersionDoc struct {
	Version      int     `yaml:"version"`
	SystemPrompt *string `yaml:"system_prompt"`
	UserTemplate *string `yaml:"user_template"`
}

type abTestDoc struct {
	Key      string             `yaml:"key"`
	Versions []abTestVersionDoc `yaml:"versions"`
}

type abTestVersionDoc struct {
	Version  int             `yaml:"version"`
	Variants []PromptVariant `yaml:"variants"`
}

// PromptVariant is one arm of a prompt A/B test. A nil PromptVersion means
// the prompt's current version (JSON null, as the SDK expects).
type PromptVariant struct {
	PromptKey     string  `yaml:"prompt_key" json:"prompt_key"`
	PromptVersion *int    `yaml:"prompt_version" json:"prompt_version"`
	Weight        float64 `yaml:"weight" json:"weight"`
}

type datasetDoc struct {
	Key      string              `yaml:"key"`
	Name     string              `yaml:"name"`
	Versions []datasetVersionDoc `yaml:"versions"`
}

type datasetVersionDoc struct {
	Version int        `yaml:"version"`
	Entries []entryDoc `yaml:"entries"`
}

type entryDoc struct {
	Input         *string        `yaml:"input"`
	Output        *string        `yaml:"output"`
	SystemMessage *string        `yaml:"systemMessage"`
	Metadata      map[string]any `yaml:"metadata"`
}

// File is a validated SDK file, ready to serve. It is immutable: a reload
// builds a new one.
type File struct {
	projects map[string]*Project
}

// Project is what one project's keys are served. Its list answers are
// encoded once, when the file is read.
type Project struct {
	configsJSON       []byte
	promptsJSON       []byte
	promptABTestsJSON []byte
	// configVersions: key -> version -> bare config JSON.
	configVersions map[string]map[int][]byte
	// datasets: key -> versions in ascending order.
	datasets map[string][]datasetVersion

	// Counts, for logs.
	Configs, Prompts, PromptABTests, Datasets int
}

type datasetVersion struct {
	version int
	json    []byte
}

// Config is one config version as served (GET /configs elements and the
// bare answer of GET /configs/{key}/version/{n}).
type Config struct {
	Key       string     `json:"key"`
	Version   int        `json:"version"`
	Variants  []Variant  `json:"variants"`
	Targeting *Targeting `json:"targeting,omitempty"`
}

// Prompt is one prompt version as served: both strings always present.
type Prompt struct {
	Key          string `json:"key"`
	Version      int    `json:"version"`
	SystemPrompt string `json:"system_prompt"`
	UserTemplate string `json:"user_template"`
}

// PromptABTest is one prompt A/B test version as served.
type PromptABTest struct {
	Key      string          `json:"key"`
	Version  int             `json:"version"`
	Variants []PromptVariant `json:"variants"`
}

// DatasetEntry is one dataset entry as served: every field present.
type DatasetEntry struct {
	Input         string         `json:"input"`
	Output        string         `json:"output"`
	SystemMessage string         `json:"systemMessage"`
	Metadata      map[string]any `json:"metadata"`
}

type datasetAnswer struct {
	Dataset struct {
		Key  string `json:"key"`
		Name string `json:"name"`
	} `json:"dataset"`
	Version struct {
		Version int `json:"version"`
	} `json:"version"`
	Entries []DatasetEntry `json:"entries"`
}

// Empty is the file with no projects: every list answer is empty.
func Empty() *File { return &File{projects: map[string]*Project{}} }

// ErrEmptyFile is returned for a file with no YAML content. At start it
// means "nothing configured"; on a reload it usually means the file is being
// rewritten, so the last good file is kept. `projects: {}` configures nothing.
var ErrEmptyFile = errors.New("SDK file is empty (write `projects: {}` to configure nothing)")

// Parse reads and validates SDK file content. Every problem found is
// reported, each naming its project, key and version.
func Parse(data []byte) (*File, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, ErrEmptyFile
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var doc fileDoc
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, ErrEmptyFile
		}
		return nil, fmt.Errorf("SDK file is not valid: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("SDK file has more than one YAML document")
	}
	return build(&doc)
}

// Project returns what the project is served, or an empty project.
func (f *File) Project(id string) *Project {
	if p, ok := f.projects[id]; ok {
		return p
	}
	return emptyProject
}

// Projects lists the project ids in the file, sorted.
func (f *File) Projects() []string {
	out := make([]string, 0, len(f.projects))
	for id := range f.projects {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

var emptyProject = mustProject(&projectDoc{})

func mustProject(pd *projectDoc) *Project {
	p, errs := buildProject("", pd)
	if len(errs) > 0 {
		panic(errors.Join(errs...))
	}
	return p
}

// ConfigsJSON is the answer of GET /configs: {"configs":[...]}, every
// version of every config, ascending, so the last listed for a key is current.
func (p *Project) ConfigsJSON() []byte { return p.configsJSON }

// PromptsJSON is the answer of GET /prompts: {"prompts":[...]}.
func (p *Project) PromptsJSON() []byte { return p.promptsJSON }

// PromptABTestsJSON is the answer of GET /prompt-ab-tests: {"prompt_ab_tests":[...]}.
func (p *Project) PromptABTestsJSON() []byte { return p.promptABTestsJSON }

// ConfigVersionJSON is the bare config of GET /configs/{key}/version/{n}.
func (p *Project) ConfigVersionJSON(key string, version int) ([]byte, bool) {
	b, ok := p.configVersions[key][version]
	return b, ok
}

// DatasetJSON is the answer of GET /api/datasets/{key}: the given version,
// or the current (last) one when version is 0.
func (p *Project) DatasetJSON(key string, version int) ([]byte, bool) {
	versions := p.datasets[key]
	if len(versions) == 0 {
		return nil, false
	}
	if version == 0 {
		return versions[len(versions)-1].json, true
	}
	for _, v := range versions {
		if v.version == version {
			return v.json, true
		}
	}
	return nil, false
}

func build(doc *fileDoc) (*File, error) {
	f := &File{projects: make(map[string]*Project, len(doc.Projects))}
	var errs []error
	ids := make([]string, 0, len(doc.Projects))
	for id := range doc.Projects {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if err := checkLabel(id); err != nil {
			errs = append(errs, fmt.Errorf("project %q: name %w", id, err))
			continue
		}
		pd := doc.Projects[id]
		if pd == nil {
			pd = &projectDoc{}
		}
		p, perrs := buildProject(id, pd)
		errs = append(errs, perrs...)
		f.projects[id] = p
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return f, nil
}

// checkLabel checks a project name or a key. Keys are put into URL paths by
// the SDKs without encoding (FALLOM_SDK.md 3.2), so characters with a
// meaning in a URL are refused.
func checkLabel(v string) error {
	switch {
	case v == "":
		return errors.New("is empty")
	case len(v) > MaxLabelLen:
		return fmt.Errorf("is longer than %d characters", MaxLabelLen)
	}
	for _, r := range v {
		if r <= 0x20 || r == 0x7f || strings.ContainsRune("/?#%\\", r) {
			return errors.New("contains a space, a control character or one of / ? # % \\ (keys go into URL paths unencoded)")
		}
	}
	return nil
}

// where names the place of a problem: project "acme", config "x", version 2.
func where(project, kind, key string, version int) string {
	s := fmt.Sprintf("project %q", project)
	if kind != "" {
		s += fmt.Sprintf(", %s %q", kind, key)
	}
	if version != 0 {
		s += fmt.Sprintf(", version %d", version)
	}
	return s
}

// checkVersions checks that versions are positive and strictly ascending.
func checkVersions(project, kind, key string, versions []int) []error {
	var errs []error
	if len(versions) == 0 {
		return []error{fmt.Errorf("%s: has no versions (list at least one under `versions:`)", where(project, kind, key, 0))}
	}
	for i, v := range versions {
		if v < 1 {
			errs = append(errs, fmt.Errorf("%s: versions[%d]: version must be a positive integer, got %d", where(project, kind, key, 0), i, v))
			continue
		}
		if i > 0 && v <= versions[i-1] {
			errs = append(errs, fmt.Errorf("%s: versions must be listed in ascending order without repeats (the last is current): %d follows %d",
				where(project, kind, key, v), v, versions[i-1]))
		}
	}
	return errs
}

func checkWeights(at string, weights []float64) []error {
	var errs []error
	sum := 0.0
	for i, w := range weights {
		if math.IsNaN(w) || w < 0 || w > weightTotal {
			errs = append(errs, fmt.Errorf("%s: variants[%d]: weight %v is outside 0..100 (weights are percentages)", at, i, w))
		}
		sum += w
	}
	if len(errs) == 0 && math.Abs(sum-weightTotal) > weightTolerance {
		errs = append(errs, fmt.Errorf("%s: variant weights add up to %v, want 100 (the SDK would give the rest to the last variant)", at, sum))
	}
	return errs
}

func buildProject(id string, pd *projectDoc) (*Project, []error) {
	var errs []error
	p := &Project{
		configVersions: map[string]map[int][]byte{},
		datasets:       map[string][]datasetVersion{},
	}

	configs := []Config{}
	seen := map[string]bool{}
	for i, c := range pd.Configs {
		if err := checkLabel(c.Key); err != nil {
			errs = append(errs, fmt.Errorf("%s: configs[%d]: key %w", where(id, "", "", 0), i, err))
			continue
		}
		if seen[c.Key] {
			errs = append(errs, fmt.Errorf("%s: is listed twice (list its versions under one entry)", where(id, "config", c.Key, 0)))
			continue
		}
		seen[c.Key] = true
		vs := make([]int, len(c.Versions))
		for j, v := range c.Versions {
			vs[j] = v.Version
		}
		errs = append(errs, checkVersions(id, "config", c.Key, vs)...)
		p.configVersions[c.Key] = map[int][]byte{}
		for _, v := range c.Versions {
			cfg, verrs := buildConfig(id, c.Key, v)
			errs = append(errs, verrs...)
			b, err := json.Marshal(cfg)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where(id, "config", c.Key, v.Version), err))
				continue
			}
			configs = append(configs, cfg)
			p.configVersions[c.Key][v.Version] = b
		}
		p.Configs++
	}
	p.configsJSON = mustJSON(struct {
		Configs []Config `json:"configs"`
	}{configs})

	prompts := []Prompt{}
	promptVersions := map[string]map[int]bool{}
	for i, pr := range pd.Prompts {
		if err := checkLabel(pr.Key); err != nil {
			errs = append(errs, fmt.Errorf("%s: prompts[%d]: key %w", where(id, "", "", 0), i, err))
			continue
		}
		if promptVersions[pr.Key] != nil {
			errs = append(errs, fmt.Errorf("%s: is listed twice (list its versions under one entry)", where(id, "prompt", pr.Key, 0)))
			continue
		}
		promptVersions[pr.Key] = map[int]bool{}
		vs := make([]int, len(pr.Versions))
		for j, v := range pr.Versions {
			vs[j] = v.Version
			promptVersions[pr.Key][v.Version] = true
		}
		errs = append(errs, checkVersions(id, "prompt", pr.Key, vs)...)
		for _, v := range pr.Versions {
			if v.SystemPrompt == nil && v.UserTemplate == nil {
				errs = append(errs, fmt.Errorf("%s: has neither system_prompt nor user_template", where(id, "prompt", pr.Key, v.Version)))
			}
			prompts = append(prompts, Prompt{Key: pr.Key, Version: v.Version, SystemPrompt: deref(v.SystemPrompt), UserTemplate: deref(v.UserTemplate)})
		}
		p.Prompts++
	}
	p.promptsJSON = mustJSON(struct {
		Prompts []Prompt `json:"prompts"`
	}{prompts})

	tests := []PromptABTest{}
	seen = map[string]bool{}
	for i, t := range pd.PromptABTests {
		if err := checkLabel(t.Key); err != nil {
			errs = append(errs, fmt.Errorf("%s: prompt_ab_tests[%d]: key %w", where(id, "", "", 0), i, err))
			continue
		}
		if seen[t.Key] {
			errs = append(errs, fmt.Errorf("%s: is listed twice (list its versions under one entry)", where(id, "prompt A/B test", t.Key, 0)))
			continue
		}
		seen[t.Key] = true
		vs := make([]int, len(t.Versions))
		for j, v := range t.Versions {
			vs[j] = v.Version
		}
		errs = append(errs, checkVersions(id, "prompt A/B test", t.Key, vs)...)
		for _, v := range t.Versions {
			at := where(id, "prompt A/B test", t.Key, v.Version)
			if len(v.Variants) == 0 {
				errs = append(errs, fmt.Errorf("%s: has no variants", at))
			}
			weights := make([]float64, len(v.Variants))
			variants := make([]PromptVariant, len(v.Variants))
			for j, pv := range v.Variants {
				weights[j] = pv.Weight
				variants[j] = pv
				switch {
				case pv.PromptKey == "":
					errs = append(errs, fmt.Errorf("%s: variants[%d]: prompt_key is required", at, j))
				case promptVersions[pv.PromptKey] == nil:
					errs = append(errs, fmt.Errorf("%s: variants[%d]: prompt %q is not among this project's prompts (the SDK would fail to resolve it)", at, j, pv.PromptKey))
				case pv.PromptVersion != nil && !promptVersions[pv.PromptKey][*pv.PromptVersion]:
					errs = append(errs, fmt.Errorf("%s: variants[%d]: prompt %q has no version %d", at, j, pv.PromptKey, *pv.PromptVersion))
				}
			}
			if len(v.Variants) > 0 {
				errs = append(errs, checkWeights(at, weights)...)
			}
			tests = append(tests, PromptABTest{Key: t.Key, Version: v.Version, Variants: variants})
		}
		p.PromptABTests++
	}
	p.promptABTestsJSON = mustJSON(struct {
		PromptABTests []PromptABTest `json:"prompt_ab_tests"`
	}{tests})

	seen = map[string]bool{}
	for i, d := range pd.Datasets {
		if err := checkLabel(d.Key); err != nil {
			errs = append(errs, fmt.Errorf("%s: datasets[%d]: key %w", where(id, "", "", 0), i, err))
			continue
		}
		if seen[d.Key] {
			errs = append(errs, fmt.Errorf("%s: is listed twice (list its versions under one entry)", where(id, "dataset", d.Key, 0)))
			continue
		}
		seen[d.Key] = true
		vs := make([]int, len(d.Versions))
		for j, v := range d.Versions {
			vs[j] = v.Version
		}
		errs = append(errs, checkVersions(id, "dataset", d.Key, vs)...)
		name := d.Name
		if name == "" {
			name = d.Key
		}
		for _, v := range d.Versions {
			var ans datasetAnswer
			ans.Dataset.Key, ans.Dataset.Name = d.Key, name
			ans.Version.Version = v.Version
			ans.Entries = make([]DatasetEntry, len(v.Entries))
			for j, e := range v.Entries {
				if e.Input == nil {
					errs = append(errs, fmt.Errorf("%s: entries[%d]: input is required", where(id, "dataset", d.Key, v.Version), j))
				}
				md := e.Metadata
				if md == nil {
					md = map[string]any{}
				}
				ans.Entries[j] = DatasetEntry{Input: deref(e.Input), Output: deref(e.Output), SystemMessage: deref(e.SystemMessage), Metadata: md}
			}
			b, err := json.Marshal(ans)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where(id, "dataset", d.Key, v.Version), err))
				continue
			}
			p.datasets[d.Key] = append(p.datasets[d.Key], datasetVersion{version: v.Version, json: b})
		}
		p.Datasets++
	}
	return p, errs
}

func buildConfig(project, key string, v configVersionDoc) (Config, []error) {
	at := where(project, "config", key, v.Version)
	var errs []error
	if len(v.Variants) == 0 {
		errs = append(errs, fmt.Errorf("%s: has no variants", at))
	}
	weights := make([]float64, len(v.Variants))
	for i, vr := range v.Variants {
		weights[i] = vr.Weight
		if strings.TrimSpace(vr.Model) == "" {
			errs = append(errs, fmt.Errorf("%s: variants[%d]: model is required", at, i))
		}
	}
	if len(v.Variants) > 0 {
		errs = append(errs, checkWeights(at, weights)...)
	}
	cfg := Config{Key: key, Version: v.Version, Variants: append([]Variant{}, v.Variants...)}
	if t := v.Targeting; t != nil {
		out := &Targeting{Enabled: t.Enabled == nil || *t.Enabled, IndividualTargets: []IndividualTarget{}, Rules: []Rule{}}
		for i, it := range t.IndividualTargets {
			if it.Field == "" {
				errs = append(errs, fmt.Errorf("%s: targeting.individualTargets[%d]: field is required", at, i))
			}
			if !isScalar(it.Value) {
				errs = append(errs, fmt.Errorf("%s: targeting.individualTargets[%d]: value must be a string, number or boolean", at, i))
			}
			if it.VariantIndex < 0 || it.VariantIndex >= len(v.Variants) {
				errs = append(errs, fmt.Errorf("%s: targeting.individualTargets[%d]: variantIndex %d is not a variant (0..%d)", at, i, it.VariantIndex, len(v.Variants)-1))
			}
			out.IndividualTargets = append(out.IndividualTargets, it)
		}
		for i, r := range t.Rules {
			if len(r.Conditions) == 0 {
				errs = append(errs, fmt.Errorf("%s: targeting.rules[%d]: has no conditions", at, i))
			}
			for j, c := range r.Conditions {
				if err := checkCondition(c); err != nil {
					errs = append(errs, fmt.Errorf("%s: targeting.rules[%d].conditions[%d]: %w", at, i, j, err))
				}
			}
			if r.VariantIndex < 0 || r.VariantIndex >= len(v.Variants) {
				errs = append(errs, fmt.Errorf("%s: targeting.rules[%d]: variantIndex %d is not a variant (0..%d)", at, i, r.VariantIndex, len(v.Variants)-1))
			}
			if r.Conditions == nil {
				r.Conditions = []Condition{}
			}
			out.Rules = append(out.Rules, r)
		}
		cfg.Targeting = out
	}
	return cfg, errs
}

func checkCondition(c Condition) error {
	if c.Field == "" {
		return errors.New("field is required")
	}
	switch c.Operator {
	case "eq", "neq":
		if !isScalar(c.Value) {
			return fmt.Errorf("operator %s needs a string, number or boolean value", c.Operator)
		}
	case "in", "nin":
		list, ok := c.Value.([]any)
		if !ok {
			return fmt.Errorf("operator %s needs a list value", c.Operator)
		}
		for _, e := range list {
			if !isScalar(e) {
				return fmt.Errorf("operator %s needs a list of strings, numbers or booleans", c.Operator)
			}
		}
	case "contains", "startsWith", "endsWith":
		if _, ok := c.Value.(string); !ok {
			return fmt.Errorf("operator %s needs a string value", c.Operator)
		}
	default:
		return fmt.Errorf("unknown operator %q (known: %s)", c.Operator, strings.Join(Operators, ", "))
	}
	return nil
}

func isScalar(v any) bool {
	switch v.(type) {
	case string, bool, int, int64, uint64, float64:
		return true
	}
	return false
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own types, which always encode
	}
	return b
}
