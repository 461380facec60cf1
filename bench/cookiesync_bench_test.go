package bench

import (
	"context"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/edgetrack/edgetrack/bench/loadgen"
)

func redirects(addr string, rate float64) loadgen.Options {
	url := "http://" + addr + "/cs/i?p=acme"
	return loadgen.Options{
		Addr: addr, Concurrency: 16, Rate: rate,
		Make: func(i int, req *fasthttp.Request) { req.SetRequestURI(url) },
		OK:   func(s int) bool { return s == 302 },
	}
}

// BenchmarkCookieSync measures init redirects (a 302 to the partner with a
// new uid cookie): the bare fasthttp redirect and the edge's cookiesync rule,
// closed loop with 16 keep-alive clients; then the rule at half its own
// closed-loop rate, reporting latency percentiles.
func BenchmarkCookieSync(b *testing.B) {
	for _, c := range []struct{ name, kind string }{{"bare-redirect", serveRedirect}, {"rule", serveCookieSync}} {
		b.Run(c.name, func(b *testing.B) {
			srv := startServerProcess(b, c.kind, onDisk)
			res := measure(b, srv, sized(redirects(srv.addr, 0), b.N))
			b.ReportMetric(res.Throughput(), "redirects/s")
		})
	}
	b.Run("rule-at-half-rate", func(b *testing.B) {
		srv := startServerProcess(b, serveCookieSync, onDisk)
		pinLoad(b)
		// A short probe of the closed-loop rate.
		probe := redirects(srv.addr, 0)
		probe.Requests = 10000
		peak := loadgen.Run(context.Background(), probe)
		res := measure(b, srv, sized(redirects(srv.addr, peak.Throughput()/2), b.N))
		b.ReportMetric(peak.Throughput()/2, "rate/s")
		b.ReportMetric(float64(res.P50.Microseconds()), "p50-µs")
		b.ReportMetric(float64(res.P999.Microseconds()), "p999-µs")
	})
}
