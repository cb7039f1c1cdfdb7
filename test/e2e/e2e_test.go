// Package e2e runs the real bin/fallomcol (built by `make build`) on its
// shipped default config, sends it what OpenRouter Broadcast and the official
// OpenTelemetry SDK exporters send, and reads the result back from the SQLite
// file with SQL, as a user would.
package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	_ "modernc.org/sqlite"

	"github.com/fallom/fallom-collector/internal/testutil/collectortest"
)

// instance is one collector on the shipped default config, relocated to a
// temp dir and free ports through the FALLOM_* environment overrides.
type instance struct {
	col    *collectortest.Collector
	ep     collectortest.Endpoints
	sdk    string // host:port of the fallomsdk receiver (default config)
	dbPath string
	key    string
}

func startDefault(t *testing.T, project string) *instance {
	t.Helper()
	return startInstance(t, project, []string{}) // no --config: the shipped default config
}

// startInstance runs the binary with args (a config of the test's, or none
// for the shipped default), relocated like startDefault.
func startInstance(t *testing.T, project string, args []string) *instance {
	t.Helper()
	dir := t.TempDir()
	key := collectortest.CreateKey(t, filepath.Join(dir, "keys.yaml"), project, "e2e")
	return startIn(t, dir, key, args)
}

// startDefaultIn starts the default config on the keys file and database in
// dir (again, for a restart), with env added (e.g. FALLOM_PRICING_FILE).
func startDefaultIn(t *testing.T, dir, key string, env ...string) *instance {
	t.Helper()
	return startIn(t, dir, key, []string{}, env...)
}

// startIn runs the binary with args on the keys file and database in dir,
// on free ports, with env added.
func startIn(t *testing.T, dir, key string, args []string, env ...string) *instance {
	t.Helper()
	ep := collectortest.NewEndpoints(t)
	dbPath := filepath.Join(dir, "fallom.db")
	sdk := fmt.Sprintf("127.0.0.1:%d", collectortest.FreePort(t))
	wait := []string{ep.HTTP, ep.GRPC}
	if len(args) == 0 {
		wait = append(wait, sdk) // the shipped config serves the Fallom SDKs too
	}
	col := collectortest.Start(t, collectortest.Options{
		Args: args,
		Dir:  dir,
		Env: append([]string{
			"FALLOM_KEYS_FILE=" + filepath.Join(dir, "keys.yaml"),
			"FALLOM_DB=" + dbPath,
			"FALLOM_HTTP_ENDPOINT=" + ep.HTTP,
			"FALLOM_GRPC_ENDPOINT=" + ep.GRPC,
			fmt.Sprintf("FALLOM_HEALTH_ENDPOINT=127.0.0.1:%d", collectortest.FreePort(t)),
			fmt.Sprintf("FALLOM_CONSOLE_ENDPOINT=127.0.0.1:%d", collectortest.FreePort(t)),
			"FALLOM_SDK_ENDPOINT=" + sdk,
			fmt.Sprintf("FALLOM_METRICS_PORT=%d", collectortest.FreePort(t)),
		}, env...),
		WaitAddrs: wait,
	})
	return &instance{col: col, ep: ep, sdk: sdk, dbPath: dbPath, key: key}
}

func (in *instance) post(t *testing.T, body []byte, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+in.ep.HTTP+"/v1/traces", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (in *instance) db(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+in.dbPath+"?mode=ro&_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func count(t *testing.T, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRow(query, args...).Scan(&n))
	return n
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

func TestOpenRouterBroadcastDeliveryIsStored(t *testing.T) {
	in := startDefault(t, "acme")
	delivery := readFixture(t, "openrouter-delivery.json")
	auth := map[string]string{"Authorization": "Bearer " + in.key}

	code, body := in.post(t, delivery, auth)
	require.Equal(t, http.StatusOK, code, body)

	db := in.db(t)
	var (
		project, session, customer, model, requested, provider, costSource, finish string
		isGen                                                                      bool
		inTok, outTok, totalTok, cached                                            int64
		totalCost, inCost, outCost                                                 float64
		prompt, completion                                                         sql.NullString
	)
	err := db.QueryRow(`SELECT project_id, session_id, customer_id, model, requested_model, provider,
		cost_source, finish_reason, is_generation, input_tokens, output_tokens, total_tokens,
		cached_input_tokens, total_cost_usd, input_cost_usd, output_cost_usd, prompt, completion
		FROM spans WHERE trace_id = ? AND span_id = ?`,
		"a1b2c3d4e5f60718293a4b5c6d7e8f90", "a1b2c3d4e5f60718").Scan(
		&project, &session, &customer, &model, &requested, &provider, &costSource, &finish, &isGen,
		&inTok, &outTok, &totalTok, &cached, &totalCost, &inCost, &outCost, &prompt, &completion)
	require.NoError(t, err)
	assert.Equal(t, "acme", project, "project comes from the key")
	assert.Equal(t, "sess-e2e-7", session)
	assert.Equal(t, "cust-e2e-42", customer)
	assert.Equal(t, "anthropic/claude-haiku-4.5", model)
	assert.Equal(t, "anthropic/claude-haiku-4.5", requested)
	assert.Equal(t, "Amazon Bedrock", provider, "the serving provider, not the model author")
	assert.Equal(t, "reported", costSource)
	assert.Equal(t, "stop", finish)
	assert.True(t, isGen)
	assert.EqualValues(t, 2489, inTok)
	assert.EqualValues(t, 87, outTok)
	assert.EqualValues(t, 2576, totalTok)
	assert.EqualValues(t, 2048, cached)
	assert.InDelta(t, 0.0008887, totalCost, 1e-12)
	assert.InDelta(t, 0.0004537, inCost, 1e-12)
	assert.InDelta(t, 0.000435, outCost, 1e-12)
	require.True(t, prompt.Valid)
	assert.Contains(t, prompt.String, "Lisbon to Oslo")
	require.True(t, completion.Valid)
	assert.Contains(t, completion.String, "TP1234 leaves Lisbon")

	// The two children are stored, but are not model calls and carry no cost.
	assert.Equal(t, 3, count(t, db, `SELECT count(*) FROM spans WHERE trace_id = ?`, "a1b2c3d4e5f60718293a4b5c6d7e8f90"))
	assert.Equal(t, 0, count(t, db, `SELECT count(*) FROM spans WHERE is_generation AND span_id <> ?`, "a1b2c3d4e5f60718"))
	assert.Equal(t, 0, count(t, db, `SELECT count(*) FROM spans WHERE total_cost_usd IS NOT NULL AND span_id <> ?`, "a1b2c3d4e5f60718"))

	// OpenRouter repeats the content under three keys: it is stored once.
	var attrs string
	require.NoError(t, db.QueryRow(`SELECT attributes FROM spans WHERE span_id = ?`, "a1b2c3d4e5f60718").Scan(&attrs))
	assert.Equal(t, 0, strings.Count(attrs, "Lisbon to Oslo"), "prompt repeated in the attributes JSON: %s", attrs)
	assert.Contains(t, attrs, "flight-search", "other attributes are kept")

	// A redelivery adds nothing.
	code, body = in.post(t, delivery, auth)
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, 3, count(t, db, `SELECT count(*) FROM spans`))

	// Grouping views.
	var gens int
	var sessCost float64
	require.NoError(t, db.QueryRow(`SELECT generations, total_cost_usd FROM sessions WHERE project_id = 'acme' AND session_id = 'sess-e2e-7'`).Scan(&gens, &sessCost))
	assert.Equal(t, 1, gens)
	assert.InDelta(t, 0.0008887, sessCost, 1e-12)
	require.NoError(t, db.QueryRow(`SELECT generations FROM customers WHERE project_id = 'acme' AND customer_id = 'cust-e2e-42'`).Scan(&gens))
	assert.Equal(t, 1, gens)
}

func TestOpenRouterConnectionTestIsAnsweredAndNotStored(t *testing.T) {
	in := startDefault(t, "acme")
	code, body := in.post(t, readFixture(t, "openrouter-connection-test.json"), map[string]string{"Authorization": "Bearer " + in.key})
	require.True(t, code >= 200 && code < 300, "connection test answered %d %s", code, body)
	// An empty payload with X-Test-Connection (the Webhook destination's test).
	code, body = in.post(t, []byte(`{}`), map[string]string{"Authorization": "Bearer " + in.key, "X-Test-Connection": "true"})
	require.True(t, code >= 200 && code < 300, "empty test payload answered %d %s", code, body)
	// Let any stray write land before counting.
	code, body = in.post(t, readFixture(t, "openrouter-delivery.json"), map[string]string{"Authorization": "Bearer " + in.key})
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, 0, count(t, in.db(t), `SELECT count(*) FROM spans WHERE name = 'openrouter-connection-test'`))
	assert.Equal(t, 3, count(t, in.db(t), `SELECT count(*) FROM spans`))
}

func TestBadKeysAreRejectedWithoutEchoingThem(t *testing.T) {
	in := startDefault(t, "acme")
	delivery := readFixture(t, "openrouter-delivery.json")
	unknown := "flm_" + strings.Repeat("Z", 40)
	for name, header := range map[string]map[string]string{
		"missing":       {},
		"not flm":       {"Authorization": "Bearer sk-or-v1-abcdefabcdefabcdef"},
		"unknown":       {"Authorization": "Bearer " + unknown},
		"no space":      {"Authorization": "Bearer" + in.key},
		"wrong scheme":  {"Authorization": "Basic " + in.key},
		"unknown x-api": {"X-Api-Key": unknown},
	} {
		code, body := in.post(t, delivery, header)
		assert.Equal(t, http.StatusUnauthorized, code, "%s: %s", name, body)
		assert.NotContains(t, body, in.key, name)
		assert.NotContains(t, body, unknown, name)
	}
	code, body := in.post(t, delivery, map[string]string{"X-Api-Key": in.key})
	assert.Equal(t, http.StatusOK, code, body)
	assert.NotContains(t, in.col.Logs(), in.key, "the key appeared in the collector's logs")
}

// genAISpan records one chat call with OTel GenAI semantic-convention attributes.
func genAISpan(ctx context.Context, tp *sdktrace.TracerProvider, session string) trace.SpanContext {
	_, span := tp.Tracer("e2e").Start(ctx, "chat gpt-4o-mini", trace.WithSpanKind(trace.SpanKindClient))
	span.SetAttributes(
		attribute.String("gen_ai.operation.name", "chat"),
		attribute.String("gen_ai.provider.name", "openai"),
		attribute.String("gen_ai.request.model", "gpt-4o-mini"),
		attribute.String("gen_ai.response.model", "gpt-4o-mini-2024-07-18"),
		attribute.Int("gen_ai.usage.input_tokens", 1000),
		attribute.Int("gen_ai.usage.output_tokens", 200),
		attribute.String("gen_ai.conversation.id", session),
	)
	span.End()
	return span.SpanContext()
}

func TestOTelSDKExportersOverGRPCAndHTTPProtobuf(t *testing.T) {
	in := startDefault(t, "sdk-proj")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	headers := map[string]string{"Authorization": "Bearer " + in.key}

	grpcExp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(in.ep.GRPC), otlptracegrpc.WithInsecure(), otlptracegrpc.WithHeaders(headers))
	require.NoError(t, err)
	httpExp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(in.ep.HTTP), otlptracehttp.WithInsecure(), otlptracehttp.WithHeaders(headers))
	require.NoError(t, err)

	res := resource.NewSchemaless(attribute.String("service.name", "e2e-app"))
	sent := map[string]trace.SpanContext{}
	for name, exp := range map[string]sdktrace.SpanExporter{"grpc": grpcExp, "http": httpExp} {
		// The syncer exports each span as it ends and reports the export error.
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(res))
		sent[name] = genAISpan(ctx, tp, "conv-"+name)
		require.NoError(t, tp.ForceFlush(ctx), name)
		require.NoError(t, tp.Shutdown(ctx), name)
	}

	db := in.db(t)
	for name, sc := range sent {
		var project, session, model, requested, provider, resAttrs string
		var inTok, outTok int64
		var isGen bool
		err := db.QueryRow(`SELECT project_id, session_id, model, requested_model, provider, input_tokens,
			output_tokens, is_generation, resource_attributes FROM spans WHERE trace_id = ? AND span_id = ?`,
			sc.TraceID().String(), sc.SpanID().String()).Scan(&project, &session, &model, &requested, &provider, &inTok, &outTok, &isGen, &resAttrs)
		require.NoError(t, err, name)
		assert.Equal(t, "sdk-proj", project, name)
		assert.Equal(t, "conv-"+name, session, name)
		assert.Equal(t, "gpt-4o-mini-2024-07-18", model, name)
		assert.Equal(t, "gpt-4o-mini", requested, name)
		assert.Equal(t, "openai", provider, name)
		assert.EqualValues(t, 1000, inTok, name)
		assert.EqualValues(t, 200, outTok, name)
		assert.True(t, isGen, name)
		assert.Contains(t, resAttrs, "e2e-app", name)
	}
}

func TestCLIValidateComponentsHelp(t *testing.T) {
	root := collectortest.RepoRoot(t)
	configs, err := filepath.Glob(filepath.Join(root, "config", "examples", "*.yaml"))
	require.NoError(t, err)
	configs = append(configs, filepath.Join(root, "config", "config.yaml"))
	require.GreaterOrEqual(t, len(configs), 4, "the default config and the examples")
	// The PostgreSQL example takes its DSN from the environment only.
	env := []string{"FALLOM_PG_DSN=postgres://fallom:secret@127.0.0.1:5432/fallom"}
	for _, cfg := range configs {
		_, errOut, err := collectortest.Run(t, root, env, "validate", "--config", cfg)
		assert.NoError(t, err, "validate %s: %s", cfg, errOut)
	}
	// validate with no --config checks the built-in default.
	_, errOut, err := collectortest.Run(t, t.TempDir(), nil, "validate")
	assert.NoError(t, err, errOut)

	out, errOut, err := collectortest.Run(t, root, nil, "components")
	require.NoError(t, err, errOut)
	for _, name := range []string{"fallomauth", "openroutermapping", "fallom", "otlp", "memory_limiter", "batch",
		"health_check", "file_storage", "pprof", "zpages", "debug", "otlp_http", "otlp_grpc", "clickhouse", "kafka"} {
		assert.Contains(t, out, "name: "+name+"\n", "components lists %s", name)
	}

	out, _, err = collectortest.Run(t, root, nil, "--help")
	require.NoError(t, err)
	assert.Contains(t, out, "keys")
	assert.Contains(t, out, "validate")

	// A broken config is reported, not run.
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: [\n"), 0o600))
	_, _, err = collectortest.Run(t, root, nil, "validate", "--config", bad)
	assert.Error(t, err)
}
