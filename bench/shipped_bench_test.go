package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/edgetrack/edgetrack/aggregator"
	"github.com/edgetrack/edgetrack/bench/loadgen"
	"github.com/edgetrack/edgetrack/internal/config"
)

// BenchmarkShippedEdge is the edge as users run it — the default
// configuration, its spool on disk, forwarding to a real aggregator (in
// this process, its store on disk) — beside bare fasthttp, on the track
// route (signed 10-payload collections) at 16, 64 and 256 keep-alive
// connections. req/fsync is requests answered per WAL fsync of the edge's
// spool: the group commit. edge-gomaxprocs-1 is the same edge with
// GOMAXPROCS=1 set in its environment, which internal/procs leaves alone:
// what raising it buys. The aggregator shares the load generator's CPU.
// spool-depth-end is how many events were still waiting to be forwarded
// when the load ended: whether forwarding kept up. edge-forward-batch-1000
// (at 256 connections) is the edge with the forwarder's earlier default of
// 1,000 events per batch, which did not keep up; edge-at-half-rate is the
// edge offered half the rate it reached at 256 connections (open loop), for
// its latency when it is not saturated (p50-µs, p99-µs).
func BenchmarkShippedEdge(b *testing.B) {
	aggAddr := startBenchAggregator(b)
	track := trackRequests()
	var peak float64 // the edge's req/s at 256 connections
	for _, conns := range []int{16, 64, 256} {
		kinds := []struct{ name, kind, env string }{
			{"bare-fasthttp", serveBare, ""}, {"edge", serveEdgeShipped, ""}, {"edge-gomaxprocs-1", serveEdgeShipped, "GOMAXPROCS=1"},
		}
		if conns == 256 {
			kinds = append(kinds, struct{ name, kind, env string }{"edge-at-half-rate", serveEdgeShipped, ""},
				struct{ name, kind, env string }{"edge-forward-batch-1000", serveEdgeShipped, "BENCH_FORWARD_BATCH=1000"})
		}
		for _, t := range kinds {
			b.Run(fmt.Sprintf("conns=%d/%s", conns, t.name), func(b *testing.B) {
				env := []string{"BENCH_AGGREGATOR=http://" + aggAddr}
				if t.env != "" {
					env = append(env, t.env)
				}
				srv := startServerProcess(b, t.kind, onDisk, env...)
				o := loadgen.Options{Addr: srv.addr, Concurrency: conns,
					Make: track("http://" + srv.addr + "/api/v1/track"),
					OK:   func(s int) bool { return s == 200 }}
				if t.name == "edge-at-half-rate" {
					if peak == 0 {
						b.Skip("needs conns=256/edge's rate")
					}
					o.Rate = peak / 2
					b.ReportMetric(o.Rate, "rate/s")
				}
				res := measure(b, srv, sized(o, b.N))
				if conns == 256 && t.name == "edge" {
					peak = res.Throughput()
				}
				b.ReportMetric(res.Throughput(), "req/s")
				b.ReportMetric(float64(res.P50.Microseconds()), "p50-µs")
				if t.kind == serveEdgeShipped {
					// Whether forwarding kept up: the events still
					// waiting in the spool when the load ended.
					b.ReportMetric(srv.metric(b, "edgetrack_spool_depth"), "spool-depth-end")
				}
			})
		}
	}
}

// startBenchAggregator runs an aggregator with the default configuration
// (and the benchmarks' edge token) in this process until b ends.
func startBenchAggregator(b *testing.B) string {
	b.Helper()
	cfg := config.Default().Aggregator
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir = filepath.Join(b.TempDir(), "agg")
	cfg.Tokens.Edge, cfg.Tokens.Query = []string{edgeToken}, []string{queryToken}
	agg, err := aggregator.New(aggregator.Options{Config: cfg, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { agg.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	return agg.Addr()
}
