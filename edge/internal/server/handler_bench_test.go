package server

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/edgetrack/edgetrack/edge/internal/ruleslot"
	"github.com/edgetrack/edgetrack/edge/internal/spool"
	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/dist"
	"github.com/edgetrack/edgetrack/wasm/host"
	"github.com/edgetrack/edgetrack/wasm/rules/eye/eyetest"
	"github.com/edgetrack/edgetrack/wasm/rules/hamustro/hamustrotest"
)

// BenchmarkHandler calls the edge's handler in this process, one request at
// a time, with the built-in rule as wasm and a synced spool on tmpfs (where
// fsync returns at once; the load benchmarks in ./bench measure the disk):
// what one request of each route costs the edge's own code, without the
// network. Its allocs/op is the allocation budget of a route (make bench
// puts it in the table). track is a signed 10-payload collection, events
// one The Eye event.
func BenchmarkHandler(b *testing.B) {
	track, trackHeaders := signed(b, 10)
	routes := []struct {
		name, rule, path string
		cfg              *abi.Config
		fill             func(req *fasthttp.Request)
		status           int
	}{
		{"track", "hamustro", "/api/v1/track", hamustrotest.Config(), func(req *fasthttp.Request) {
			for k, v := range trackHeaders {
				req.Header.Set(k, v)
			}
			req.SetBody(track)
		}, 200},
		{"events", "eye", "/events", eyetest.Config(), func(req *fasthttp.Request) {
			req.Header.SetContentType("application/json")
			req.SetBodyString(`{"session_id":"s1","category":"page_interaction","name":"cta_click","data":{"host":"www.example.com","path":"/pricing","element":"chat bubble"},"timestamp":"` +
				time.Now().UTC().Format("2006-01-02 15:04:05.000000") + `"}`)
		}, 201},
	}
	for _, r := range routes {
		b.Run(r.name, func(b *testing.B) {
			s := handlerServer(b, r.rule, r.path, r.cfg)
			var ctx fasthttp.RequestCtx
			prepare := func() {
				ctx.Request.Reset()
				ctx.Response.Reset()
				ctx.Request.SetRequestURI(r.path)
				ctx.Request.Header.SetMethod("POST")
				r.fill(&ctx.Request)
			}
			prepare()
			s.handle(&ctx)
			if got := ctx.Response.StatusCode(); got != r.status {
				b.Fatalf("status %d, want %d: %s", got, r.status, ctx.Response.Body())
			}
			b.ReportAllocs()
			for b.Loop() {
				prepare()
				s.handle(&ctx)
			}
		})
	}
}

// handlerServer is a Server with one route running the built-in rule as
// wasm, its spool on tmpfs when there is one.
func handlerServer(b *testing.B, rule, path string, cfg *abi.Config) *Server {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "edgetrack-handler-"); err == nil {
			b.Cleanup(func() { os.RemoveAll(d) })
			dir = d
		}
	}
	sp, err := spool.Open(spool.Options{Dir: dir, MinFreeBytes: -1, QuotaBytes: 16 << 30})
	if err != nil {
		b.Fatal(err)
	}
	rt, err := host.New(ctx, host.Options{CallTimeout: 2 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	wasm, ok := dist.Rule(rule)
	if !ok {
		b.Fatalf("no built-in rule %q", rule)
	}
	m, err := rt.Load(ctx, rule, wasm, cfg)
	if err != nil {
		b.Fatal(err)
	}
	slot := &ruleslot.Slot{}
	slot.Swap(m)
	s, err := New(Options{EdgeID: "edge-bench", Spool: sp, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second},
		&Route{Name: rule, Path: path, Methods: []string{"POST"}, Rule: slot})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		m.Close(ctx)
		rt.Close(ctx)
		sp.Close()
	})
	return s
}
