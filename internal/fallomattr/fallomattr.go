// Package fallomattr names the canonical fields that the openroutermapping
// processor writes and the fallom exporter stores. It is the one contract
// between the two: each storage column of the `spans` table (DESIGN 2.5) that
// is not read straight off the span is carried as a span attribute named
// Prefix + column, so any stock exporter downstream carries it too.
package fallomattr

// Prefix starts every canonical attribute written by the processor.
const Prefix = "fallom."

// Resource attribute: the project of the API key that sent the data. Stamped
// by the processor from client.Info.Auth, because client.Info does not survive
// batching or persistent queues.
const ProjectID = "fallom.project_id"

// Span attributes, one per storage column (the column name is the key without
// the prefix).
const (
	IsGeneration          = "fallom.is_generation"            // bool
	SessionID             = "fallom.session_id"               // string
	CustomerID            = "fallom.customer_id"              // string
	Model                 = "fallom.model"                    // string
	RequestedModel        = "fallom.requested_model"          // string
	Provider              = "fallom.provider"                 // string
	Operation             = "fallom.operation"                // string
	InputTokens           = "fallom.input_tokens"             // int
	OutputTokens          = "fallom.output_tokens"            // int
	TotalTokens           = "fallom.total_tokens"             // int
	CachedInputTokens     = "fallom.cached_input_tokens"      // int
	CacheWriteInputTokens = "fallom.cache_write_input_tokens" // int
	ReasoningTokens       = "fallom.reasoning_tokens"         // int
	InputCostUSD          = "fallom.input_cost_usd"           // double
	OutputCostUSD         = "fallom.output_cost_usd"          // double
	TotalCostUSD          = "fallom.total_cost_usd"           // double
	CostSource            = "fallom.cost_source"              // string: reported | computed | unknown
	FinishReason          = "fallom.finish_reason"            // string
	TimeToFirstTokenMs    = "fallom.time_to_first_token_ms"   // double
	Streamed              = "fallom.streamed"                 // bool
	Prompt                = "fallom.prompt"                   // string: normalized JSON messages array
	Completion            = "fallom.completion"               // string: normalized JSON
	Source                = "fallom.source"                   // string: dialect name
)

// Fallom SDK experiment fields (DESIGN 6): span attributes the processor
// normalizes from wherever the SDK put them, and the exporter stores in the
// spans columns of the same names (config_version: sdkstore decides).
const (
	ConfigKey          = "fallom.config_key"           // string: the model A/B config (the SDK's configKey)
	ConfigVersion      = "fallom.config_version"       // int
	PromptKey          = "fallom.prompt_key"           // string: the managed prompt used
	PromptVersion      = "fallom.prompt_version"       // int
	PromptABTestKey    = "fallom.prompt_ab_test_key"   // string: the prompt A/B test
	PromptVariantIndex = "fallom.prompt_variant_index" // int: the test's variant, 0-based
)

// Cost sources.
const (
	CostReported = "reported"
	CostComputed = "computed"
	CostUnknown  = "unknown"
)

// Flags the processor sets when it had to change or doubt a value. They are
// not columns: the exporter keeps them in the `attributes` JSON.
const (
	FlagTruncated        = "fallom.truncated"         // string array: names of the fields that were truncated
	FlagTimestampSuspect = "fallom.timestamp_suspect" // string: why the span's timestamps are doubtful
	FlagContentDropped   = "fallom.content_dropped"   // bool: prompt/completion removed by the privacy setting
	// FlagTokensAdjusted lists why stored token counts differ from the
	// span's own figures (string array): the emitter counts exclusively
	// (input_excluded_cache, output_excluded_reasoning), or its figures
	// could not be inclusive (cache_exceeded_input, reasoning_exceeded_output,
	// total_recomputed, total_exceeds_parts).
	FlagTokensAdjusted = "fallom.tokens_adjusted"
	// FlagCostPartial names the part of a reported cost that the span did
	// not report (string array: "input" or "output"); the total is then the
	// part that was reported.
	FlagCostPartial = "fallom.cost_partial"
)

// PriceSource names the price table that computed a cost (cost_source =
// computed): "builtin@2025-11-30" or "<pricing file>:<import>@<date>". Not a
// column: the exporter keeps it in the `attributes` JSON.
const PriceSource = "fallom.price_source" // string

// DefaultProjectID is used by the exporter for data that reached it with no
// project stamped (e.g. a pipeline without fallomauth).
const DefaultProjectID = "default"

// Columns lists the canonical span attributes in storage-column order, so the
// exporter can map them without a second list.
var Columns = []string{
	IsGeneration, SessionID, CustomerID, Model, RequestedModel, Provider, Operation,
	InputTokens, OutputTokens, TotalTokens, CachedInputTokens, CacheWriteInputTokens, ReasoningTokens,
	InputCostUSD, OutputCostUSD, TotalCostUSD, CostSource,
	FinishReason, TimeToFirstTokenMs, Streamed, Prompt, Completion, Source,
}

// Column returns the storage column name of a canonical attribute key.
func Column(key string) string { return key[len(Prefix):] }

// Principal attribute names carried in client.Info.Auth by fallomauth.
const (
	AuthProjectID = "project_id"
	AuthKeyName   = "key_name"
)
