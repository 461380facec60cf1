package edge_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/aggregator"
	"github.com/edgetrack/edgetrack/edge"
	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/wasm/dist"
	"github.com/edgetrack/edgetrack/wasm/host"
	"github.com/edgetrack/edgetrack/wasm/rules/cookiesync/cookiesynctest"
)

const swapPollWait = 5 * time.Second

// TestRolloutUnderLoad: two edges follow one aggregator's registry while
// clients send to all three routes; every rule is activated 50 times
// (alternating two valid versions) and then rolled back. No request fails
// or is answered wrongly, and after each activation both edges come to serve
// the new version and do not go back to the old one.
func TestRolloutUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("150 rule activations")
	}
	dir := t.TempDir()
	agg := startAggregator(t, dir)

	var edges []*edge.Edge
	for i := 0; i < 2; i++ {
		cfg := edgeConfig(t)
		cfg.ID = fmt.Sprintf("edge-%d", i)
		cfg.AggregatorURL = "http://" + agg.Addr()
		cfg.Token = "edge-token"
		cfg.Rules.PollWait = config.Duration(swapPollWait)
		cfg.Rules.PoolSize = 2
		cfg.CookieSync.Partners = []string{"acme|" + cookiesynctest.AcmeSync + "|" + cookiesynctest.AcmeDone + "|sync.acme.example"}
		cfg.CookieSync.GDPRDefault = "not_applies"
		e, _ := runEdge(t, cfg)
		edges = append(edges, e)
	}

	versions := map[string][2][]byte{}
	for _, name := range []string{"hamustro", "eye", "cookiesync"} {
		builtin, _ := dist.Rule(name)
		altFile := map[string]string{"hamustro": "hamustroguest", "eye": "eyealt", "cookiesync": "cookiesyncalt"}[name]
		alt, err := os.ReadFile("../wasm/host/testdata/" + altFile + ".wasm")
		if err != nil {
			t.Fatal(err)
		}
		versions[name] = [2][]byte{alt, builtin}
		if code, body := registry(t, agg, "PUT", "/rules/"+name, alt, "application/wasm"); code != 201 {
			t.Fatalf("upload %s: %d %s", name, code, body)
		}
	}

	// Steady load on every route of every edge.
	var (
		stop     atomic.Bool
		served   atomic.Int64
		failures = make(chan string, 100)
		wg       sync.WaitGroup
	)
	for i, e := range edges {
		for _, route := range []string{"hamustro", "eye", "cookiesync", "hamustro", "eye", "cookiesync"} {
			wg.Add(1)
			go func(base, route string, client int) {
				defer wg.Done()
				for n := 1; !stop.Load(); n++ {
					if msg := probe(t, base, route, fmt.Sprintf("%s-%d", route, client), n); msg != "" {
						failures <- msg
						return
					}
					served.Add(1)
					time.Sleep(time.Millisecond)
				}
			}("http://"+e.Addr(), route, i)
		}
	}

	start := time.Now()
	for _, name := range []string{"hamustro", "eye", "cookiesync"} {
		for i := 0; i < 50; i++ {
			v := versions[name][i%2]
			hash := host.Hash(v)
			ref := hash
			if i%2 == 1 {
				ref = "builtin" // the registry names the embedded version so
			}
			if code, body := registry(t, agg, "POST", "/rules/"+name+"/activate", []byte(`{"hash":"`+ref+`"}`), "application/json"); code != 200 {
				t.Fatalf("activate %s #%d: %d %s", name, i, code, body)
			}
			waitServed(t, edges, name, hash)
		}
		// Roll back: the version before the last activation serves again.
		if code, body := registry(t, agg, "POST", "/rules/"+name+"/rollback", nil, "application/json"); code != 200 {
			t.Fatalf("rollback %s: %d %s", name, code, body)
		}
		waitServed(t, edges, name, host.Hash(versions[name][48%2]))
	}
	elapsed := time.Since(start)
	stop.Store(true)
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}
	t.Logf("150 activations and 3 rollbacks in %s; %d requests served (%.0f/s), none failed",
		elapsed.Round(time.Millisecond), served.Load(), float64(served.Load())/elapsed.Seconds())
}

// waitServed waits until every edge answers rule name with version hash,
// then checks the order of what they serve: once an edge serves a version,
// it does not go back to the one before. How long an edge takes is a matter
// for benchmarks; the bound here (many poll intervals) only keeps a broken
// rollout from hanging the test.
func waitServed(t *testing.T, edges []*edge.Edge, name, hash string) {
	t.Helper()
	want := name + "@" + hash[:12]
	hang := time.Now().Add(30 * swapPollWait)
	for _, e := range edges {
		for servedBy(t, "http://"+e.Addr(), name) != want {
			if time.Now().After(hang) {
				t.Fatalf("edge %s never served %s (serves %s)", e.ID(), want, servedBy(t, "http://"+e.Addr(), name))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for _, e := range edges {
		for range 3 {
			if got := servedBy(t, "http://"+e.Addr(), name); got != want {
				t.Fatalf("edge %s served %s, then %s again", e.ID(), want, got)
			}
		}
	}
}

func registry(t *testing.T, agg *aggregator.Aggregator, method, path string, body []byte, ctype string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+agg.AdminAddr()+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer registry-admin")
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// request builds a valid request for route.
func request(route, session string, n int) *http.Request {
	switch route {
	case "eye":
		ts := time.Now().UTC().Format("2006-01-02T15:04:05.000000")
		b := `{"session_id":"` + session + `","category":"page_interaction","name":"page_view","data":{"host":"www.example.com","path":"/` + fmt.Sprint(n) + `"},"timestamp":"` + ts + `"}`
		req, _ := http.NewRequest("POST", "/events", strings.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		return req
	case "cookiesync":
		req, _ := http.NewRequest("GET", "/cs/i?p=acme", nil)
		return req
	default:
		b := body(nil, session, n)
		ts := fmt.Sprint(nowUnix())
		req, _ := http.NewRequest("POST", "/api/v1/track", bytes.NewReader(b))
		req.Header.Set("X-Hamustro-Time", ts)
		req.Header.Set("X-Hamustro-Signature", sign(ts, b))
		return req
	}
}

// probe sends one request and returns what was wrong with the answer, or "".
func probe(t *testing.T, base, route, session string, n int) string {
	req := request(route, session, n)
	u, _ := url.Parse(base + req.URL.String())
	req.URL = u
	resp, err := noRedirect.Do(req)
	if err != nil {
		return fmt.Sprintf("%s %s: %v", route, base, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	want := map[string]int{"hamustro": 200, "eye": 201, "cookiesync": 302}[route]
	if resp.StatusCode != want {
		return fmt.Sprintf("%s %s: status %d, want %d", route, base, resp.StatusCode, want)
	}
	if route == "cookiesync" && !strings.HasPrefix(resp.Header.Get("Location"), "https://sync.acme.example/") {
		return fmt.Sprintf("cookiesync %s: Location %q", base, resp.Header.Get("Location"))
	}
	return ""
}

func servedBy(t *testing.T, base, route string) string {
	req := request(route, "probe", 1)
	u, _ := url.Parse(base + req.URL.String())
	req.URL = u
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Header.Get("X-Edgetrack-Rule")
}
