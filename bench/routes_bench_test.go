package bench

import (
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/bench/loadgen"
	"github.com/edgetrack/edgetrack/wasm/rules/hamustro/hamustrotest"
)

// targets are the servers the track and events scenarios compare, each in
// its own process: the limit of the server stack; the edge with the rule's
// logic compiled natively and the edge as shipped (the rule as wasm), both
// with their synced spools on tmpfs, where fsync returns at once, so that
// they compare CPU cost rather than this machine's disk; the wasm edge with
// every per-client rate limit on, none of them reached (the limits' cost
// per request for a known client); and the wasm edge
// with its spool on disk, which shows what the disk's fsyncs add. None of
// them forwards (see startServer), so none is the configuration an edge
// ships with.
var targets = []struct {
	name  string
	kind  string
	where storage
}{
	{"bare-fasthttp", serveBare, onDisk},
	{"edge-native-rule", serveEdgeNative, inRAM},
	{"edge-wasm-rule", serveEdge, inRAM},
	{"edge-wasm-rule-limits", serveEdgeLimits, inRAM},
	{"edge-wasm-rule-disk", serveEdge, onDisk},
}

// BenchmarkTrack sends signed 10-payload Hamustro collections with 16
// keep-alive clients to each of the targets. The edges answer only after
// the events are in their synced spool.
func BenchmarkTrack(b *testing.B) {
	track := trackRequests()
	for _, t := range targets {
		b.Run(t.name, func(b *testing.B) {
			srv := startServerProcess(b, t.kind, t.where)
			res := measure(b, srv, sized(loadgen.Options{Addr: srv.addr, Concurrency: 16,
				Make: track("http://" + srv.addr + "/api/v1/track"),
				OK:   func(s int) bool { return s == 200 }}, b.N))
			b.ReportMetric(res.Throughput(), "req/s")
			b.ReportMetric(res.Throughput()*payloads, "events/s")
		})
	}
}

// trackRequests returns a maker of signed 10-payload Hamustro collections
// (256 devices, in turn) POSTed to url.
func trackRequests() func(url string) func(i int, req *fasthttp.Request) {
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
	return func(url string) func(i int, req *fasthttp.Request) {
		return func(i int, req *fasthttp.Request) {
			req.SetRequestURI(url)
			req.Header.SetMethod("POST")
			req.Header.Set("X-Hamustro-Time", ts)
			req.Header.Set("X-Hamustro-Signature", sigs[i%len(sigs)])
			req.SetBody(bodies[i%len(bodies)])
		}
	}
}

// BenchmarkEvents sends one The Eye JSON event per request, same targets.
func BenchmarkEvents(b *testing.B) {
	ts := time.Now().UTC().Format("2006-01-02 15:04:05.000000")
	for _, t := range targets {
		b.Run(t.name, func(b *testing.B) {
			srv := startServerProcess(b, t.kind, t.where)
			url := "http://" + srv.addr + "/events"
			res := measure(b, srv, sized(loadgen.Options{Addr: srv.addr, Concurrency: 16,
				Make: func(i int, req *fasthttp.Request) {
					req.SetRequestURI(url)
					req.Header.SetMethod("POST")
					req.Header.SetContentType("application/json")
					req.SetBodyString(`{"session_id":"s` + strconv.Itoa(i) + `","category":"page_interaction","name":"cta_click","data":{"host":"www.example.com","path":"/pricing","element":"chat bubble"},"timestamp":"` + ts + `"}`)
				},
				OK: func(s int) bool { return s == 201 }}, b.N))
			b.ReportMetric(res.Throughput(), "req/s")
		})
	}
}
