package storage

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// ColumnType is the portable type of a spans column.
type ColumnType int

const (
	Text ColumnType = iota
	Int
	Real
	Bool
	JSON // JSON object text (jsonb in PostgreSQL, TEXT in SQLite)
)

// Column is one column of the spans table.
type Column struct {
	Name string
	Type ColumnType
}

// Columns lists the spans columns in the order of Span.Values.
var Columns = []Column{
	{"project_id", Text}, {"trace_id", Text}, {"span_id", Text}, {"parent_span_id", Text},
	{"name", Text}, {"kind", Text}, {"status_code", Text}, {"status_message", Text},
	{"start_time_unix_nano", Int}, {"end_time_unix_nano", Int}, {"duration_ms", Real}, {"received_at_unix_nano", Int},
	{"is_generation", Bool}, {"session_id", Text}, {"customer_id", Text},
	{"model", Text}, {"requested_model", Text}, {"provider", Text}, {"operation", Text},
	{"input_tokens", Int}, {"output_tokens", Int}, {"total_tokens", Int},
	{"cached_input_tokens", Int}, {"cache_write_input_tokens", Int}, {"reasoning_tokens", Int},
	{"input_cost_usd", Real}, {"output_cost_usd", Real}, {"total_cost_usd", Real}, {"cost_source", Text},
	{"finish_reason", Text}, {"time_to_first_token_ms", Real}, {"streamed", Bool},
	{"prompt", Text}, {"completion", Text}, {"source", Text},
	{"config_key", Text}, {"config_version", Int}, {"prompt_key", Text}, {"prompt_version", Int},
	{"prompt_ab_test_key", Text}, {"prompt_variant_index", Int},
	{"attributes", JSON}, {"resource_attributes", JSON},
}

// ExperimentColumns are the spans columns that migration 4 added (the
// Fallom SDK experiment fields).
var ExperimentColumns = []string{
	"config_key", "config_version", "prompt_key", "prompt_version", "prompt_ab_test_key", "prompt_variant_index",
}

// NumKeyColumns is the number of leading primary-key columns in Columns.
const NumKeyColumns = 3

// ContentColumns are the columns retention clears (content_days). Once
// cleared (spans.content_cleared), a replay never brings them back.
var ContentColumns = []string{"prompt", "completion"}

// ReceivedAtColumn is kept from the first insert: a changed replay does not
// move a span's received time (and so its retention clock).
const ReceivedAtColumn = "received_at_unix_nano"

// Values returns the column values of s in the order of Columns. Pointer
// values are nil for NULL.
func (s *Span) Values() []any {
	return []any{
		s.ProjectID, s.TraceID, s.SpanID, s.ParentSpanID,
		s.Name, s.Kind, s.StatusCode, s.StatusMessage,
		s.StartTimeUnixNano, s.EndTimeUnixNano, s.DurationMs, s.ReceivedAtUnixNano,
		s.IsGeneration, s.SessionID, s.CustomerID,
		s.Model, s.RequestedModel, s.Provider, s.Operation,
		s.InputTokens, s.OutputTokens, s.TotalTokens,
		s.CachedInputTokens, s.CacheWriteInputTokens, s.ReasoningTokens,
		s.InputCostUSD, s.OutputCostUSD, s.TotalCostUSD, s.CostSource,
		s.FinishReason, s.TimeToFirstTokenMs, s.Streamed,
		s.Prompt, s.Completion, s.Source,
		s.ConfigKey, s.ConfigVersion, s.PromptKey, s.PromptVersion,
		s.PromptABTestKey, s.PromptVariantIndex,
		s.Attributes, s.ResourceAttributes,
	}
}

// UpdatableColumns are the columns a changed replay overwrites: everything
// but the key and the received time.
func UpdatableColumns() []string {
	var out []string
	for _, c := range Columns[NumKeyColumns:] {
		if c.Name != ReceivedAtColumn {
			out = append(out, c.Name)
		}
	}
	return out
}

// ColumnNames returns the names of Columns joined with ", ".
func ColumnNames() string {
	names := make([]string, len(Columns))
	for i, c := range Columns {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

// UsageColumns are the columns read back to compute usage deltas, in the
// order ScanUsage expects (after the three key columns).
const UsageColumns = "is_generation, start_time_unix_nano, model, customer_id, status_code, " +
	"input_tokens, output_tokens, total_tokens, cached_input_tokens, cache_write_input_tokens, reasoning_tokens, " +
	"input_cost_usd, output_cost_usd, total_cost_usd, " +
	"end_time_unix_nano, duration_ms, provider, session_id"

// UsageDeltaColumns are the usage_daily counters, in the order of
// UsageDelta.Values.
var UsageDeltaColumns = []string{
	"generations", "errors", "unknown_cost_generations",
	"input_tokens", "output_tokens", "total_tokens",
	"cached_input_tokens", "cache_write_input_tokens", "reasoning_tokens",
	"input_cost_nano_usd", "output_cost_nano_usd", "total_cost_nano_usd",
}

// Values returns the counters of d in the order of UsageDeltaColumns.
func (d *UsageDelta) Values() []int64 {
	out := make([]int64, 0, 12)
	for _, c := range d.counters() {
		out = append(out, *c)
	}
	return out
}

// SaturatingSum is the SQL (both dialects) of the counter col of table plus
// the same counter of excluded, clamped to the int64 range: the sum of a
// usage_daily row can then never fail (PostgreSQL 22003) nor turn into a
// REAL (SQLite) however many spans it counts.
func SaturatingSum(table, excluded, col string) string {
	const maxInt, minInt = "9223372036854775807", "(-9223372036854775807 - 1)"
	a, b := table+"."+col, excluded+"."+col
	return "CASE WHEN " + b + " > 0 AND " + a + " > " + maxInt + " - " + b + " THEN " + maxInt +
		" WHEN " + b + " < 0 AND " + a + " < " + minInt + " - " + b + " THEN " + minInt +
		" ELSE " + a + " + " + b + " END"
}

// Migration is one versioned schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// LoadMigrations reads NNNN_name.sql files from dir of fsys, sorted by
// version, and checks that versions run 1, 2, 3 ... without gaps.
func LoadMigrations(fsys embed.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, rest, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("storage: migration file %q is not named NNNN_name.sql", name)
		}
		body, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: rest, SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("storage: migrations must be numbered 1, 2, 3 ...: found %d at position %d", m.Version, i+1)
		}
	}
	return out, nil
}

// ErrSchemaTooNew is wrapped by Open when the database was migrated by a
// newer collector.
var ErrSchemaTooNew = fmt.Errorf("storage: the database schema is newer than this collector")
