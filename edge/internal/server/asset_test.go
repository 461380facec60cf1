package server

import (
	"log/slog"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/edgetrack/edgetrack/client/tracker"
	"github.com/edgetrack/edgetrack/edge/internal/spool"
	"github.com/edgetrack/edgetrack/internal/asset"
)

func assetServer(tb testing.TB) *Server {
	tb.Helper()
	// A quiet spool: its start-up line would land inside the benchmark's
	// output lines.
	sp, err := spool.Open(spool.Options{Dir: tb.TempDir(), MinFreeBytes: -1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { sp.Close() })
	f, err := asset.New("et.js", "text/javascript; charset=utf-8", tracker.Script)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := New(Options{Spool: sp, Logger: slog.New(slog.DiscardHandler), Assets: []*Asset{{Path: tracker.Path, File: f, OptedOut: f, CacheControl: "public, no-cache"}}})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func trackerRequest(ctx *fasthttp.RequestCtx) {
	ctx.Request.Reset()
	ctx.Response.Reset()
	ctx.Request.SetRequestURI(tracker.Path)
	ctx.Request.Header.Set("Accept-Encoding", "gzip, deflate, br, zstd")
	ctx.Request.Header.Set("Cookie", "uid=0123456789abcdef0123456789abcdef")
}

// TestAssetAllocations: answering /et.js allocates nothing once warm.
func TestAssetAllocations(t *testing.T) {
	s := assetServer(t)
	var ctx fasthttp.RequestCtx
	trackerRequest(&ctx)
	s.handle(&ctx)
	if ctx.Response.StatusCode() != 200 || string(ctx.Response.Header.Peek("Content-Encoding")) != "br" {
		t.Fatalf("%d %s", ctx.Response.StatusCode(), ctx.Response.Header.Peek("Content-Encoding"))
	}
	if n := testing.AllocsPerRun(100, func() { trackerRequest(&ctx); s.handle(&ctx) }); n > 0 {
		t.Errorf("%v allocations per request", n)
	}
}

// BenchmarkAsset is the edge's handler answering /et.js, in process: the
// request a browser sends, through Server.handle (metrics, routing, the
// optout cookie, encoding, ETag, headers).
func BenchmarkAsset(b *testing.B) {
	s := assetServer(b)
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	for b.Loop() {
		trackerRequest(&ctx)
		s.handle(&ctx)
	}
}

// BenchmarkAssetBaseline is a bare fasthttp handler answering the same
// request with the same brotli bytes and fixed headers.
func BenchmarkAssetBaseline(b *testing.B) {
	f, err := asset.New("et.js", "text/javascript; charset=utf-8", tracker.Script)
	if err != nil {
		b.Fatal(err)
	}
	v := f.Pick("br")
	bare := func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Content-Type", "text/javascript; charset=utf-8")
		ctx.Response.Header.Set("Content-Encoding", v.Encoding)
		ctx.Response.Header.Set("Cache-Control", "public, no-cache")
		ctx.SetBody(v.Body)
	}
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	for b.Loop() {
		trackerRequest(&ctx)
		bare(&ctx)
	}
}
