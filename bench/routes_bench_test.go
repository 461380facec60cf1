package bench

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/bench/loadgen"
	"github.com/edgetrack/edgetrack/edge"
	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/wasm/rules/hamustro/hamustrotest"
)

// startEdgeOnly runs an edge with no reachable aggregator: accepted events
// stay in its synced spool, which is what a client waits for.
func startEdgeOnly(b *testing.B, native bool) string {
	cfg := config.Default().Edge
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir = filepath.Join(b.TempDir(), "edge")
	cfg.AggregatorURL = "http://127.0.0.1:1"
	cfg.Token = edgeToken
	cfg.Hamustro.Secrets = []string{hamustrotest.Secret}
	cfg.Spool.MinFreeBytes = 0
	cfg.Rules.Pull = false
	ctx, cancel := context.WithCancel(context.Background())
	e, err := edge.New(ctx, edge.Options{Config: cfg, Logger: quiet(), Native: native})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	return e.Addr()
}

// startBareOK runs the limit of the server stack: a fasthttp handler that
// reads the body and answers 200 (201 for /events).
func startBareOK(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if len(ctx.PostBody()) == 0 {
			ctx.SetStatusCode(400)
			return
		}
		if string(ctx.Path()) == "/events" {
			ctx.SetStatusCode(201)
		}
	}}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String()
}

var targets = []struct {
	name  string
	start func(*testing.B) string
}{
	{"bare-fasthttp", startBareOK},
	{"edge-native-rule", func(b *testing.B) string { return startEdgeOnly(b, true) }},
	{"edge-wasm-rule", func(b *testing.B) string { return startEdgeOnly(b, false) }},
}

// BenchmarkTrack sends signed 10-payload Hamustro collections (each a new
// session, so every event is new) with 16 keep-alive clients: to a bare
// fasthttp handler, to an edge running the hamustro logic compiled
// natively, and to an edge running it as wasm. The edges answer only after
// the events are in a synced spool.
func BenchmarkTrack(b *testing.B) {
	for _, t := range targets {
		b.Run(t.name, func(b *testing.B) {
			addr := t.start(b)
			bodies := make([][]byte, 256)
			for i := range bodies {
				c := hamustrotest.Collection(payloads)
				c.DeviceId = proto.String("bench-" + strconv.Itoa(i))
				c.Session = proto.String(hamustrotest.SessionOf(c))
				bodies[i], _ = proto.Marshal(c)
			}
			ts := strconv.FormatInt(time.Now().Unix(), 10)
			sigs := make([]string, len(bodies))
			for i, body := range bodies {
				sigs[i] = hamustrotest.Sign(ts, body, hamustrotest.Secret)
			}
			b.ResetTimer()
			res := loadgen.Run(context.Background(), sized(loadgen.Options{Addr: addr, Concurrency: 16,
				Make: func(i int, req *fasthttp.Request) {
					req.SetRequestURI("http://" + addr + "/api/v1/track")
					req.Header.SetMethod("POST")
					req.Header.Set("X-Hamustro-Time", ts)
					req.Header.Set("X-Hamustro-Signature", sigs[i%len(sigs)])
					req.SetBody(bodies[i%len(bodies)])
				},
				OK: func(s int) bool { return s == 200 }}, b.N))
			if res.Errors > 0 {
				b.Fatalf("errors: %v", res)
			}
			b.ReportMetric(res.Throughput(), "req/s")
			b.ReportMetric(res.Throughput()*payloads, "events/s")
			b.ReportMetric(float64(res.P99.Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkEvents sends one The Eye JSON event per request, same targets.
func BenchmarkEvents(b *testing.B) {
	for _, t := range targets {
		b.Run(t.name, func(b *testing.B) {
			addr := t.start(b)
			ts := time.Now().UTC().Format("2006-01-02 15:04:05.000000")
			b.ResetTimer()
			res := loadgen.Run(context.Background(), sized(loadgen.Options{Addr: addr, Concurrency: 16,
				Make: func(i int, req *fasthttp.Request) {
					req.SetRequestURI("http://" + addr + "/events")
					req.Header.SetMethod("POST")
					req.Header.SetContentType("application/json")
					req.SetBodyString(`{"session_id":"s` + strconv.Itoa(i) + `","category":"page_interaction","name":"cta_click","data":{"host":"www.example.com","path":"/pricing","element":"chat bubble"},"timestamp":"` + ts + `"}`)
				},
				OK: func(s int) bool { return s == 201 }}, b.N))
			if res.Errors > 0 {
				b.Fatalf("errors: %v", res)
			}
			b.ReportMetric(res.Throughput(), "req/s")
			b.ReportMetric(float64(res.P99.Microseconds()), "p99-µs")
		})
	}
}
