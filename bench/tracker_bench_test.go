package bench

import (
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/edgetrack/edgetrack/bench/loadgen"
	"github.com/edgetrack/edgetrack/client/tracker"
	"github.com/edgetrack/edgetrack/internal/asset"
)

// trackerBrotli is the tracker as the edge sends it to a browser (brotli),
// for the baseline to send the same bytes.
func trackerBrotli() asset.Variant {
	f, err := asset.New("et.js", "text/javascript; charset=utf-8", tracker.Script)
	if err != nil {
		panic(err)
	}
	return f.Pick("br")
}

// bareStatic is the baseline of the tracker benchmark: fasthttp answering
// every request with the same precompressed bytes and fixed headers, no
// negotiation, no ETag check.
func bareStatic() fasthttp.RequestHandler {
	v := trackerBrotli()
	return func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Content-Type", "text/javascript; charset=utf-8")
		ctx.Response.Header.Set("Content-Encoding", v.Encoding)
		ctx.Response.Header.Set("Cache-Control", "public, no-cache")
		ctx.SetBody(v.Body)
	}
}

// BenchmarkTracker fetches /et.js as a browser does (Accept-Encoding with
// br, a Cookie header) with 16 keep-alive clients, from a bare fasthttp
// static handler and from the edge, which negotiates the encoding, checks
// the optout cookie and sets its caching headers. It reports the tracker's
// size as sent: gzip and brotli.
func BenchmarkTracker(b *testing.B) {
	f, err := asset.New("et.js", "text/javascript", tracker.Script)
	if err != nil {
		b.Fatal(err)
	}
	raw, gz, br := f.Size()
	for _, c := range []struct{ name, kind string }{{"bare-fasthttp-static", serveStatic}, {"edge", serveEdge}} {
		b.Run(c.name, func(b *testing.B) {
			srv := startServerProcess(b, c.kind, onDisk)
			url := "http://" + srv.addr + tracker.Path
			res := measure(b, srv, sized(loadgen.Options{Addr: srv.addr, Concurrency: 16,
				Make: func(i int, req *fasthttp.Request) {
					req.SetRequestURI(url)
					req.Header.Set("Accept-Encoding", "gzip, deflate, br, zstd")
					req.Header.Set("Cookie", "uid=0123456789abcdef0123456789abcdef")
				},
				OK: func(s int) bool { return s == 200 }}, b.N))
			b.ReportMetric(res.Throughput(), "req/s")
			b.ReportMetric(float64(raw), "script-B")
			b.ReportMetric(float64(gz), "gzip-B")
			b.ReportMetric(float64(br), "brotli-B")
		})
	}
}
