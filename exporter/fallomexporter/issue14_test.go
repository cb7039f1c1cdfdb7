package fallomexporter

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/fallom/fallom-collector/internal/fallomattr"
	"github.com/fallom/fallom-collector/internal/storage"
)

// Issue 14 items 5, 6 and 7 at ingest: a token count above 2^40, a cost
// above USD 1,000,000 and a session id longer than an index entry leave
// their columns NULL and stay in the attributes JSON; attributes nested
// 100,000 deep are cut at 512 levels. The span is stored (on both
// databases), and the next ordinary span of the same rollup row too.
func TestIngestCaps(t *testing.T) {
	for _, driver := range []string{DriverSQLite, DriverPostgres} {
		t.Run(driver, func(t *testing.T) {
			cfg, path := sqliteConfig(t)
			if driver == DriverPostgres {
				cfg.Storage.Driver, cfg.Storage.DSN = DriverPostgres, configopaque.String(postgresDSN(t))
			}
			exp := startExporter(t, cfg)
			td := mappedDeliveries("acme", 0, 1)
			sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
			a := sp.Attributes()
			a.PutInt(fallomattr.InputTokens, math.MaxInt64-10)
			a.PutDouble(fallomattr.TotalCostUSD, 1e12)
			a.PutStr(fallomattr.SessionID, strings.Repeat("s", 5000))
			m := a.PutEmptyMap("deep")
			for range 100_000 {
				m = m.PutEmptyMap("a")
			}
			if err := exp.ConsumeTraces(context.Background(), td); err != nil {
				t.Fatalf("a delivery with out-of-range values: %v", err)
			}
			if err := exp.ConsumeTraces(context.Background(), mappedDeliveries("acme", 2, 1)); err != nil {
				t.Fatalf("the next ordinary delivery: %v", err)
			}
			query := "SELECT input_tokens IS NULL, total_cost_usd IS NULL, session_id IS NULL, CAST(attributes AS TEXT) FROM spans WHERE span_id = '" +
				sp.SpanID().String() + "'"
			var noTokens, noCost, noSession bool
			var attrs string
			if driver == DriverSQLite {
				scan(t, openDB(t, path), query, &noTokens, &noCost, &noSession, &attrs)
			} else if err := pgConnect(t, string(cfg.Storage.DSN)).QueryRow(context.Background(), query).Scan(&noTokens, &noCost, &noSession, &attrs); err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(attrs), &got); err != nil {
				t.Fatalf("attributes: %v", err)
			}
			if !noTokens || !noCost || !noSession || got[fallomattr.InputTokens] != float64(math.MaxInt64-10) ||
				got[fallomattr.TotalCostUSD] != 1e12 || len(got[fallomattr.SessionID].(string)) != 5000 {
				t.Fatalf("columns NULL: tokens %v cost %v session %v; attributes keep them: %v %v %d", noTokens, noCost, noSession,
					got[fallomattr.InputTokens], got[fallomattr.TotalCostUSD], len(got[fallomattr.SessionID].(string)))
			}
			depth := 0
			for v := got["deep"]; ; depth++ {
				m, ok := v.(map[string]any)
				if !ok {
					if v != "[nested deeper than 512 levels: dropped]" {
						t.Fatalf("at depth %d: %v", depth, v)
					}
					break
				}
				v = m["a"]
			}
			if depth != storage.MaxJSONDepth {
				t.Fatalf("attributes cut at %d levels, want %d", depth, storage.MaxJSONDepth)
			}
		})
	}
}
