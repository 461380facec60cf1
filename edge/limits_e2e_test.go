package edge_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/edge"
	"github.com/edgetrack/edgetrack/edge/internal/spool"
	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/proto/eventpb"
	"github.com/edgetrack/edgetrack/proto/hamustropb"
	"github.com/edgetrack/edgetrack/wasm/rules/cookiesync/cookiesynctest"
	"github.com/edgetrack/edgetrack/wasm/rules/hamustro/hamustrotest"
)

// clientFrom returns an HTTP client whose connections come from source, an
// address of the loopback network (127.0.0.0/8 on Linux), so that one test
// can be several clients.
func clientFrom(t *testing.T, source string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type answer struct {
	code       int
	retryAfter string
	body       string
}

// track posts a signed one-event collection (its own device, so its own
// event id) from client, with X-Forwarded-For when xff is set.
func track(t *testing.T, c *http.Client, url, xff string, dev string, nr int) (answer, string) {
	t.Helper()
	b := body(t, dev, nr)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, _ := http.NewRequest("POST", url+"/api/v1/track", bytes.NewReader(b))
	req.Header.Set("X-Hamustro-Time", ts)
	req.Header.Set("X-Hamustro-Signature", hamustrotest.Sign(ts, b, hamustrotest.Secret))
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	var col hamustropb.Collection
	if err := proto.Unmarshal(b, &col); err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header.Get("Retry-After"), string(rb)}, hamustrotest.EventIDs(&col)[0]
}

// startLimitedEdge runs an edge with cfg and a registry of its own; stop
// ends it and returns the ids of the events in its spool.
func startLimitedEdge(t *testing.T, cfg config.Edge) (e *edge.Edge, reg *prometheus.Registry, stop func() map[string]bool) {
	t.Helper()
	reg = prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	e, err := edge.New(ctx, edge.Options{Config: cfg, Registry: reg, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return e, reg, func() map[string]bool {
		cancel()
		<-done
		sp, err := spool.Open(spool.Options{Dir: filepath.Join(cfg.DataDir, "spool"), MinFreeBytes: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer sp.Close()
		vals, err := readAll(sp)
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, v := range vals {
			var ev eventpb.Event
			if err := proto.Unmarshal(v, &ev); err != nil {
				t.Fatal(err)
			}
			ids[ev.Id] = true
		}
		return ids
	}
}

// TestRateLimitPerClientIP floods the track route from one address (two
// requests past its burst) and shows that the flood is answered 429 with a
// Retry-After computed from its bucket, that another address is still
// served, and that every event acknowledged before and after is in the
// spool while none of the refused ones is. X-Forwarded-For is believed
// only from the trusted proxy (127.0.0.1): a proxied client gets a bucket
// of its own, and the header from any other peer changes nothing.
func TestRateLimitPerClientIP(t *testing.T) {
	cfg := edgeConfig(t)
	cfg.Rules.Pull = false
	cfg.TrustedProxies = []string{"127.0.0.1"}
	const burst = 3
	// One token an hour: no bucket refills while the test runs.
	cfg.Limits.Hamustro = config.RouteLimit{Rate: config.Rate(1.0 / 3600), Burst: burst}
	e, reg, stop := startLimitedEdge(t, cfg)
	url := "http://" + e.Addr()

	flooder, other, proxy := clientFrom(t, "127.0.0.2"), clientFrom(t, "127.0.0.3"), clientFrom(t, "127.0.0.1")
	acked, refused := map[string]bool{}, map[string]bool{}
	expect := func(who string, a answer, id string, want int) {
		t.Helper()
		if a.code != want {
			t.Fatalf("%s: status %d (%q), want %d", who, a.code, a.body, want)
		}
		if want == 200 {
			acked[id] = true
			return
		}
		refused[id] = true
		secs, err := strconv.Atoi(a.retryAfter)
		if err != nil || secs < 3500 || secs > 3600 {
			t.Fatalf("%s: Retry-After %q, want the ~3600 s the bucket needs for one token", who, a.retryAfter)
		}
		if !strings.Contains(a.body, "too many requests from your address") || !strings.Contains(a.body, "edge.limits.hamustro") {
			t.Fatalf("%s: 429 body %q does not say what happened", who, a.body)
		}
	}

	for nr := 1; nr <= burst+2; nr++ {
		a, id := track(t, flooder, url, "", "flooder", nr)
		want := 200
		if nr > burst {
			want = 429
		}
		expect(fmt.Sprintf("flooder request %d", nr), a, id, want)
	}
	a, id := track(t, other, url, "", "other", 1)
	expect("another address during the flood", a, id, 200)

	// The header from an untrusted peer is ignored: the flooder cannot
	// pose as a fresh client, and another peer naming the flooder is not
	// limited as the flooder.
	a, id = track(t, flooder, url, "198.51.100.77", "flooder", 10)
	expect("flooder with X-Forwarded-For", a, id, 429)
	a, id = track(t, other, url, "127.0.0.2", "other", 2)
	expect("another peer with X-Forwarded-For naming the flooder", a, id, 200)

	// From the trusted proxy, each forwarded client has its own bucket; the
	// rightmost untrusted hop is the client, whatever it prepended.
	for nr := 1; nr <= burst+1; nr++ {
		a, id := track(t, proxy, url, "203.0.113.1, 198.51.100.1", "proxied-1", nr)
		want := 200
		if nr > burst {
			want = 429
		}
		expect(fmt.Sprintf("proxied client request %d", nr), a, id, want)
	}
	a, id = track(t, proxy, url, "198.51.100.1, 198.51.100.2", "proxied-2", 1)
	expect("a second client behind the proxy", a, id, 200)
	a, id = track(t, proxy, url, "", "proxy-itself", 1)
	expect("the proxy without the header", a, id, 200)

	if got, want := metricValue(t, reg, "edgetrack_rate_limited_total", "limit", "hamustro"), float64(len(refused)); got != want {
		t.Errorf("edgetrack_rate_limited_total{limit=hamustro} = %v, want %v", got, want)
	}
	if got := metricValue(t, reg, "edgetrack_rate_limit_clients", "limit", "hamustro"); got != 5 {
		t.Errorf("edgetrack_rate_limit_clients = %v, want 5 (127.0.0.2, 127.0.0.3, 127.0.0.1, 198.51.100.1, 198.51.100.2)", got)
	}

	inSpool := stop()
	for id := range acked {
		if !inSpool[id] {
			t.Errorf("acknowledged event %s is not in the spool", id)
		}
	}
	for id := range refused {
		if inSpool[id] {
			t.Errorf("event %s of a refused request is in the spool", id)
		}
	}
	if len(inSpool) != len(acked) {
		t.Errorf("%d events in the spool, %d acknowledged", len(inSpool), len(acked))
	}
}

// TestRateLimitCookieSyncAlias: /cs/i and /cookiesync/i are one route with
// one bucket per client, and cookiesync_sync is limited on its own (here
// not at all).
func TestRateLimitCookieSyncAlias(t *testing.T) {
	cfg := edgeConfig(t)
	cfg.Rules.Pull = false
	cfg.CookieSync.Partners = []string{"acme|" + cookiesynctest.AcmeSync + "|" + cookiesynctest.AcmeDone + "|sync.acme.example"}
	cfg.CookieSync.GDPRDefault = "not_applies"
	cfg.CookieSync.VendorID = cookiesynctest.VendorID
	cfg.Limits.CookieSyncInit = config.RouteLimit{Rate: config.Rate(1.0 / 3600), Burst: 1}
	e, reg, _ := startLimitedEdge(t, cfg)
	url := "http://" + e.Addr()
	c := clientFrom(t, "127.0.0.4")
	get := func(path string) int {
		t.Helper()
		resp, err := c.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/cs/i?p=acme"); code != 302 {
		t.Fatalf("first init: %d, want 302", code)
	}
	if code := get("/cookiesync/i?p=acme"); code != 429 {
		t.Fatalf("init by the other path: %d, want 429 (one bucket for both paths)", code)
	}
	for range 3 {
		if code := get("/cs/s?p=acme&pi=acme-1"); code != 302 {
			t.Fatalf("sync: %d, want 302 (cookiesync_sync is not limited)", code)
		}
	}
	if got := metricValue(t, reg, "edgetrack_rate_limited_total", "limit", "cookiesync_init"); got != 1 {
		t.Errorf("edgetrack_rate_limited_total{limit=cookiesync_init} = %v, want 1", got)
	}
}

// TestInvalidLimitsRefused: edge.New refuses limits that make no sense,
// naming each setting.
func TestInvalidLimitsRefused(t *testing.T) {
	cfg := edgeConfig(t)
	cfg.Limits.Eye = config.RouteLimit{Rate: 5, Burst: 0}
	cfg.Limits.MaxClients = 0
	_, err := edge.New(context.Background(), edge.Options{Config: cfg, Logger: quietLogger()})
	if err == nil {
		t.Fatal("edge started with invalid limits")
	}
	for _, want := range []string{"edge.limits.eye.burst", "edge.limits.max_clients"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}

// metricValue returns the value of the series of the named counter or
// gauge with the label, from the edge's registry.
func metricValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if label == "" || lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue() + m.GetGauge().GetValue()
				}
			}
			if label == "" {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no series %s{%s=%q}", name, label, value)
	return 0
}
