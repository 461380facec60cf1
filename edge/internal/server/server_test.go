package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/edge/internal/ratelimit"
	"github.com/edgetrack/edgetrack/edge/internal/ruleslot"
	"github.com/edgetrack/edgetrack/edge/internal/spool"
	"github.com/edgetrack/edgetrack/proto/eventpb"
	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/dist"
	"github.com/edgetrack/edgetrack/wasm/host"
	"github.com/edgetrack/edgetrack/wasm/rules/hamustro/hamustrotest"
)

type fixture struct {
	srv   *Server
	sp    *spool.Spool
	url   string
	slot  *ruleslot.Slot
	rt    *host.Runtime
	panic bool
	mu    sync.Mutex
}

type fixtureOpts struct {
	quota     int64
	minFree   int64 // 0 = the disk check is off
	maxBody   int
	maxHeader int
	trusted   []netip.Prefix
	wasm      []byte
	// maxInFlight, limit, reg and wrap reach Options.MaxInFlight,
	// Route.Limit, Options.Registerer and the rule the route runs.
	maxInFlight int
	limit       *ratelimit.PerClient
	reg         prometheus.Registerer
	wrap        func(ruleslot.Rule) ruleslot.Rule
}

func newFixture(t *testing.T, o fixtureOpts) *fixture {
	t.Helper()
	ctx := context.Background()
	minFree := o.minFree
	if minFree == 0 {
		minFree = -1
	}
	sp, err := spool.Open(spool.Options{Dir: t.TempDir(), QuotaBytes: o.quota, MinFreeBytes: minFree})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := host.New(ctx, host.Options{CallTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	wasm := o.wasm
	if wasm == nil {
		wasm, _ = dist.Rule("hamustro")
	}
	m, err := rt.Load(ctx, "hamustro", wasm, hamustrotest.Config())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{sp: sp, slot: &ruleslot.Slot{}, rt: rt}
	var rule ruleslot.Rule = m
	if o.wrap != nil {
		rule = o.wrap(m)
	}
	f.slot.Swap(rule)
	route := &Route{Name: "hamustro", Path: "/api/v1/track", Methods: []string{"POST"}, Rule: f.slot}
	if o.limit != nil {
		route.Limit, route.LimitName = o.limit, "hamustro"
	}
	f.srv, err = New(Options{
		EdgeID: "edge-test", MaxBodyBytes: o.maxBody, MaxHeaderBytes: o.maxHeader, TrustedProxies: o.trusted,
		ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second,
		Spool: sp, MaxInFlight: o.maxInFlight, Registerer: o.reg,
		Now: func() time.Time {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.panic {
				panic("test panic")
			}
			return time.Now()
		},
	}, route)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go f.srv.Serve(ln)
	f.url = "http://" + ln.Addr().String()
	t.Cleanup(func() {
		f.srv.Shutdown(context.Background())
		f.slot.Load().Close(context.Background())
		rt.Close(context.Background())
		sp.Close()
	})
	return f
}

func post(t *testing.T, url string, body []byte, header map[string]string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func signed(t testing.TB, n int) ([]byte, map[string]string) {
	body, err := proto.Marshal(hamustrotest.Collection(n))
	if err != nil {
		t.Fatal(err)
	}
	return body, signHeaders(body)
}

func signHeaders(body []byte) map[string]string {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	return map[string]string{"X-Hamustro-Time": ts, "X-Hamustro-Signature": hamustrotest.Sign(ts, body, hamustrotest.Secret)}
}

func spooled(t *testing.T, sp *spool.Spool) []*eventpb.Event {
	t.Helper()
	entries, err := sp.Read(spool.Position{}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []*eventpb.Event
	for _, e := range entries {
		ev := &eventpb.Event{}
		if err := proto.Unmarshal(e.Value, ev); err != nil {
			t.Fatalf("spooled value is not an Event: %v", err)
		}
		out = append(out, ev)
	}
	return out
}

func TestAcceptedEventsAreSpooledBefore200(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	body, h := signed(t, 3)
	code, msg, _ := post(t, f.url+"/api/v1/track", body, h)
	if code != 200 {
		t.Fatalf("status %d: %s", code, msg)
	}
	evs := spooled(t, f.sp)
	if len(evs) != 3 {
		t.Fatalf("%d events spooled, want 3", len(evs))
	}
	ids := hamustrotest.EventIDs(hamustrotest.Collection(3))
	for i, ev := range evs {
		if ev.Id != ids[i] ||
			ev.Edge != "edge-test" || !strings.HasPrefix(ev.Rule, "hamustro@") || ev.ReceivedAt == 0 ||
			ev.Source != eventpb.Source_SOURCE_HAMUSTRO || ev.Ip != "127.0.0.1" {
			t.Errorf("event %d: %+v", i, ev)
		}
	}
}

func TestStatusCodes(t *testing.T) {
	f := newFixture(t, fixtureOpts{maxBody: 64 << 10, maxHeader: 4096})
	good, goodH := signed(t, 2)
	empty, emptyH := signed(t, 0)
	bad := []byte("not protobuf")

	cases := []struct {
		name    string
		method  string
		path    string
		body    []byte
		header  map[string]string
		status  int
		message string
	}{
		{"accepted", "POST", "/api/v1/track", good, goodH, 200, ""},
		{"empty collection", "POST", "/api/v1/track", empty, emptyH, 204, ""},
		{"undecodable", "POST", "/api/v1/track", bad, signHeaders(bad), 400, "not a valid protobuf"},
		{"no signature", "POST", "/api/v1/track", good, map[string]string{"X-Hamustro-Time": goodH["X-Hamustro-Time"]}, 401, "missing X-Hamustro-Signature"},
		{"no time", "POST", "/api/v1/track", good, map[string]string{"X-Hamustro-Signature": goodH["X-Hamustro-Signature"]}, 401, "missing X-Hamustro-Time"},
		{"wrong signature", "POST", "/api/v1/track", good, map[string]string{"X-Hamustro-Time": goodH["X-Hamustro-Time"], "X-Hamustro-Signature": "AAAA"}, 401, "invalid X-Hamustro-Signature"},
		{"wrong method", "GET", "/api/v1/track", nil, nil, 405, "not allowed"},
		{"unknown path", "POST", "/nope", good, goodH, 404, "no such endpoint"},
		{"body too large", "POST", "/api/v1/track", make([]byte, 65<<10), nil, 413, "exceeds"},
		{"headers too large", "POST", "/api/v1/track", good, map[string]string{"X-Big": strings.Repeat("a", 5000)}, 431, "headers exceed"},
		{"healthz", "GET", "/healthz", nil, nil, 200, "ok"},
		{"readyz", "GET", "/readyz", nil, nil, 200, "ready"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, f.url+c.path, bytes.NewReader(c.body))
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status || !strings.Contains(string(b), c.message) {
				t.Fatalf("got %d %q, want %d containing %q", resp.StatusCode, b, c.status, c.message)
			}
			if c.status == 405 && resp.Header.Get("Allow") != "POST" {
				t.Fatalf("405 without Allow: POST (got %q)", resp.Header.Get("Allow"))
			}
		})
	}
	if n := len(spooled(t, f.sp)); n != 2 {
		t.Fatalf("%d events spooled, want only the accepted request's 2", n)
	}
}

func TestQuotaAnswers503(t *testing.T) {
	f := newFixture(t, fixtureOpts{quota: 2000})
	body, h := signed(t, 3)
	for i := 0; ; i++ {
		code, msg, hdr := post(t, f.url+"/api/v1/track", body, h)
		if code == 200 {
			if i > 100 {
				t.Fatal("quota never reached")
			}
			continue
		}
		if code != 503 || hdr.Get("Retry-After") == "" || !strings.Contains(msg, "retry") {
			t.Fatalf("got %d %q (Retry-After %q), want 503 with Retry-After", code, msg, hdr.Get("Retry-After"))
		}
		break
	}
}

// TestSpoolRefusalsShareRetryAfter: whichever check finds that the spool
// cannot take events — the one before the rule runs, the append after it,
// the quota or the disk's free space, or /readyz — the answer is a 503 with
// the same Retry-After.
func TestSpoolRefusalsShareRetryAfter(t *testing.T) {
	const quota = 4096
	fill := func(bytes int) func(*testing.T, *spool.Spool) {
		return func(t *testing.T, sp *spool.Spool) {
			if _, err := sp.Append(make([]byte, bytes)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []struct {
		name    string
		opts    fixtureOpts
		fill    func(*testing.T, *spool.Spool)
		path    string
		message string // tells which check answered
	}{
		{"quota reached, refused before the rule", fixtureOpts{quota: quota}, fill(quota), "/api/v1/track", "edge cannot take events now"},
		{"request larger than the room left, refused by the append", fixtureOpts{quota: quota}, fill(quota - 10), "/api/v1/track", "edge spool is full"},
		{"disk low on space", fixtureOpts{minFree: math.MaxInt64}, nil, "/api/v1/track", "edge cannot take events now"},
		{"readyz at quota", fixtureOpts{quota: quota}, fill(quota), "/readyz", "spool not ready"},
		{"readyz with the disk low on space", fixtureOpts{minFree: math.MaxInt64}, nil, "/readyz", "spool not ready"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, c.opts)
			if c.fill != nil {
				c.fill(t, f.sp)
			}
			body, h := signed(t, 3)
			code, msg, hdr := post(t, f.url+c.path, body, h)
			if code != 503 || !strings.Contains(msg, c.message) || hdr.Get("Retry-After") != strconv.Itoa(spoolRetryAfter) {
				t.Fatalf("got %d %q with Retry-After %q, want 503 %q with Retry-After %d",
					code, msg, hdr.Get("Retry-After"), c.message, spoolRetryAfter)
			}
		})
	}
}

func TestReadyzAtQuota(t *testing.T) {
	f := newFixture(t, fixtureOpts{quota: 4096})
	if code, _, _ := post(t, f.url+"/readyz", nil, nil); code != 200 {
		t.Fatalf("readyz %d on an empty spool", code)
	}
	if _, err := f.sp.Append(make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	if code, msg, _ := post(t, f.url+"/readyz", nil, nil); code != 503 || !strings.Contains(msg, "quota") {
		t.Fatalf("readyz %d %q at quota, want 503 naming the quota", code, msg)
	}
}

// TestReadyzNeedsRoom: a spool that could take only the smallest request is
// not ready (a load balancer would keep sending it batches it refuses).
func TestReadyzNeedsRoom(t *testing.T) {
	f := newFixture(t, fixtureOpts{quota: 4096})
	if _, err := f.sp.Append(make([]byte, 4096-300)); err != nil {
		t.Fatal(err)
	}
	if err := f.sp.Ready(); err != nil {
		t.Fatalf("spool with 300 bytes left: %v, want it still taking small appends", err)
	}
	if code, msg, _ := post(t, f.url+"/readyz", nil, nil); code != 503 || !strings.Contains(msg, "no room for a request") {
		t.Fatalf("readyz %d %q with 300 bytes left, want 503 saying there is no room", code, msg)
	}
}

func TestPanicBecomes500(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	body, h := signed(t, 1)
	f.mu.Lock()
	f.panic = true
	f.mu.Unlock()
	code, msg, _ := post(t, f.url+"/api/v1/track", body, h)
	if code != 500 || !strings.Contains(msg, "internal error") {
		t.Fatalf("got %d %q, want 500", code, msg)
	}
	f.mu.Lock()
	f.panic = false
	f.mu.Unlock()
	if code, msg, _ := post(t, f.url+"/api/v1/track", body, h); code != 200 {
		t.Fatalf("after a panic: %d %s", code, msg)
	}
}

func TestTrappingRuleBecomes500(t *testing.T) {
	wasm, err := os.ReadFile("../../../wasm/host/testdata/misbehave.wasm")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, fixtureOpts{wasm: wasm})
	// The misbehave rule decides by path; route it at /api/v1/track: it answers 200 there.
	code, msg, _ := post(t, f.url+"/api/v1/track", nil, nil)
	if code != 200 {
		t.Fatalf("status %d %s", code, msg)
	}
	// Swap in a rule that panics for this path by loading misbehave under a
	// config it ignores is not possible; instead call /panic through a second route.
	m, err := f.rt.Load(context.Background(), "misbehave", wasm, &abi.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	f.srv.routes["/panic"] = &Route{Name: "misbehave", Path: "/panic", Methods: []string{"POST"}, Rule: &ruleslot.Slot{}}
	f.srv.routes["/panic"].Rule.Swap(m)
	code, msg, _ = post(t, f.url+"/panic", nil, nil)
	if code != 500 || !strings.Contains(msg, "rule failed") {
		t.Fatalf("got %d %q, want 500 rule failed", code, msg)
	}
	if code, _, _ := post(t, f.url+"/api/v1/track", nil, nil); code != 200 {
		t.Fatalf("after a trap the edge answers %d", code)
	}
}

// TestUnstorableEventsAre500 runs a rule (misbehave's /unstorable) that
// accepts a request with one good event and one the aggregator could never
// store. The edge must not acknowledge either: it answers 500 saying why,
// and the spool stays empty. A client keeps its data and retries until the
// rule is fixed, instead of being told its events are safe.
func TestUnstorableEventsAre500(t *testing.T) {
	wasm, err := os.ReadFile("../../../wasm/host/testdata/misbehave.wasm")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, fixtureOpts{wasm: wasm})
	m, err := f.rt.Load(context.Background(), "misbehave", wasm, &abi.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	f.srv.routes["/unstorable"] = &Route{Name: "misbehave", Path: "/unstorable", Methods: []string{"POST"}, Rule: &ruleslot.Slot{}}
	f.srv.routes["/unstorable"].Rule.Swap(m)

	for query, reason := range map[string]string{
		"id=empty":      "empty id",
		"id=nul":        "id contains a NUL byte",
		"id=long":       "id longer than 256 bytes",
		"session=nul":   "session contains a NUL byte",
		"category=long": "category longer than 256 bytes",
		"name=utf8":     "name is not valid UTF-8",
		"ip=utf8":       "ip is not valid UTF-8",
	} {
		t.Run(query, func(t *testing.T) {
			code, msg, _ := post(t, f.url+"/unstorable?"+query, nil, nil)
			if code != 500 || !strings.Contains(msg, "cannot be stored") || !strings.Contains(msg, "event 1: "+reason) {
				t.Fatalf("got %d %q, want 500 naming event 1 and %q", code, msg, reason)
			}
			if evs := spooled(t, f.sp); len(evs) != 0 {
				t.Fatalf("%d events spooled, want none: %v", len(evs), evs)
			}
		})
	}
	// The same rule with two good events is answered and spooled.
	code, msg, _ := post(t, f.url+"/unstorable?none", nil, nil)
	if code != 200 {
		t.Fatalf("good events: %d %q", code, msg)
	}
	if evs := spooled(t, f.sp); len(evs) != 2 {
		t.Fatalf("%d events spooled, want 2", len(evs))
	}
}

func TestDrainingAnswers503(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	f.srv.draining.Store(true)
	body, h := signed(t, 1)
	code, _, hdr := post(t, f.url+"/api/v1/track", body, h)
	if code != 503 || hdr.Get("Retry-After") == "" {
		t.Fatalf("got %d, want 503 with Retry-After", code)
	}
}

func TestConcurrentRequestsAllDurable(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 4; i++ {
				body, h := signed(t, 5)
				req, _ := http.NewRequest("POST", f.url+"/api/v1/track", bytes.NewReader(body))
				for k, v := range h {
					req.Header.Set(k, v)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- errors.New(resp.Status)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := len(spooled(t, f.sp)); n != 16*4*5 {
		t.Fatalf("%d events spooled, want %d", n, 16*4*5)
	}
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}
	for _, c := range []struct {
		peer, xff, want string
	}{
		{"203.0.113.9", "", "203.0.113.9"},
		{"203.0.113.9", "1.2.3.4", "203.0.113.9"},               // untrusted peer: header ignored
		{"127.0.0.1", "198.51.100.7", "198.51.100.7"},           // trusted proxy
		{"127.0.0.1", "6.6.6.6, 198.51.100.7", "198.51.100.7"},  // client-supplied prefix ignored
		{"127.0.0.1", "198.51.100.7, 10.1.2.3", "198.51.100.7"}, // chain of trusted proxies
		{"127.0.0.1", "garbage", "127.0.0.1"},
		{"127.0.0.1", "10.0.0.1", "10.0.0.1"},
		{"127.0.0.1", "198.51.100.7,", "127.0.0.1"},                  // an empty last hop stops the walk
		{"127.0.0.1", "198.51.100.7, garbage, 10.1.2.3", "10.1.2.3"}, // stops at the last trusted hop
		{"127.0.0.1", " ::ffff:198.51.100.7 ", "198.51.100.7"},       // mapped, spaces
		{"127.0.0.1", "2001:db8::7", "2001:db8::7"},                  // IPv6 client
		{"127.0.0.1", "fe80::1%eth0", "127.0.0.1"},                   // a zone is no client address
		{"::ffff:127.0.0.1", "198.51.100.7", "198.51.100.7"},         // mapped peer
		{"127.0.0.1", strings.Repeat("1", 100), "127.0.0.1"},         // too long for an address
	} {
		if got := clientAddr(net.ParseIP(c.peer), []byte(c.xff), trusted).String(); got != c.want {
			t.Errorf("peer %s xff %q: got %s, want %s", c.peer, c.xff, got, c.want)
		}
	}
	peer, xff := net.ParseIP("127.0.0.1"), []byte("6.6.6.6, 198.51.100.7, 10.1.2.3")
	if n := testing.AllocsPerRun(100, func() { clientAddr(peer, xff, trusted) }); n != 0 {
		t.Errorf("clientAddr allocates %v times", n)
	}
}
