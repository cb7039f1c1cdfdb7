package openroutermappingprocessor // import "github.com/fallom/fallom-collector/processor/openroutermappingprocessor"

import "strings"

// This file is the mapping, as data. Each canonical field has one list of
// source keys in precedence order (the first present and readable key wins):
// the field's own fallom.* key (so a span processed twice maps the same),
// then vendor-native keys, current semconv, deprecated semconv, and the other
// dialects. Adding a dialect is adding rows here.

// field is a slot the span mapper fills while reading attributes once.
type field uint8

const (
	fSession field = iota
	fCustomer
	fModel
	fRequestedModel
	fProvider
	fOperation
	fInputTokens
	fOutputTokens
	fTotalTokens
	fCachedTokens
	fCacheWriteTokens
	fCacheWrite5m // OpenRouter splits cache writes by TTL; summed when the total is absent
	fCacheWrite1h
	fReasoningTokens
	fInputCost
	fOutputCost
	fTotalCost
	fCostSource // an incoming fallom.cost_source (re-processing keeps "computed")
	fFinishReason
	fTTFTms
	fStreamed
	fIsGeneration // a verdict from the is_generation rules below
	fUsageJSON    // Langfuse usage_details
	fCostJSON     // Langfuse cost_details
	fSource       // an incoming fallom.source
	// Witnesses of token semantics (see tokenRules): never stored.
	fInputNoCache // input tokens without cache reads or writes
	fOutputText   // output tokens without reasoning
	// JSON values whose members feed fields (see embeddedSpecs).
	fProviderMetadata // Vercel ai.response.providerMetadata
	fInvocationParams // OpenInference llm.invocation_parameters
	// A point in time that gives the time to first token (minus the span's start).
	fCompletionStart
	// Fallom SDK experiment fields (DESIGN 6), written as fallom.* attributes.
	fConfigKey
	fConfigVersion
	fPromptKey
	fPromptVersion
	fPromptABTestKey
	fPromptVariantIndex
	// Fallom SDK TraceData status, for a span whose receiver left the
	// span's own status unset.
	fStatus
	fErrorMessage
	// Fallom SDK JSON strings whose members feed fields (see embeddedSpecs).
	fRawUsage    // fallom.raw.usage: the provider's own usage object
	fRawRequest  // fallom.raw.request (also content)
	fRawResponse // fallom.raw.response (also content)
	nFields
)

// reader says how a raw attribute value becomes a field value. Readers accept
// the wrong types seen in the wild (see read.go).
type reader uint8

const (
	rString reader = iota
	rInt
	rDouble
	rSecondsToMs // a duration in seconds stored as milliseconds
	rBool
	rFinishReason // a string, a JSON array in a string, or an array
	rVerdict      // a value matched against a verdict table (is_generation)
	rJSON         // a JSON object kept as text for a later, rare parse
	rTimestamp    // an RFC 3339 time (optionally JSON-quoted), as unix nanoseconds
)

type source struct {
	key     string
	verdict verdicts // only for rVerdict
}

type fieldSpec struct {
	field  field
	reader reader
	keys   []source
}

func keys(ks ...string) []source {
	out := make([]source, len(ks))
	for i, k := range ks {
		out[i] = source{key: k}
	}
	return out
}

// fieldSpecs: one row per canonical field, keys in precedence order (a field
// whose keys need different readers spans consecutive rows).
var fieldSpecs = []fieldSpec{
	{fSession, rString, keys(
		"fallom.session_id",      // Fallom SDK
		"session.id",             // OpenRouter (request session_id), OpenInference
		"gen_ai.conversation.id", // semconv v1.34+, Logfire/pydantic-ai
		"traceloop.association.properties.session_id", // OpenLLMetry
		"ai.telemetry.metadata.sessionId",             // Vercel AI SDK
		"langfuse.session.id",                         // Langfuse
		"session_id",
	)},
	{fCustomer, rString, keys(
		"fallom.customer_id",
		"user.id", // OpenRouter (request user), OpenInference
		"traceloop.association.properties.user_id",
		"llm.user", // OpenLLMetry: the request's end user
		"ai.telemetry.metadata.userId",
		"langfuse.user.id",
		"metadata.user_api_key_end_user_id", // LiteLLM proxy
		"enduser.id",                        // older OTel general semconv
		"customer_id",                       // Fallom SDK TraceData
	)},
	// The model that served the call; falls back to the request model (rows
	// after the response keys).
	{fModel, rString, keys(
		"fallom.model",
		"gen_ai.response.model",
		"ai.response.model",
		"llm.response.model_name",         // OpenInference
		"llm.model_name",                  // OpenInference
		"langfuse.observation.model.name", // Langfuse
		"gen_ai.request.model",
		"llm.request.model_name",
		"ai.model.id",
		"model", // Fallom SDK TraceData: the response model if known, else the request model
	)}, // then model / modelId inside fallom.raw.response (embeddedSpecs)
	{fRequestedModel, rString, keys(
		"fallom.requested_model",
		"gen_ai.request.model",
		"llm.request.model_name", // OpenInference
		"ai.model.id",
	)}, // then llm.invocation_parameters and fallom.raw.request {"model": ...} (embeddedSpecs)
	{fProvider, rString, keys(
		"fallom.provider",
		"trace.metadata.openrouter.provider_name", // OpenRouter: the serving provider
		"gen_ai.provider.name",                    // semconv v1.37 (OpenRouter: the model author)
		"gen_ai.system",                           // deprecated semconv
		"llm.provider",                            // OpenInference
		"llm.system",
		"ai.model.provider", // Vercel AI SDK
	)},
	{fOperation, rString, keys(
		"fallom.operation",
		"gen_ai.operation.name",
		"llm.request.type", // OpenLLMetry
		"ai.operationId",   // Vercel AI SDK
		"fallom.method",    // Fallom SDK: the wrapped method (chat.completions.create, generateText...)
	)},
	{fInputTokens, rInt, keys(
		"fallom.input_tokens",
		"gen_ai.usage.input_tokens",  // OpenRouter, semconv v1.28+
		"gen_ai.usage.prompt_tokens", // deprecated semconv, OpenLLMetry, LiteLLM
		"llm.token_count.prompt",     // OpenInference
		"ai.usage.inputTokens",       // Vercel v5+
		"ai.usage.promptTokens",      // Vercel v3-v4
		"llm.usage.prompt_tokens",
		"trace.metadata.openrouter_generation.tokens_prompt",
		"fallom.prompt_tokens", // Fallom SDK TS 0.1.x TraceData (FALLOM_SDK.md 5.3); total_tokens is fallom.total_tokens
	)},
	{fOutputTokens, rInt, keys(
		"fallom.output_tokens",
		"gen_ai.usage.output_tokens",
		"gen_ai.usage.completion_tokens",
		"llm.token_count.completion",
		"ai.usage.outputTokens",
		"ai.usage.completionTokens",
		"llm.usage.completion_tokens",
		"trace.metadata.openrouter_generation.tokens_completion",
		"fallom.completion_tokens",
	)},
	{fTotalTokens, rInt, keys(
		"fallom.total_tokens",
		"gen_ai.usage.total_tokens",
		"llm.usage.total_tokens", // OpenLLMetry
		"llm.token_count.total",  // OpenInference
		"ai.usage.totalTokens",   // Vercel v5+
	)},
	{fCachedTokens, rInt, keys(
		"fallom.cached_input_tokens",
		"gen_ai.usage.input_tokens.cached",          // OpenRouter
		"gen_ai.usage.cache_read.input_tokens",      // semconv v1.40
		"gen_ai.usage.cache_read_input_tokens",      // older semconv, OpenLLMetry
		"llm.token_count.prompt_details.cache_read", // OpenInference
		"ai.usage.cachedInputTokens",                // Vercel v5+
		"ai.usage.inputTokenDetails.cacheReadTokens",
	)},
	{fCacheWriteTokens, rInt, keys(
		"fallom.cache_write_input_tokens",
		"gen_ai.usage.input_tokens.cache_write",      // OpenRouter
		"gen_ai.usage.cache_creation.input_tokens",   // semconv v1.40
		"gen_ai.usage.cache_write.input_tokens",      // current instrumentations of Anthropic (issue 13)
		"gen_ai.usage.cache_creation_input_tokens",   // older semconv, OpenLLMetry
		"llm.token_count.prompt_details.cache_write", // OpenInference
		"ai.usage.inputTokenDetails.cacheWriteTokens",
	)},
	{fCacheWrite5m, rInt, keys("gen_ai.usage.input_tokens.cache_write_5m")},
	{fCacheWrite1h, rInt, keys("gen_ai.usage.input_tokens.cache_write_1h")},
	{fReasoningTokens, rInt, keys(
		"fallom.reasoning_tokens",
		"gen_ai.usage.output_tokens.reasoning",         // OpenRouter
		"gen_ai.usage.reasoning.output_tokens",         // semconv v1.41
		"gen_ai.usage.reasoning_tokens",                // older
		"llm.token_count.completion_details.reasoning", // OpenInference
		"ai.usage.reasoningTokens",                     // Vercel v5+
		"ai.usage.outputTokenDetails.reasoningTokens",
	)},
	{fInputCost, rDouble, keys(
		"fallom.input_cost_usd",
		"gen_ai.usage.input_cost", // OpenRouter
		"gen_ai.cost.input_cost",  // LiteLLM
		"llm.cost.prompt",         // OpenInference
	)},
	{fOutputCost, rDouble, keys(
		"fallom.output_cost_usd",
		"gen_ai.usage.output_cost",
		"gen_ai.cost.output_cost",
		"llm.cost.completion",
	)},
	{fTotalCost, rDouble, keys(
		"fallom.total_cost_usd",
		"gen_ai.usage.total_cost",                    // OpenRouter: what it charged
		"trace.metadata.openrouter_generation.usage", // OpenRouter "additional generation metadata"
		"gen_ai.cost.total_cost",                     // LiteLLM
		"llm.cost.total",                             // OpenInference
		"operation.cost",                             // Logfire / pydantic-ai
		"gen_ai.usage.cost",
	)},
	{fCostSource, rString, keys("fallom.cost_source")},
	{fFinishReason, rFinishReason, keys(
		"fallom.finish_reason",
		"gen_ai.response.finish_reason",  // OpenRouter: normalized (stop, tool_calls, length)
		"gen_ai.response.finish_reasons", // semconv: array (OpenRouter: a JSON array in a string)
		"ai.response.finishReason",       // Vercel AI SDK
		"llm.finish_reason",              // OpenInference
		"llm.response.finish_reason",
		"trace.metadata.openrouter.finish_reason", // OpenRouter: the provider's native reason
	)},
	{fTTFTms, rDouble, keys(
		"fallom.time_to_first_token_ms",
		"trace.metadata.openrouter.first_token_ms", // OpenRouter, ms
	)},
	{fTTFTms, rSecondsToMs, keys("gen_ai.response.time_to_first_chunk")}, // semconv, seconds
	{fTTFTms, rDouble, keys(
		"ai.response.msToFirstChunk", // Vercel AI SDK, ms
		"ai.stream.msToFirstChunk",   // Vercel AI SDK (older), ms
		"time_to_first_token_ms",     // Fallom SDK native
	)},
	{fStreamed, rBool, keys(
		"fallom.streamed",
		"fallom.is_streaming",                           // Fallom SDK stream wrappers
		"gen_ai.request.stream",                         // semconv
		"trace.metadata.openrouter_generation.streamed", // OpenRouter
		"gen_ai.is_streaming",                           // older
		"llm.is_streaming",                              // OpenLLMetry, LiteLLM ("True"/"False")
		"is_streaming",                                  // Fallom SDK native
	)},
	// Vercel AI SDK: the operation says whether the call streamed.
	{fStreamed, rVerdict, []source{{key: "ai.operationId", verdict: verdicts{match: map[string]bool{
		"ai.streamtext.dostream": true, "ai.streamobject.dostream": true, "ai.streamtext": true, "ai.streamobject": true,
		"ai.generatetext.dogenerate": false, "ai.generateobject.dogenerate": false, "ai.generatetext": false, "ai.generateobject": false,
	}, other: vNone}}}},
	{fIsGeneration, rVerdict, []source{
		{key: "fallom.is_generation", verdict: boolVerdicts},
		// Fallom SDK: TraceData kind (llm spans are model calls), as the
		// receiver keeps it; bare "kind" comes last (below).
		{key: "fallom.kind", verdict: fallomKinds},
		{key: "fallom.span_kind", verdict: fallomKinds},
		// OpenRouter: the root has span.type=generation, its children
		// ("generation", "provider attempt N: ...") have span.type=span.
		{key: "span.type", verdict: verdicts{match: map[string]bool{"generation": true}, other: vFalse}},
		{key: "langfuse.observation.type", verdict: verdicts{match: map[string]bool{"generation": true, "embedding": true}, other: vFalse}},
		{key: "openinference.span.kind", verdict: verdicts{match: map[string]bool{"llm": true, "embedding": true}, other: vFalse}},
		// Vercel AI SDK v3-v6: only the inner doGenerate/doStream/doEmbed
		// spans are model calls; the outer ai.generateText etc. aggregate.
		{key: "ai.operationId", verdict: verdicts{match: map[string]bool{
			"ai.generatetext.dogenerate": true, "ai.streamtext.dostream": true,
			"ai.generateobject.dogenerate": true, "ai.streamobject.dostream": true,
			"ai.embed.doembed": true, "ai.embedmany.doembed": true,
		}, other: vFalse}},
		// Semconv operations (Vercel v7 invoke_agent aggregates are not calls).
		{key: "gen_ai.operation.name", verdict: verdicts{match: map[string]bool{
			"chat": true, "text_completion": true, "generate_content": true, "embeddings": true, "completion": true,
			"execute_tool": false, "invoke_agent": false, "create_agent": false, "invoke_workflow": false,
			"retrieval": false, "plan": false,
		}, other: vNone}},
		{key: "llm.request.type", verdict: verdicts{match: map[string]bool{
			"chat": true, "completion": true, "embedding": true, "rerank": false,
		}, other: vNone}},
		// OpenLLMetry marks its own workflow/task/agent/tool spans.
		{key: "traceloop.span.kind", verdict: verdicts{match: map[string]bool{}, other: vFalse}},
		// Fallom SDK: the wrappers of one model call (also on their ERROR
		// spans, which carry no usage); agent.generate (Mastra) aggregates.
		{key: "fallom.method", verdict: verdicts{match: map[string]bool{
			"chat.completions.create": true, "responses.create": true, "messages.create": true, "generatecontent": true,
			"generatetext": true, "streamtext": true, "generateobject": true, "streamobject": true,
			"tracemodel.dogenerate": true, "tracemodel.dostream": true, "llm.completion": true,
			"agent.generate": false,
		}, other: vNone}},
		{key: "kind", verdict: fallomKinds},
	}},
	{fInputNoCache, rInt, keys("ai.usage.inputTokenDetails.noCacheTokens")}, // Vercel ai@6.0.119+
	{fOutputText, rInt, keys("ai.usage.outputTokenDetails.textTokens")},
	{fProviderMetadata, rJSON, keys(
		"ai.response.providerMetadata", // Vercel AI SDK
		"fallom.raw.providerMetadata",  // Fallom SDK AI-SDK wrappers: the same object
	)},
	{fInvocationParams, rJSON, keys("llm.invocation_parameters")}, // OpenInference
	{fCompletionStart, rTimestamp, keys("langfuse.observation.completion_start_time")},
	{fUsageJSON, rJSON, keys("langfuse.observation.usage_details")},
	{fCostJSON, rJSON, keys("langfuse.observation.cost_details")},
	{fSource, rString, keys("fallom.source")},

	// Fallom SDK experiment fields: the canonical key first, then the
	// TraceData field as the receiver keeps it, then the legacy OTel-mode
	// keys of Python SDK <= 0.1.3 (FALLOM_SDK.md 5.3).
	{fConfigKey, rString, keys("fallom.config_key", "config_key")},
	{fConfigVersion, rInt, keys("fallom.config_version", "config_version")},
	{fPromptKey, rString, keys("fallom.prompt_key", "prompt_key")},
	{fPromptVersion, rInt, keys("fallom.prompt_version", "prompt_version")},
	{fPromptABTestKey, rString, keys("fallom.prompt_ab_test_key", "prompt_ab_test_key", "fallom.prompt_ab_test")},
	{fPromptVariantIndex, rInt, keys("fallom.prompt_variant_index", "prompt_variant_index", "fallom.prompt_variant")},
	{fStatus, rString, keys("fallom.status", "status")},
	{fErrorMessage, rString, keys("fallom.error_message", "error_message")},
	{fRawUsage, rJSON, keys("fallom.raw.usage")},
	{fRawRequest, rJSON, keys("fallom.raw.request")},
	{fRawResponse, rJSON, keys("fallom.raw.response")},
}

// fallomKinds: the Fallom SDK's span kinds (FALLOM_SDK.md 2.2). Unknown
// kinds leave the verdict to lower rules.
var fallomKinds = verdicts{match: map[string]bool{
	"llm":   true,
	"agent": false, "custom": false, "tool": false, "retrieval": false, "preprocessing": false,
	"postprocessing": false, "chain": false, "retriever": false,
}, other: vNone}

// embeddedSpec reads one member of a JSON attribute value (path: member
// names joined by ".") into a field. Embedded values rank below every
// attribute key of their field: they only fill what the attributes left
// empty.
type embeddedSpec struct {
	from   field // an rJSON field
	path   string
	field  field
	reader reader // rInt, rDouble or rString
}

var embeddedSpecs = []embeddedSpec{
	// Vercel AI SDK: the provider's own usage, as the provider package put
	// it in providerMetadata (@ai-sdk/anthropic: {anthropic: {usage: <raw
	// Anthropic usage>, cacheCreationInputTokens}}; @ai-sdk/amazon-bedrock:
	// {bedrock: {usage: {cacheWriteInputTokens}}}; @ai-sdk/google and
	// google-vertex: {google|vertex: {usageMetadata}};
	// @openrouter/ai-sdk-provider: {openrouter: {usage: {cost, ...}}}).
	{fProviderMetadata, "anthropic.usage.input_tokens", fInputNoCache, rInt}, // Anthropic's input_tokens leave the cache out
	{fProviderMetadata, "anthropic.usage.cache_read_input_tokens", fCachedTokens, rInt},
	{fProviderMetadata, "anthropic.cacheCreationInputTokens", fCacheWriteTokens, rInt},
	{fProviderMetadata, "anthropic.usage.cache_creation_input_tokens", fCacheWriteTokens, rInt},
	{fProviderMetadata, "anthropic.usage.cache_creation.ephemeral_1h_input_tokens", fCacheWrite1h, rInt}, // part of the writes, priced at the 1-hour price
	{fProviderMetadata, "bedrock.usage.cacheWriteInputTokens", fCacheWriteTokens, rInt},
	{fProviderMetadata, "google.usageMetadata.candidatesTokenCount", fOutputText, rInt}, // Gemini's candidates leave thoughts out
	{fProviderMetadata, "vertex.usageMetadata.candidatesTokenCount", fOutputText, rInt},
	{fProviderMetadata, "google.usageMetadata.thoughtsTokenCount", fReasoningTokens, rInt},
	{fProviderMetadata, "vertex.usageMetadata.thoughtsTokenCount", fReasoningTokens, rInt},
	{fProviderMetadata, "openrouter.usage.cost", fTotalCost, rDouble}, // what OpenRouter charged
	{fProviderMetadata, "openrouter.usage.promptTokensDetails.cachedTokens", fCachedTokens, rInt},
	{fProviderMetadata, "openrouter.usage.completionTokensDetails.reasoningTokens", fReasoningTokens, rInt},
	// Vercel AI SDK v4 providers (@ai-sdk/anthropic@1, @ai-sdk/openai@1).
	{fProviderMetadata, "anthropic.cacheReadInputTokens", fCachedTokens, rInt},
	{fProviderMetadata, "openai.cachedPromptTokens", fCachedTokens, rInt},
	{fProviderMetadata, "openai.reasoningTokens", fReasoningTokens, rInt},
	// OpenInference: the request's parameters, including the model asked for.
	{fInvocationParams, "model", fRequestedModel, rString},

	// Fallom SDK: fallom.raw.usage is the usage object as the wrapped client
	// returned it (FALLOM_SDK.md 2.3), one shape per provider and AI SDK
	// version; the shapes share no member name, so the members present are
	// those of one shape. Counting: OpenAI's prompt_tokens holds its cached
	// tokens; Anthropic's input_tokens leaves the cache out (so it is also
	// the witness of the input without cache); Gemini's candidates leave the
	// thoughts out (the witness of the output without reasoning); the AI SDK
	// passes its provider's counts on (tokenRules, and ai@6's details).
	{fRawUsage, "prompt_tokens", fInputTokens, rInt}, // OpenAI chat; PY Responses and LangChain use the same names
	{fRawUsage, "completion_tokens", fOutputTokens, rInt},
	{fRawUsage, "total_tokens", fTotalTokens, rInt},
	{fRawUsage, "prompt_tokens_details.cached_tokens", fCachedTokens, rInt},
	{fRawUsage, "completion_tokens_details.reasoning_tokens", fReasoningTokens, rInt},
	{fRawUsage, "input_tokens", fInputTokens, rInt}, // Anthropic
	{fRawUsage, "input_tokens", fInputNoCache, rInt},
	{fRawUsage, "output_tokens", fOutputTokens, rInt},
	{fRawUsage, "cache_read_input_tokens", fCachedTokens, rInt},
	{fRawUsage, "cache_creation_input_tokens", fCacheWriteTokens, rInt},
	{fRawUsage, "cache_creation.ephemeral_1h_input_tokens", fCacheWrite1h, rInt},
	{fRawUsage, "promptTokenCount", fInputTokens, rInt}, // Google TS (usageMetadata)
	{fRawUsage, "candidatesTokenCount", fOutputTokens, rInt},
	{fRawUsage, "candidatesTokenCount", fOutputText, rInt},
	{fRawUsage, "totalTokenCount", fTotalTokens, rInt},
	{fRawUsage, "cachedContentTokenCount", fCachedTokens, rInt},
	{fRawUsage, "thoughtsTokenCount", fReasoningTokens, rInt},
	{fRawUsage, "prompt_token_count", fInputTokens, rInt}, // Google PY (usage_metadata)
	{fRawUsage, "candidates_token_count", fOutputTokens, rInt},
	{fRawUsage, "candidates_token_count", fOutputText, rInt},
	{fRawUsage, "total_token_count", fTotalTokens, rInt},
	{fRawUsage, "cached_content_token_count", fCachedTokens, rInt},
	{fRawUsage, "thoughts_token_count", fReasoningTokens, rInt},
	{fRawUsage, "promptTokens", fInputTokens, rInt}, // Vercel AI SDK v4
	{fRawUsage, "completionTokens", fOutputTokens, rInt},
	{fRawUsage, "totalTokens", fTotalTokens, rInt}, // v4 to v6
	{fRawUsage, "inputTokens", fInputTokens, rInt}, // v5 and v6
	{fRawUsage, "outputTokens", fOutputTokens, rInt},
	{fRawUsage, "inputTokenDetails.noCacheTokens", fInputNoCache, rInt}, // v6
	{fRawUsage, "inputTokenDetails.cacheReadTokens", fCachedTokens, rInt},
	{fRawUsage, "inputTokenDetails.cacheWriteTokens", fCacheWriteTokens, rInt},
	{fRawUsage, "outputTokenDetails.textTokens", fOutputText, rInt},
	{fRawUsage, "outputTokenDetails.reasoningTokens", fReasoningTokens, rInt},
	{fRawUsage, "cachedInputTokens", fCachedTokens, rInt}, // v5 (kept, deprecated, in v6)
	{fRawUsage, "reasoningTokens", fReasoningTokens, rInt},
	// traceModel.doGenerate on an ai@6 model: the provider's own
	// LanguageModelV3 usage, whose counts are objects.
	{fRawUsage, "inputTokens.total", fInputTokens, rInt},
	{fRawUsage, "inputTokens.noCache", fInputNoCache, rInt},
	{fRawUsage, "inputTokens.cacheRead", fCachedTokens, rInt},
	{fRawUsage, "inputTokens.cacheWrite", fCacheWriteTokens, rInt},
	{fRawUsage, "outputTokens.total", fOutputTokens, rInt},
	{fRawUsage, "outputTokens.text", fOutputText, rInt},
	{fRawUsage, "outputTokens.reasoning", fReasoningTokens, rInt},
	// Fallom SDK: what the wrappers echo of the call (FALLOM_SDK.md 2.3).
	{fRawRequest, "model", fRequestedModel, rString},
	{fRawResponse, "finishReason", fFinishReason, rString},
	{fRawResponse, "model", fModel, rString},   // OpenAI, Anthropic, PY Responses
	{fRawResponse, "modelId", fModel, rString}, // AI SDK
}

// tokenCounting says what an emitter leaves out of its input and output
// counts. Stored counts are inclusive, so what is left out is added back.
type tokenCounting uint8

const (
	inputOmitsCacheRead tokenCounting = 1 << iota
	inputOmitsCacheWrite
	outputOmitsReasoning

	countsInclusive tokenCounting = 0
	inputOmitsCache               = inputOmitsCacheRead | inputOmitsCacheWrite
)

// tokenRule: how the spans of one emitter (a dialect, at a version, with a
// provider) count tokens. A row matches a span of its dialect when one of
// its markers (keys only that version sends) is present, if it has markers,
// and when the span's provider starts with one of its providers, if it has
// providers. The first matching row decides; no row: inclusive, as the
// semconv, OpenRouter, OpenInference and OpenLLMetry count.
//
// Two checks refine the row, because versions that count differently can
// send the same keys: a witness (the input without cache, the output
// without reasoning, sent beside the totals) tells which count the total is,
// and the guard in tokens.go restores figures that cannot be inclusive.
type tokenRule struct {
	dialects  []dialect
	version   string   // for the README
	markers   []string // keys only this version sends (any of them)
	providers []string // lower-cased prefixes of the provider
	counting  tokenCounting
	source    string // where the counting was read
}

// viaAISDK: the dialects whose counts are the Vercel AI SDK's: its own
// telemetry, and the Fallom SDK: its AI-SDK wrappers (fallom.raw.usage is
// the AI SDK's usage; fallom.provider is the model's provider, as
// ai.model.provider) and the Mastra exporter's spans (Mastra runs the AI SDK:
// ai.* keys, with fallom.* ids from the X-Fallom-* headers, so the fallom
// dialect). In TraceData the ai@6.0.119+ details travel inside
// fallom.raw.usage, where noCacheTokens / textTokens are witnesses.
var viaAISDK = []dialect{dVercelAI, dFallom}

var tokenRules = []tokenRule{
	{
		dialects: viaAISDK, version: "ai@6.0.119+ and ai@7",
		markers: []string{
			"ai.usage.inputTokenDetails.noCacheTokens", "ai.usage.inputTokenDetails.cacheReadTokens",
			"ai.usage.inputTokenDetails.cacheWriteTokens", "ai.usage.outputTokenDetails.textTokens",
			"ai.usage.outputTokenDetails.reasoningTokens",
		},
		counting: countsInclusive,
		source:   "vercel/ai packages/ai/src/types/usage.ts asLanguageModelUsage (inputTokens = inputTokens.total); details added to telemetry in #13129",
	},
	{
		dialects: viaAISDK, version: "ai@3-5 (ai@6.0.0-6.0.118 send the same keys: the witness tells)",
		providers: []string{"anthropic.", "vertex.anthropic."},
		counting:  inputOmitsCache,
		source:    "@ai-sdk/anthropic@2.0.0 src/anthropic-messages-language-model.ts: inputTokens = usage.input_tokens, totalTokens = input_tokens + output_tokens",
	},
	{
		dialects: viaAISDK, version: "ai@3-5 (and ai@6 with @ai-sdk/amazon-bedrock < 4.0.13)",
		providers: []string{"amazon-bedrock", "bedrock"},
		counting:  inputOmitsCache,
		source:    "@ai-sdk/amazon-bedrock@3.0.0 src/bedrock-chat-language-model.ts: inputTokens = usage.inputTokens (Converse counts the cache apart); fixed in 4.0.13 (e89fc99651)",
	},
	{
		dialects: viaAISDK, version: "ai@3-5 (ai@6.0.0-6.0.118: the witness tells)",
		providers: []string{"google."},
		counting:  outputOmitsReasoning,
		source:    "@ai-sdk/google@2.0.0 src/google-generative-ai-language-model.ts: outputTokens = candidatesTokenCount (thoughts apart), totalTokens = totalTokenCount",
	},
}

// verdict outcomes for values not in a verdict table.
const (
	vNone  uint8 = iota // no verdict: a lower rule decides
	vFalse              // any other value: not a generation
)

type verdicts struct {
	match map[string]bool // lower-cased value -> is a generation
	other uint8
}

var boolVerdicts = verdicts{match: map[string]bool{"true": true, "1": true, "false": false, "0": false}, other: vNone}

// contentKind says how a content value is read.
type contentKind uint8

const (
	ckNone              contentKind = iota
	ckNormalized                    // fallom.prompt / fallom.completion: already normalized
	ckOpenRouter                    // {"messages":[...]} / {"completion":..., "toolCalls":...}
	ckMessages                      // a JSON array of messages in any dialect's shape (semconv parts, OpenAI, Vercel)
	ckAny                           // JSON of unknown shape or plain text (Langfuse, OpenInference input.value)
	ckText                          // plain text (Vercel ai.response.text)
	ckFlatOpenInference             // llm.input_messages.N.* / llm.output_messages.N.*
	ckFlatTraceloop                 // gen_ai.prompt.N.* / gen_ai.completion.N.*
	ckFallomRequest                 // fallom.raw.request: the request of any wrapper of the Fallom SDK
	ckFallomResponse                // fallom.raw.response: what the wrapper kept of the response
)

// contentRole: where a content key goes.
type contentRole uint8

const (
	toPrompt contentRole = iota + 1
	toCompletion
	toSystemInstructions // semconv gen_ai.system_instructions, prepended to the prompt
	toToolCalls          // Vercel ai.response.toolCalls, merged into the completion
	toReasoning          // Vercel ai.response.reasoning(Text), merged into the completion
	toOther              // content with no column of its own (tool arguments, documents...): kept, removed by drop_content only
)

type contentSpec struct {
	key    string // exact key, or a prefix ending in "."
	role   contentRole
	kind   contentKind
	suffix string // prefix keys only: the key must end in it (retrieval.documents.N.document.content)
}

// contentSpecs is the one table of content keys, in precedence order per
// role. It serves both ends: a key whose role has a column feeds the stored
// prompt/completion and is then removed from the attributes (stored once,
// unless keep_original_content); drop_content removes every key listed here,
// on spans and on span events. A key that is content is listed here, and
// only here (TestDropContentRemovesEveryContentKey walks the fixtures).
var contentSpecs = []contentSpec{
	{key: "fallom.prompt", role: toPrompt, kind: ckNormalized},
	{key: "fallom.raw.request", role: toPrompt, kind: ckFallomRequest}, // Fallom SDK
	{key: "gen_ai.input.messages", role: toPrompt, kind: ckMessages},   // semconv current
	{key: "gen_ai.prompt", role: toPrompt, kind: ckOpenRouter},         // OpenRouter; older semconv (a string)
	{key: "llm.input_messages.", role: toPrompt, kind: ckFlatOpenInference},
	{key: "gen_ai.prompt.", role: toPrompt, kind: ckFlatTraceloop},
	{key: "llm.prompts.", role: toPrompt, kind: ckFlatOpenInference}, // OpenInference completions API: llm.prompts.N.prompt.text
	{key: "ai.prompt.messages", role: toPrompt, kind: ckMessages},    // Vercel AI SDK
	{key: "langfuse.observation.input", role: toPrompt, kind: ckAny},
	{key: "input.value", role: toPrompt, kind: ckAny}, // OpenInference
	{key: "llm.prompts", role: toPrompt, kind: ckAny}, // OpenInference (older): array of prompt strings
	{key: "span.input", role: toPrompt, kind: ckOpenRouter},
	{key: "trace.input", role: toPrompt, kind: ckOpenRouter},
	{key: "ai.prompt", role: toPrompt, kind: ckAny}, // Vercel AI SDK outer span: {"system","prompt","messages"}

	{key: "fallom.completion", role: toCompletion, kind: ckNormalized},
	{key: "fallom.raw.response", role: toCompletion, kind: ckFallomResponse}, // Fallom SDK
	{key: "gen_ai.output.messages", role: toCompletion, kind: ckMessages},
	{key: "gen_ai.completion", role: toCompletion, kind: ckOpenRouter},
	{key: "llm.output_messages.", role: toCompletion, kind: ckFlatOpenInference},
	{key: "gen_ai.completion.", role: toCompletion, kind: ckFlatTraceloop},
	{key: "llm.choices.", role: toCompletion, kind: ckFlatOpenInference}, // OpenInference completions API: llm.choices.N.completion.text
	{key: "ai.response.text", role: toCompletion, kind: ckText},
	{key: "ai.response.object", role: toCompletion, kind: ckText},
	{key: "langfuse.observation.output", role: toCompletion, kind: ckAny},
	{key: "output.value", role: toCompletion, kind: ckAny},
	{key: "llm.choices", role: toCompletion, kind: ckAny},
	{key: "span.output", role: toCompletion, kind: ckOpenRouter},
	{key: "trace.output", role: toCompletion, kind: ckOpenRouter},

	{key: "gen_ai.system_instructions", role: toSystemInstructions, kind: ckMessages},
	{key: "ai.response.toolCalls", role: toToolCalls, kind: ckMessages},
	{key: "ai.response.reasoning", role: toReasoning, kind: ckText},
	{key: "ai.response.reasoningText", role: toReasoning, kind: ckText},

	// Content with no column: kept as sent (so nothing is lost), removed by
	// drop_content.
	{key: "gen_ai.tool.call.arguments", role: toOther},  // semconv execute_tool
	{key: "gen_ai.tool.call.result", role: toOther},     // semconv execute_tool
	{key: "gen_ai.retrieval.query.text", role: toOther}, // semconv retrieval
	{key: "gen_ai.retrieval.documents", role: toOther},  // semconv retrieval (documents may carry their content)
	{key: "ai.prompt.tools", role: toOther},             // Vercel AI SDK
	{key: "ai.toolCall.args", role: toOther},
	{key: "ai.toolCall.result", role: toOther},
	{key: "ai.value", role: toOther},     // Vercel embed input
	{key: "ai.values", role: toOther},    // Vercel embedMany inputs
	{key: "ai.documents", role: toOther}, // Vercel rerank input
	{key: "ai.ranking", role: toOther},   // Vercel rerank output (documents)
	{key: "traceloop.entity.input", role: toOther},
	{key: "traceloop.entity.output", role: toOther},
	{key: "llm.prompt_template.template", role: toOther}, // OpenInference
	{key: "llm.prompt_template.variables", role: toOther},
	{key: "llm.function_call", role: toOther},
	{key: "reranker.query", role: toOther},
	{key: "retrieval.documents.", role: toOther, suffix: ".document.content"},
	{key: "reranker.input_documents.", role: toOther, suffix: ".document.content"},
	{key: "reranker.output_documents.", role: toOther, suffix: ".document.content"},
	{key: "embedding.embeddings.", role: toOther, suffix: ".embedding.text"},
	{key: "langfuse.observation.metadata.input", role: toOther},
	{key: "langfuse.trace.input", role: toOther}, // the whole trace's input, not this call's prompt
	{key: "langfuse.trace.output", role: toOther},
	{key: "input", role: toOther},  // Fallom SDK wrapTraced: the function's arguments
	{key: "output", role: toOther}, // Fallom SDK wrapTraced: its result
}

// stored reports whether content of this role has a column (and is removed
// from the attributes once stored).
func (r contentRole) stored() bool { return r != toOther }

// dialect is the `source` column: which instrumentation produced a span.
type dialect uint8

// Higher wins when a span carries keys of several dialects: the most
// specific emitter is the one that produced the span.
const (
	dNone dialect = iota
	dOtelGenAI
	dTraceloop
	dOpenInference
	dVercelAI
	dLangfuse
	dFallom
	dOpenRouter
)

var dialectNames = [...]string{
	dNone: "", dOtelGenAI: "otel_genai", dTraceloop: "traceloop", dOpenInference: "openinference",
	dVercelAI: "vercel_ai", dLangfuse: "langfuse", dFallom: "fallom", dOpenRouter: "openrouter",
}

// scopeDialects: instrumentation scopes that name their dialect (the
// fallomsdk receiver's TraceData spans are in scope "fallom-sdk").
var scopeDialects = map[string]dialect{"openrouter": dOpenRouter, "fallom-sdk": dFallom}

// dialectRules: exact keys and key prefixes (ending in ".") that identify a
// dialect. LiteLLM and Logfire/pydantic-ai emit semconv keys: otel_genai.
var dialectRules = []struct {
	key string
	d   dialect
}{
	{"trace.metadata.openrouter.", dOpenRouter},
	{"trace.metadata.openrouter_generation.", dOpenRouter},
	{"span.type", dOpenRouter},
	{"gen_ai.usage.input_tokens.cached", dOpenRouter},
	{"gen_ai.usage.total_cost", dOpenRouter},
	{"fallom.session_id", dFallom},
	{"fallom.customer_id", dFallom},
	{"fallom.config_key", dFallom},
	{"fallom.prompt_key", dFallom},
	{"fallom.sdk_version", dFallom}, // every TraceData span of SDK 0.2.x
	{"fallom.method", dFallom},
	{"fallom.raw.", dFallom},
	{"config_key", dFallom}, // TraceData's own field (G-Eval traces carry no fallom.* attribute)
	{"langfuse.", dLangfuse},
	{"ai.", dVercelAI},
	{"openinference.", dOpenInference},
	{"llm.model_name", dOpenInference},
	{"llm.request.model_name", dOpenInference},
	{"llm.response.model_name", dOpenInference},
	{"llm.finish_reason", dOpenInference},
	{"llm.prompts.", dOpenInference},
	{"llm.choices.", dOpenInference},
	{"llm.token_count.", dOpenInference},
	{"llm.input_messages.", dOpenInference},
	{"llm.output_messages.", dOpenInference},
	{"llm.cost.", dOpenInference},
	{"llm.provider", dOpenInference},
	{"llm.system", dOpenInference},
	{"llm.invocation_parameters", dOpenInference},
	{"input.value", dOpenInference},
	{"output.value", dOpenInference},
	{"traceloop.", dTraceloop},
	{"llm.request.type", dTraceloop},
	{"llm.usage.", dTraceloop},
	{"llm.is_streaming", dTraceloop},
	{"llm.user", dTraceloop},
	{"gen_ai.prompt.", dTraceloop},
	{"gen_ai.completion.", dTraceloop},
	{"gen_ai.", dOtelGenAI},
}

// target is one field a key feeds, at a rank (0 = highest precedence).
type target struct {
	field   field
	reader  reader
	rank    uint8
	verdict *verdicts
}

// keyRule is everything known about one attribute key, built once from the
// tables above so the per-span pass does a single map lookup per attribute.
type keyRule struct {
	targets []target
	content *contentSpec
	rank    uint8 // content precedence within its role
	dialect dialect
	markers uint32 // bits of the tokenRules this key is a marker of
}

var (
	exactRules  map[string]*keyRule
	prefixRules []prefixRule // keys matched by prefix: flattened messages and dialect prefixes
)

type prefixRule struct {
	prefix  string
	content *contentSpec
	rank    uint8
	dialect dialect
	indexed bool // only keys that go on with a message index (gen_ai.prompt.0.role, not gen_ai.prompt.name)
}

// contentPrefixRule reports the content rule a key matches by prefix (the
// flattened messages, document contents), or nil.
func contentPrefixRule(k string) *prefixRule {
	for i := range prefixRules {
		pr := &prefixRules[i]
		if pr.content == nil || !strings.HasPrefix(k, pr.prefix) || len(k) == len(pr.prefix) {
			continue
		}
		if pr.content.suffix != "" {
			if strings.HasSuffix(k, pr.content.suffix) {
				return pr
			}
			continue
		}
		// Flattened messages: <prefix>N.<path>, finish reasons excepted.
		if _, path, ok := parseFlatKey(k[len(pr.prefix):]); ok && path != "finish_reason" {
			return pr
		}
	}
	return nil
}

// isContentKey reports whether drop_content removes an attribute of this key.
func isContentKey(k string) bool {
	if r, ok := exactRules[k]; ok && r.content != nil {
		return true
	}
	return contentPrefixRule(k) != nil
}

func init() {
	exactRules = map[string]*keyRule{}
	get := func(k string) *keyRule {
		r := exactRules[k]
		if r == nil {
			r = &keyRule{}
			exactRules[k] = r
		}
		return r
	}
	next := map[field]uint8{} // rows of one field continue its ranks
	for _, fs := range fieldSpecs {
		for _, s := range fs.keys {
			rank := next[fs.field]
			next[fs.field]++
			t := target{field: fs.field, reader: fs.reader, rank: rank}
			if fs.reader == rVerdict {
				v := s.verdict
				t.verdict = &v
			}
			r := get(s.key)
			r.targets = append(r.targets, t)
		}
	}
	ranks := map[contentRole]uint8{}
	for i := range contentSpecs {
		cs := &contentSpecs[i]
		rank := ranks[cs.role]
		ranks[cs.role]++
		if strings.HasSuffix(cs.key, ".") {
			prefixRules = append(prefixRules, prefixRule{prefix: cs.key, content: cs, rank: rank, dialect: dialectOfKey(cs.key), indexed: cs.suffix == ""})
			continue
		}
		r := get(cs.key)
		r.content, r.rank = cs, rank
	}
	if len(tokenRules) > 32 {
		panic("openroutermapping: more than 32 token rules")
	}
	for i, tr := range tokenRules {
		for _, k := range tr.markers {
			get(k).markers |= 1 << i
		}
	}
	for _, dr := range dialectRules {
		if !strings.HasSuffix(dr.key, ".") {
			get(dr.key) // a key that only marks a dialect is still looked up
		}
	}
	for k, r := range exactRules {
		r.dialect = dialectOfKey(k)
	}
	for _, dr := range dialectRules {
		if strings.HasSuffix(dr.key, ".") {
			// A dialect prefix that is also a flattened-messages prefix
			// marks only the indexed keys.
			indexed := false
			for _, cs := range contentSpecs {
				indexed = indexed || cs.key == dr.key && cs.suffix == ""
			}
			prefixRules = append(prefixRules, prefixRule{prefix: dr.key, dialect: dr.d, indexed: indexed})
		}
	}
}

// dialectOfKey applies dialectRules to one key (used to precompute rules, and
// for unmapped keys through prefixRules).
func dialectOfKey(k string) dialect {
	best := dNone
	for _, dr := range dialectRules {
		match := k == dr.key || (strings.HasSuffix(dr.key, ".") && strings.HasPrefix(k, dr.key))
		if match && dr.d > best {
			best = dr.d
		}
	}
	return best
}
