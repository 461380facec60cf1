package edge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/edge"
	"github.com/edgetrack/edgetrack/edge/internal/spool"
	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/proto/eventpb"
	"github.com/edgetrack/edgetrack/wasm/rules/cookiesync/cookiesynctest"
)

// runEdge starts an edge with cfg and returns it with a function that stops
// it and returns the events left in its spool.
func runEdge(t *testing.T, cfg config.Edge) (*edge.Edge, func() []*eventpb.Event) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e, err := edge.New(ctx, edge.Options{Config: cfg, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	stopped := false
	stop := func() []*eventpb.Event {
		if !stopped {
			cancel()
			<-done
			stopped = true
		}
		sp, err := spool.Open(spool.Options{Dir: filepath.Join(cfg.DataDir, "spool"), MinFreeBytes: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer sp.Close()
		vals, err := readAll(sp)
		if err != nil {
			t.Fatal(err)
		}
		var out []*eventpb.Event
		for _, v := range vals {
			ev := &eventpb.Event{}
			if err := proto.Unmarshal(v, ev); err != nil {
				t.Fatal(err)
			}
			out = append(out, ev)
		}
		return out
	}
	t.Cleanup(func() { stop() })
	return e, stop
}

func do(t *testing.T, method, u, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestEyeRoute(t *testing.T) {
	cfg := edgeConfig(t)
	cfg.Eye.AllowedOrigins = []string{"https://shop.example"}
	cfg.Rules.Pull = false
	e, stop := runEdge(t, cfg)
	u := "http://" + e.Addr() + "/events"
	ts := time.Now().UTC().Format("2006-01-02 15:04:05.000000")
	good := `{"session_id":"s1","category":"page_interaction","name":"page_view","data":{"host":"www.example.com","path":"/"},"timestamp":"` + ts + `"}`

	resp, body := do(t, "POST", u, good, map[string]string{"Content-Type": "application/json", "Origin": "https://shop.example"})
	if resp.StatusCode != 201 || !strings.Contains(body, `"accepted":1`) {
		t.Fatalf("valid event: %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://shop.example" {
		t.Fatalf("allowed origin not echoed: %q", resp.Header.Get("Access-Control-Allow-Origin"))
	}

	batch := `[` + good + `,{"session_id":"s1","category":"page_interaction","name":"cta_click","data":{"host":"bad..host","path":"/"},"timestamp":"` + ts + `"}]`
	resp, body = do(t, "POST", u, batch, map[string]string{"Content-Type": "application/json"})
	var refusal struct {
		Problems []struct {
			Index  int
			Field  string
			Reason string
		}
	}
	if resp.StatusCode != 400 || json.Unmarshal([]byte(body), &refusal) != nil || len(refusal.Problems) == 0 ||
		refusal.Problems[0].Index != 1 || !strings.HasPrefix(refusal.Problems[0].Field, "data.") {
		t.Fatalf("batch with a bad element: %d %s", resp.StatusCode, body)
	}

	resp, _ = do(t, "OPTIONS", u, "", map[string]string{"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"})
	if resp.StatusCode != 204 || !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	resp, body = do(t, "OPTIONS", u, "", map[string]string{"Origin": "https://evil.example"})
	if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from a foreign origin: %d %s", resp.StatusCode, body)
	}

	evs := stop()
	if len(evs) != 1 || evs[0].Source != eventpb.Source_SOURCE_EYE || evs[0].Session != "s1" || evs[0].Name != "page_view" ||
		!strings.HasPrefix(evs[0].Id, "eye:") || evs[0].ClientTime == 0 {
		t.Fatalf("spooled %v, want the one valid event (the refused batch stores nothing)", evs)
	}
}

func TestCookieSyncRoutes(t *testing.T) {
	cfg := edgeConfig(t)
	cfg.Rules.Pull = false
	cfg.CookieSync.Partners = []string{
		"acme|" + cookiesynctest.AcmeSync + "|" + cookiesynctest.AcmeDone + "|sync.acme.example",
	}
	cfg.CookieSync.GDPRDefault = "not_applies"
	cfg.CookieSync.VendorID = cookiesynctest.VendorID
	e, stop := runEdge(t, cfg)
	base := "http://" + e.Addr()

	// init:local → the partner's sync URL with our new uid, and the cookie.
	resp, _ := do(t, "GET", base+"/cs/i?p=acme", "", nil)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 302 || loc == nil || loc.Host != "sync.acme.example" {
		t.Fatalf("init: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var uid *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "uid" {
			uid = c
		}
	}
	if uid == nil || len(uid.Value) != 32 || !uid.Secure || !uid.HttpOnly || uid.SameSite != http.SameSiteNoneMode ||
		uid.Path != "/" || uid.MaxAge != int(cfg.CookieSync.CookieMaxAge.Duration().Seconds()) {
		t.Fatalf("uid cookie %+v (Set-Cookie %q)", uid, resp.Header.Values("Set-Cookie"))
	}
	if loc.Query().Get("pi") != uid.Value {
		t.Fatalf("Location does not carry our uid: %s", loc)
	}

	// done:local → the partner comes back with its id and ours: pixel, match.
	resp, body := do(t, "GET", base+"/cookiesync/done?p=acme&pi=acme-77&ui="+uid.Value, "", map[string]string{"Cookie": "uid=" + uid.Value})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/gif" || len(body) == 0 || resp.Header.Get("Location") != "" {
		t.Fatalf("done: %d %v", resp.StatusCode, resp.Header)
	}

	// init:remote → sync:local: the match rides on the redirect.
	resp, _ = do(t, "GET", base+"/cs/s?p=acme&pi=acme-88", "", map[string]string{"Cookie": "uid=" + uid.Value})
	if resp.StatusCode != 302 || !strings.HasPrefix(resp.Header.Get("Location"), "https://sync.acme.example/") {
		t.Fatalf("sync: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// Steering attempts get no Location.
	for _, q := range []string{"p=evil", "p=acme&pi=//evil.example", "p=acme&pi=https:evil.example", "p=acme&pi=a%0d%0aLocation:%20x", "p=ACME&pi=1"} {
		resp, _ := do(t, "GET", base+"/cs/s?"+q, "", nil)
		if resp.Header.Get("Location") != "" || resp.Header.Get("X-Edgetrack-Reason") == "" {
			t.Errorf("%s: %d Location %q", q, resp.StatusCode, resp.Header.Get("Location"))
		}
	}

	evs := stop()
	var ids []string
	for _, ev := range evs {
		ids = append(ids, ev.Id)
	}
	want := []string{"cs:acme:acme-77:" + uid.Value, "cs:acme:acme-88:" + uid.Value}
	if strings.Join(ids, " ") != strings.Join(want, " ") {
		t.Fatalf("spooled matches %v, want %v", ids, want)
	}
}

// TestEyeHostileBodies posts bodies built to make the eye rule spend its
// whole call deadline: an object of 90,000 keys (~770 KB) and an element
// over max_event_bytes. Each is refused by a cheap limit with a 413 saying
// which, not a 500 from a rule stopped at its deadline, and the route goes
// on accepting. Identical events in one batch are each stored.
func TestEyeHostileBodies(t *testing.T) {
	cfg := edgeConfig(t)
	cfg.Rules.Pull = false
	e, stop := runEdge(t, cfg)
	u := "http://" + e.Addr() + "/events"
	hdr := map[string]string{"Content-Type": "application/json"}
	var keys strings.Builder
	keys.WriteString(`{"session_id":"s1","category":"page_interaction","name":"page_view","data":{`)
	for i := range 90_000 {
		fmt.Fprintf(&keys, `"k%d":1,`, i)
	}
	keys.WriteString(`"host":"a.com","path":"/"},"timestamp":"2024-01-01 00:00:00"}`)
	big := `{"session_id":"s1","category":"page_interaction","name":"cta_click","data":{"host":"a.com","path":"/","element":"` +
		strings.Repeat("x", 800<<10) + `"},"timestamp":"2024-01-01 00:00:00"}`
	for _, c := range []struct{ name, body, want string }{
		{"90,000 keys", keys.String(), "more than 256 keys"},
		{"an 800 KiB element", big, "at most 65536 are accepted per event"},
	} {
		for range 5 {
			resp, body := do(t, "POST", u, c.body, hdr)
			if resp.StatusCode != 413 || !strings.Contains(body, c.want) {
				t.Fatalf("%s: %d %.300s, want 413 saying %q", c.name, resp.StatusCode, body, c.want)
			}
		}
	}
	ts := time.Now().UTC().Format("2006-01-02 15:04:05")
	click := `{"session_id":"s1","category":"page_interaction","name":"cta_click","data":{"host":"a.com","path":"/","element":"buy"},"timestamp":"` + ts + `"}`
	for range 2 { // the second time is a retry of the same bytes
		if resp, body := do(t, "POST", u, "["+click+","+click+"]", hdr); resp.StatusCode != 201 || !strings.Contains(body, `"accepted":2`) {
			t.Fatalf("two identical clicks: %d %s", resp.StatusCode, body)
		}
	}
	ids := map[string]int{}
	for _, ev := range stop() {
		ids[ev.Id]++
	}
	if len(ids) != 2 {
		t.Fatalf("spooled ids %v, want two distinct ids, each spooled twice (the retry is deduplicated by the aggregator)", ids)
	}
	for id, n := range ids {
		if n != 2 {
			t.Fatalf("id %s spooled %d times, want 2 (once per request)", id, n)
		}
	}
}

// TestReadyzWhenTheTokenIsRefused: an edge whose token the aggregator
// refuses keeps taking events into its spool, but says it is not ready, and
// why, so that an operator's probe notices before the spool fills.
func TestReadyzWhenTheTokenIsRefused(t *testing.T) {
	agg := startAggregator(t, t.TempDir())
	cfg := edgeConfig(t)
	cfg.AggregatorURL = "http://" + agg.Addr()
	cfg.Token = "not-the-edge-token"
	cfg.Rules.Pull = false
	e, _ := runEdge(t, cfg)
	if code, err := send("http://"+e.Addr(), body(t, "refused", 1)); err != nil || code != 200 {
		t.Fatalf("event: %d %v, want 200 (it is spooled)", code, err)
	}
	hang := time.Now().Add(time.Minute) // not a timing assertion: a guard against hanging
	for {
		resp, msg := do(t, "GET", "http://"+e.Addr()+"/readyz", "", nil)
		if resp.StatusCode == 503 && strings.Contains(msg, "refuses this edge's token (HTTP 403)") {
			break
		}
		if time.Now().After(hang) {
			t.Fatalf("readyz %d %q, want 503 saying the token is refused", resp.StatusCode, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPortInUseNamesTheSetting: an address taken by another process is an
// error that names the setting to change.
func TestPortInUseNamesTheSetting(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, setting := range []string{"edge.listen", "edge.admin_listen"} {
		cfg := edgeConfig(t)
		cfg.Rules.Pull = false
		if setting == "edge.listen" {
			cfg.Listen = taken.Addr().String()
		} else {
			cfg.AdminListen = taken.Addr().String()
		}
		_, err := edge.New(context.Background(), edge.Options{Config: cfg, Logger: quietLogger()})
		if err == nil || !strings.Contains(err.Error(), "("+setting+")") || !strings.Contains(err.Error(), taken.Addr().String()) {
			t.Errorf("%s taken: err = %v, want one naming the address and %s", setting, err, setting)
		}
	}
}

// TestExampleCollection posts docs/examples/collection.bin, the body the
// README's curl example sends, signed as the README signs it: the edge takes
// both events, and on the public listener there is no /metrics.
func TestExampleCollection(t *testing.T) {
	b, err := os.ReadFile("../docs/examples/collection.bin")
	if err != nil {
		t.Fatal(err)
	}
	cfg := edgeConfig(t)
	cfg.Rules.Pull = false
	e, stop := runEdge(t, cfg)
	if code, err := send("http://"+e.Addr(), b); err != nil || code != 200 {
		t.Fatalf("the README's example body: %d %v, want 200", code, err)
	}
	if resp, _ := do(t, "GET", "http://"+e.Addr()+"/metrics", "", nil); resp.StatusCode != 404 {
		t.Errorf("public /metrics: %d, want 404 (metrics are on the admin listener)", resp.StatusCode)
	}
	if resp, body := do(t, "GET", "http://"+e.AdminAddr()+"/metrics", "", nil); resp.StatusCode != 200 || !strings.Contains(body, "edgetrack_") {
		t.Errorf("admin /metrics: %d, want 200 with edgetrack metrics", resp.StatusCode)
	}
	if evs := stop(); len(evs) != 2 {
		t.Fatalf("spooled %d events, want the example's 2", len(evs))
	}
}
