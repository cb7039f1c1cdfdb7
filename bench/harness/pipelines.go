package harness

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/fallom/fallom-collector/internal/testutil/pgtest"
)

// Pipeline names, as they appear in results/latest.json.
const (
	OursNop    = "ours_nop"
	OursSQLite = "ours_sqlite"
	// OursSQLiteBase is ours_sqlite built from BaseRev: the same pipeline
	// before a change whose ingest cost is bounded (issue 11.7).
	OursSQLiteBase = "ours_sqlite_base"
	OursPostgres   = "ours_postgres"
	Peer           = "peer"
)

// AllPipelines is the interleaving order of a round.
var AllPipelines = []string{OursNop, OursSQLite, OursSQLiteBase, OursPostgres, Peer}

// Descriptions say what each pipeline is, for the report.
var Descriptions = map[string]string{
	OursNop:        "fallomcol, shipped config with the debug exporter (no queue, sampled basic logging) instead of storage: the ceiling of receiver + fallomauth + memory_limiter + openroutermapping",
	OursSQLite:     "fallomcol, shipped config/config.yaml as is (fallom exporter into SQLite, a 2xx only after the commit)",
	OursSQLiteBase: "ours_sqlite built from the commit before the console's rollups (BENCH_BASE_REV, default " + DefaultBaseRev + ") with the later changes that are not the rollups but move ingest applied (bench/base/<rev>/*.patch: the exporter's 256 queue consumers), on that commit's config/config.yaml",
	OursPostgres:   "fallomcol, shipped config with the fallom exporter on PostgreSQL (a local server from the Debian package, fsync off as pgtest runs it)",
	Peer:           "stock otelcol (ocb, contrib v0.161.0): otlp + bearertokenauth + memory_limiter + transform (OTTL mapping) + batch + file exporter",
}

// World is what every run shares: binaries, the API key, the PostgreSQL
// server, the memory limit.
type World struct {
	Root    string
	OursBin string
	// BaseBin and BaseTree: the ours_sqlite_base collector and the source
	// tree it was built from.
	BaseBin, BaseTree string
	PeerBin           string
	Key               string
	KeysFile          string
	WorkDir           string
	MemoryLimitMiB    int
	MemorySpikeMiB    int
	PG                *pgtest.Server
	Log               io.Writer
	// ProfileDir: see Options.ProfileDir.
	ProfileDir string
	runs       int
}

// Instance is one running collector of one pipeline.
type Instance struct {
	Pipeline string
	Proc     *Process
	URL      string
	// DBPid is the PostgreSQL postmaster (0 when the storage is in-process
	// or absent): its CPU is reported beside the collector's.
	DBPid int
	// CountStored returns how many spans the storage holds; nil when the
	// pipeline's output is not queryable (nop, peer's JSON file).
	CountStored func(ctx context.Context) (int64, error)
	RunDir      string
	// PprofAddr is the pprof extension's address ("" when not profiled).
	PprofAddr string
}

// Start launches a fresh collector of the named pipeline in its own run
// directory and waits until it accepts authenticated requests.
func (w *World) Start(ctx context.Context, name string) (*Instance, error) {
	w.runs++
	runDir := filepath.Join(w.WorkDir, fmt.Sprintf("%03d-%s", w.runs, name))
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return nil, err
	}
	httpAddr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	inst := &Instance{Pipeline: name, URL: "http://" + httpAddr + "/v1/traces", RunDir: runDir}
	var bin string
	var args, env []string
	metricsPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	switch name {
	case OursNop, OursSQLite, OursSQLiteBase, OursPostgres:
		bin = w.OursBin
		root := w.Root
		if name == OursSQLiteBase {
			if w.BaseBin == "" {
				return nil, fmt.Errorf("%s: the base binary was not built", name)
			}
			bin, root = w.BaseBin, w.BaseTree
		}
		grpcAddr, err1 := FreeAddr()
		healthAddr, err2 := FreeAddr()
		consoleAddr, err3 := FreeAddr()
		sdkAddr, err4 := FreeAddr()
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			return nil, fmt.Errorf("no free port: %v %v %v %v", err1, err2, err3, err4)
		}
		dbPath := filepath.Join(runDir, "fallom.db")
		args = []string{"--config", filepath.Join(root, "config", "config.yaml")}
		env = []string{
			"FALLOM_KEYS_FILE=" + w.KeysFile,
			"FALLOM_DB=" + dbPath,
			"FALLOM_HTTP_ENDPOINT=" + httpAddr,
			"FALLOM_GRPC_ENDPOINT=" + grpcAddr,
			"FALLOM_HEALTH_ENDPOINT=" + healthAddr,
			"FALLOM_CONSOLE_ENDPOINT=" + consoleAddr,
			"FALLOM_SDK_ENDPOINT=" + sdkAddr,
			"FALLOM_METRICS_PORT=" + strconv.Itoa(metricsPort),
			"FALLOM_MEMORY_LIMIT_MIB=" + strconv.Itoa(w.MemoryLimitMiB),
			"FALLOM_MEMORY_SPIKE_MIB=" + strconv.Itoa(w.MemorySpikeMiB),
		}
		switch name {
		case OursNop:
			args = append(args, "--config", filepath.Join(w.Root, "bench", "configs", "ours_nop.overlay.yaml"))
		case OursSQLite, OursSQLiteBase:
			inst.CountStored = func(ctx context.Context) (int64, error) { return countSQLite(ctx, dbPath) }
		}
		if w.ProfileDir != "" {
			overlay, addr, err := writePprofOverlay(filepath.Join(root, "config", "config.yaml"), runDir)
			if err != nil {
				return nil, err
			}
			args = append(args, "--config", overlay)
			inst.PprofAddr = addr
		}
		switch name {
		case OursPostgres:
			if w.PG == nil {
				return nil, fmt.Errorf("%s: no PostgreSQL server", name)
			}
			dsn, err := w.PG.CreateDatabase(fmt.Sprintf("bench_%03d", w.runs))
			if err != nil {
				return nil, err
			}
			args = append(args, "--config", filepath.Join(w.Root, "bench", "configs", "ours_postgres.overlay.yaml"))
			env = append(env, "BENCH_PG_DSN="+dsn)
			inst.DBPid, _ = postmasterPid(w.PG)
			inst.CountStored = func(ctx context.Context) (int64, error) { return countPostgres(ctx, dsn) }
		}
	case Peer:
		if w.PeerBin == "" {
			return nil, fmt.Errorf("%s: the peer binary was not built", name)
		}
		bin = w.PeerBin
		args = []string{"--config", filepath.Join(w.Root, PeerConfig)}
		env = []string{
			"BENCH_HTTP_ENDPOINT=" + httpAddr,
			"BENCH_TOKEN=" + w.Key,
			"BENCH_OUTPUT=" + filepath.Join(runDir, "spans.jsonl"),
			"BENCH_METRICS_PORT=" + strconv.Itoa(metricsPort),
			"BENCH_MEMORY_LIMIT_MIB=" + strconv.Itoa(w.MemoryLimitMiB),
			"BENCH_MEMORY_SPIKE_MIB=" + strconv.Itoa(w.MemorySpikeMiB),
		}
	default:
		return nil, fmt.Errorf("unknown pipeline %q (want one of %s)", name, strings.Join(AllPipelines, ", "))
	}
	proc, err := StartProcess(name, bin, args, env, runDir, filepath.Join(runDir, "collector.log"))
	if err != nil {
		return nil, err
	}
	inst.Proc = proc
	if err := proc.WaitReady(ctx, inst.URL, w.Key, 90*time.Second); err != nil {
		_ = proc.Stop(10 * time.Second)
		return nil, err
	}
	return inst, nil
}

// Cleanup removes the run directory (the peer's JSON output and the SQLite
// files grow by hundreds of MiB per run).
func (i *Instance) Cleanup() { _ = os.RemoveAll(i.RunDir) }

func countSQLite(ctx context.Context, path string) (int64, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int64
	err = db.QueryRowContext(ctx, "SELECT count(*) FROM spans").Scan(&n)
	return n, err
}

func countPostgres(ctx context.Context, dsn string) (int64, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int64
	err = conn.QueryRow(ctx, "SELECT count(*) FROM spans").Scan(&n)
	return n, err
}

// postmasterPid reads the server's pid from its postmaster.pid file.
func postmasterPid(s *pgtest.Server) (int, error) {
	raw, err := os.ReadFile(filepath.Join(s.Dir(), "data", "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	first, _, _ := strings.Cut(string(raw), "\n")
	return strconv.Atoi(strings.TrimSpace(first))
}
