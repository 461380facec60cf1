package bench

import (
	"context"
	"net"
	"path/filepath"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/edgetrack/edgetrack/bench/loadgen"
	"github.com/edgetrack/edgetrack/edge"
	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/wasm/rules/cookiesync/cookiesynctest"
)

// startCookieSyncEdge runs an edge with one cookie-sync partner and no
// aggregator (init answers carry no events).
func startCookieSyncEdge(b *testing.B) string {
	cfg := config.Default().Edge
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir = filepath.Join(b.TempDir(), "edge")
	cfg.AggregatorURL = "http://127.0.0.1:1"
	cfg.Token = edgeToken
	cfg.Hamustro.Secrets = []string{"unused"}
	cfg.Spool.MinFreeBytes = 0
	cfg.Rules.Pull = false
	cfg.CookieSync.Partners = []string{"acme|" + cookiesynctest.AcmeSync + "|" + cookiesynctest.AcmeDone + "|sync.acme.example"}
	cfg.CookieSync.GDPRDefault = "not_applies"
	ctx, cancel := context.WithCancel(context.Background())
	e, err := edge.New(ctx, edge.Options{Config: cfg, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	return e.Addr()
}

// startBareRedirect runs the baseline: a fasthttp handler that answers every
// request with a fixed 302.
func startBareRedirect(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Location", "https://sync.acme.example/cs/s?p=edgetrack&pi=0123456789abcdef0123456789abcdef")
		ctx.SetStatusCode(302)
	}}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String()
}

func redirects(addr string, rate float64, n int) loadgen.Result {
	return loadgen.Run(context.Background(), sized(loadgen.Options{
		Addr: addr, Concurrency: 16, Rate: rate,
		Make: func(i int, req *fasthttp.Request) { req.SetRequestURI("http://" + addr + "/cs/i?p=acme") },
		OK:   func(s int) bool { return s == 302 },
	}, n))
}

// BenchmarkCookieSync measures init redirects (a 302 to the partner with a
// new uid cookie): the bare fasthttp redirect and the edge's cookiesync rule,
// closed loop with 16 keep-alive clients; then the rule at half its own
// closed-loop rate, reporting latency percentiles. Load generator and server
// share the machine's cores.
func BenchmarkCookieSync(b *testing.B) {
	for _, c := range []struct {
		name  string
		start func(*testing.B) string
	}{{"bare-redirect", startBareRedirect}, {"rule", startCookieSyncEdge}} {
		b.Run(c.name, func(b *testing.B) {
			addr := c.start(b)
			b.ResetTimer()
			res := redirects(addr, 0, b.N)
			if res.Errors > 0 {
				b.Fatalf("errors: %v", res)
			}
			b.ReportMetric(res.Throughput(), "redirects/s")
			b.ReportMetric(float64(res.P99.Microseconds()), "p99-µs")
		})
	}
	b.Run("rule-at-half-rate", func(b *testing.B) {
		addr := startCookieSyncEdge(b)
		peak := loadgen.Run(context.Background(), loadgen.Options{ // a short probe of the closed-loop rate
			Addr: addr, Concurrency: 16, Requests: 5000,
			Make: func(i int, req *fasthttp.Request) { req.SetRequestURI("http://" + addr + "/cs/i?p=acme") },
		})
		b.ResetTimer()
		res := redirects(addr, peak.Throughput()/2, b.N)
		if res.Errors > 0 {
			b.Fatalf("errors: %v", res)
		}
		b.ReportMetric(peak.Throughput()/2, "rate/s")
		b.ReportMetric(float64(res.P50.Microseconds()), "p50-µs")
		b.ReportMetric(float64(res.P99.Microseconds()), "p99-µs")
		b.ReportMetric(float64(res.P999.Microseconds()), "p999-µs")
	})
}
