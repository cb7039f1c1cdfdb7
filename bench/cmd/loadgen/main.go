// Command loadgen sends realistic OpenRouter Broadcast deliveries to a
// collector on this machine as OTLP/HTTP JSON and prints what was
// acknowledged, as JSON.
//
//	go run ./bench/cmd/loadgen -url http://127.0.0.1:4318/v1/traces -key flm_... -c 16 -d 30s
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/fallom/fallom-collector/bench/loadgen"
)

func main() {
	def := loadgen.DefaultDeliveryConfig()
	var cfg loadgen.Config
	flag.StringVar(&cfg.URL, "url", "http://127.0.0.1:4318/v1/traces", "OTLP/HTTP traces endpoint (loopback only)")
	flag.StringVar(&cfg.APIKey, "key", os.Getenv("FALLOM_KEY"), "API key sent as `Authorization: Bearer <key>` (default $FALLOM_KEY)")
	flag.IntVar(&cfg.Concurrency, "c", 8, "concurrent connections (closed loop)")
	flag.Float64Var(&cfg.Rate, "rate", 0, "open loop: requests per second regardless of answers (0 = closed loop)")
	flag.IntVar(&cfg.MaxInFlight, "max-in-flight", 512, "open loop: most outstanding requests; requests due beyond it are shed")
	flag.DurationVar(&cfg.Duration, "d", 0, "run duration (bounded by 30m)")
	flag.Int64Var(&cfg.Requests, "n", 0, "stop after this many requests")
	flag.IntVar(&cfg.DeliveriesPerRequest, "deliveries-per-request", 1, "deliveries per request (OpenRouter sends 1)")
	flag.DurationVar(&cfg.Timeout, "timeout", 0, "per-request timeout (default 10s)")
	flag.IntVar(&cfg.Delivery.PromptBytes, "prompt-bytes", def.PromptBytes, "size of each prompt's user message")
	flag.IntVar(&cfg.Delivery.CompletionBytes, "completion-bytes", def.CompletionBytes, "size of each completion")
	flag.IntVar(&cfg.Delivery.Sessions, "sessions", def.Sessions, "distinct session ids")
	flag.IntVar(&cfg.Delivery.Customers, "customers", def.Customers, "distinct customer ids")
	flag.Float64Var(&cfg.Delivery.ErrorRate, "error-rate", def.ErrorRate, "fraction of failed generations")
	flag.Parse()
	if cfg.Duration == 0 && cfg.Requests == 0 {
		cfg.Duration = 10e9
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := loadgen.Run(ctx, cfg)
	if err != nil && res.Requests == 0 {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	out, _ := json.MarshalIndent(res, "", "  ")
	fmt.Println(string(out))
	fmt.Fprintf(os.Stderr, "acked %d/%d spans in %.1fs: %.0f spans/s, p50 %.1f ms, p99 %.1f ms, %d errors\n",
		res.AckedSpans, res.SentSpans, res.Elapsed.Seconds(), res.SpansPerSec, res.LatencyOK.P50, res.LatencyOK.P99, res.Errors())
}
