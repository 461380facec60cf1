package server

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/edgetrack/edgetrack/edge/internal/ratelimit"
	"github.com/edgetrack/edgetrack/edge/internal/ruleslot"
	"github.com/edgetrack/edgetrack/wasm/abi"
)

// gatedRule holds every call of the real rule it wraps until release is
// closed, and says on entered when a call arrives: requests in flight that
// stay in flight for as long as the test wants, without timing.
type gatedRule struct {
	ruleslot.Rule
	entered chan struct{}
	release chan struct{}
}

func (g *gatedRule) Call(ctx context.Context, req *abi.Request) (abi.Verdict, error) {
	g.entered <- struct{}{}
	<-g.release
	return g.Rule.Call(ctx, req)
}

// TestMaxInFlightSheds holds maxInFlight requests inside the rule; the next
// one is answered 503 with Retry-After at once (it never reaches the rule),
// the held ones all succeed and are spooled once released, and then the
// edge takes requests again.
func TestMaxInFlightSheds(t *testing.T) {
	const maxInFlight = 3
	reg := prometheus.NewRegistry()
	gate := &gatedRule{entered: make(chan struct{}, 16), release: make(chan struct{})}
	f := newFixture(t, fixtureOpts{maxInFlight: maxInFlight, reg: reg, wrap: func(r ruleslot.Rule) ruleslot.Rule {
		gate.Rule = r
		return gate
	}})
	body, h := signed(t, 2)

	codes := make(chan int, maxInFlight)
	var wg sync.WaitGroup
	for range maxInFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _, _ := post(t, f.url+"/api/v1/track", body, h)
			codes <- code
		}()
	}
	for range maxInFlight {
		<-gate.entered
	}
	if n := valueOf(t, reg, "edgetrack_in_flight"); n != maxInFlight {
		t.Fatalf("edgetrack_in_flight = %v, want %d", n, maxInFlight)
	}

	type result struct {
		code       int
		msg        string
		retryAfter string
	}
	shed := make(chan result, 1)
	go func() {
		code, msg, hdr := post(t, f.url+"/api/v1/track", body, h)
		shed <- result{code, msg, hdr.Get("Retry-After")}
	}()
	select {
	case r := <-shed:
		if r.code != 503 || r.retryAfter != "1" || !strings.Contains(r.msg, "edge.limits.max_in_flight") {
			t.Fatalf("request beyond the cap: %d, Retry-After %q, %q; want 503, 1, naming the setting", r.code, r.retryAfter, r.msg)
		}
	case <-gate.entered:
		t.Fatal("a request beyond the cap reached the rule")
	}
	if n := valueOf(t, reg, "edgetrack_shed_total"); n != 1 {
		t.Fatalf("edgetrack_shed_total = %v, want 1", n)
	}

	close(gate.release)
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != 200 {
			t.Fatalf("a held request got %d, want 200", code)
		}
	}
	if n := len(spooled(t, f.sp)); n != maxInFlight*2 {
		t.Fatalf("%d events spooled, want %d (the held requests')", n, maxInFlight*2)
	}
	if code, msg, _ := post(t, f.url+"/api/v1/track", body, h); code != 200 {
		t.Fatalf("after the held requests finished: %d %s", code, msg)
	}
	if n := valueOf(t, reg, "edgetrack_in_flight"); n != 0 {
		t.Fatalf("edgetrack_in_flight = %v after every request was answered", n)
	}
}

// TestRateLimit429 checks the 429 itself: status, Retry-After from the
// bucket, a message naming the setting, the counter, and that the request
// never reached the rule or the spool.
func TestRateLimit429(t *testing.T) {
	reg := prometheus.NewRegistry()
	lim := ratelimit.New(ratelimit.Options{Rate: 0.01, Burst: 2, MaxClients: 100}) // 100 s a token
	f := newFixture(t, fixtureOpts{limit: lim, reg: reg, trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
	body, h := signed(t, 1)
	for i := range 2 {
		if code, msg, _ := post(t, f.url+"/api/v1/track", body, h); code != 200 {
			t.Fatalf("request %d of the burst: %d %s", i+1, code, msg)
		}
	}
	code, msg, hdr := post(t, f.url+"/api/v1/track", body, h)
	if code != 429 {
		t.Fatalf("beyond the burst: %d %s", code, msg)
	}
	var secs int
	if _, err := fmt.Sscan(hdr.Get("Retry-After"), &secs); err != nil || secs < 99 || secs > 100 {
		t.Fatalf("Retry-After %q, want 100 (one token at 0.01/s)", hdr.Get("Retry-After"))
	}
	for _, want := range []string{"too many requests from your address to /api/v1/track", "0.01 per second with bursts of 2", "edge.limits.hamustro", "retry in"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q does not contain %q", msg, want)
		}
	}
	// The peer is a trusted proxy: the forwarded client is another bucket.
	if code, msg, _ := post(t, f.url+"/api/v1/track", body, map[string]string{
		"X-Hamustro-Time": h["X-Hamustro-Time"], "X-Hamustro-Signature": h["X-Hamustro-Signature"], "X-Forwarded-For": "198.51.100.3",
	}); code != 200 {
		t.Fatalf("forwarded client: %d %s", code, msg)
	}
	if n := len(spooled(t, f.sp)); n != 3 {
		t.Fatalf("%d events spooled, want 3 (the refused request spools nothing)", n)
	}
	if n := valueOf(t, reg, "edgetrack_rate_limited_total"); n != 1 {
		t.Fatalf("edgetrack_rate_limited_total = %v, want 1", n)
	}
	if n := valueOf(t, reg, "edgetrack_rate_limit_clients"); n != 2 {
		t.Fatalf("edgetrack_rate_limit_clients = %v, want 2", n)
	}
}

// TestLimitNeedsName: a limit without a name, or two limits with one name,
// is refused.
func TestLimitNeedsName(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	a := ratelimit.New(ratelimit.Options{Rate: 1, Burst: 1})
	b := ratelimit.New(ratelimit.Options{Rate: 1, Burst: 1})
	if _, err := New(Options{Spool: f.sp}, &Route{Name: "x", Path: "/x", Rule: f.slot, Limit: a}); err == nil {
		t.Error("a limit without a name was accepted")
	}
	if _, err := New(Options{Spool: f.sp},
		&Route{Name: "x", Path: "/x", Rule: f.slot, Limit: a, LimitName: "l"},
		&Route{Name: "x", Path: "/y", Rule: f.slot, Limit: b, LimitName: "l"}); err == nil {
		t.Error("two limits with one name were accepted")
	}
	if _, err := New(Options{Spool: f.sp},
		&Route{Name: "x", Path: "/x", Rule: f.slot, Limit: a, LimitName: "l"},
		&Route{Name: "x", Path: "/y", Rule: f.slot, Limit: a, LimitName: "l"}); err != nil {
		t.Errorf("one limit shared by two paths: %v", err)
	}
}

// valueOf returns the value of the registry's only series of the named
// counter or gauge.
func valueOf(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no single series %s", name)
	return 0
}

// TestLimitAddsNoAllocations compares the allocations of a whole request
// (the route's rule refuses it: no signature) with and without a rate
// limit and the cap: for a client the limit knows, they are the same.
func TestLimitAddsNoAllocations(t *testing.T) {
	if raceOn {
		t.Skip("allocation counts vary under the race detector (sync.Pool drops items on purpose)")
	}
	allocs := func(o fixtureOpts) float64 {
		f := newFixture(t, o)
		var req fasthttp.Request
		req.Header.SetMethod("POST")
		req.SetRequestURI("/api/v1/track")
		req.SetBodyString("x")
		req.Header.Set("X-Forwarded-For", "198.51.100.9")
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}, nil)
		f.srv.handle(&ctx) // warm: the client becomes known, pools fill
		if code := ctx.Response.StatusCode(); code != 401 {
			t.Fatalf("status %d, want 401 (%s)", code, ctx.Response.Body())
		}
		return testing.AllocsPerRun(200, func() {
			ctx.Response.Reset()
			f.srv.handle(&ctx)
		})
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	base := allocs(fixtureOpts{trusted: trusted})
	limited := allocs(fixtureOpts{trusted: trusted, maxInFlight: 10,
		limit: ratelimit.New(ratelimit.Options{Rate: 1e9, Burst: 1 << 30, MaxClients: 100})})
	if limited > base {
		t.Fatalf("a request allocates %v times with the limit and the cap, %v without", limited, base)
	}
	t.Logf("allocations per refused request: %v without limits, %v with", base, limited)
}
