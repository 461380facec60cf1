package edge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/edgetrack/edgetrack/edge"
	"github.com/edgetrack/edgetrack/internal/wasmbin"
	"github.com/edgetrack/edgetrack/wasm/dist"
	"github.com/edgetrack/edgetrack/wasm/host"
)

const adminToken = "edge-admin-token"

func startEdge(t *testing.T) (*edge.Edge, context.CancelFunc) {
	t.Helper()
	cfg := edgeConfig(t)
	cfg.AdminTokens = []string{adminToken}
	cfg.Rules.Pull = false
	ctx, cancel := context.WithCancel(context.Background())
	e, err := edge.New(ctx, edge.Options{Config: cfg, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return e, stop
}

func adminDo(t *testing.T, e *edge.Edge, method, path string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+e.AdminAddr()+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func ruleHeader(t *testing.T, e *edge.Edge, nr int) (int, string) {
	t.Helper()
	b := body(t, "swap-probe", nr)
	ts := fmt.Sprint(nowUnix())
	req, _ := http.NewRequest("POST", "http://"+e.Addr()+"/api/v1/track", bytes.NewReader(b))
	req.Header.Set("X-Hamustro-Time", ts)
	req.Header.Set("X-Hamustro-Signature", sign(ts, b))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Edgetrack-Rule")
}

// TestHotSwapUnderLoad swaps the hamustro rule between two valid versions 50
// times while clients send, then offers an invalid version and rolls back:
// no request fails or is answered wrongly, every swap is served at once,
// and the invalid version never serves.
func TestHotSwapUnderLoad(t *testing.T) {
	e, _ := startEdge(t)
	builtin, _ := dist.Rule("hamustro")
	alt, err := os.ReadFile("../wasm/host/testdata/hamustroguest.wasm")
	if err != nil {
		t.Fatal(err)
	}
	bad, err := os.ReadFile("../wasm/host/testdata/misbehave.wasm")
	if err != nil {
		t.Fatal(err)
	}
	versions := [][]byte{alt, builtin}

	var (
		stop     atomic.Bool
		failures = make(chan string, 100)
		served   atomic.Int64
		wg       sync.WaitGroup
	)
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for nr := 1; !stop.Load(); nr++ {
				b := body(t, fmt.Sprintf("load-%d", g), nr)
				code, err := send("http://"+e.Addr(), b)
				if err != nil || code != 200 {
					failures <- fmt.Sprintf("client %d nr %d: %d %v", g, nr, code, err)
					return
				}
				served.Add(1)
			}
		}(g)
	}

	for i := 0; i < 50; i++ {
		v := versions[i%2]
		code, msg := adminDo(t, e, "PUT", "/v1/rules/hamustro", v)
		if code != 200 {
			t.Fatalf("swap %d: %d %s", i, code, msg)
		}
		// The next request is answered by the new version.
		if code, got := ruleHeader(t, e, 1000+i); code != 200 || got != "hamustro@"+host.Hash(v)[:12] {
			t.Fatalf("swap %d: served by %q (status %d), want %s", i, got, code, host.Hash(v)[:12])
		}
	}
	// An invalid version is refused; the active one keeps serving.
	activeBefore := host.Hash(versions[49%2])
	code, msg := adminDo(t, e, "PUT", "/v1/rules/hamustro", bad)
	if code != 400 || !strings.Contains(msg, "vectors") {
		t.Fatalf("invalid version: %d %s, want 400 naming the failed vectors", code, msg)
	}
	if _, got := ruleHeader(t, e, 2000); got != "hamustro@"+activeBefore[:12] {
		t.Fatalf("after a refused version, served by %s", got)
	}
	var st map[string]struct{ Active, Failed, Error string }
	_, list := adminDo(t, e, "GET", "/v1/rules", nil)
	if err := json.Unmarshal([]byte(list), &st); err != nil || st["hamustro"].Failed != host.Hash(bad) || st["hamustro"].Active != activeBefore {
		t.Fatalf("status %s (%v)", list, err)
	}
	// Roll back to the version before the active one.
	if code, msg := adminDo(t, e, "POST", "/v1/rules/hamustro/rollback", nil); code != 200 {
		t.Fatalf("rollback: %d %s", code, msg)
	}
	if _, got := ruleHeader(t, e, 2001); got != "hamustro@"+host.Hash(versions[48%2])[:12] {
		t.Fatalf("after rollback, served by %s", got)
	}

	stop.Store(true)
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}
	t.Logf("%d requests served during 50 swaps", served.Load())
}

func TestAdminAuth(t *testing.T) {
	e, _ := startEdge(t)
	for _, c := range []struct {
		token string
		want  int
	}{{"", 401}, {"wrong", 403}, {adminToken, 200}} {
		req, _ := http.NewRequest("GET", "http://"+e.AdminAddr()+"/v1/rules", nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("token %q: %d, want %d", c.token, resp.StatusCode, c.want)
		}
	}
	if code, _ := adminDo(t, e, "PUT", "/v1/rules/nosuchrule", []byte("x")); code != 404 {
		t.Errorf("unknown rule: %d, want 404", code)
	}
}

// TestAdminRefusesHostileModules sends the edge's admin listener the modules
// that once ended the edge process (an out-of-memory in wazero's decoder,
// compiles of minutes): each is refused with a 400 naming the limit it
// exceeds, and the serving version goes on answering public traffic.
func TestAdminRefusesHostileModules(t *testing.T) {
	e, _ := startEdge(t)
	_, before := ruleHeader(t, e, 1)
	for _, c := range []struct {
		name, want string
		wasm       []byte
	}{
		{"4e9 locals", "locals per function", wasmbin.ManyLocals(4_000_000_000)},
		{"2.5M nested blocks", "function body size", wasmbin.NestedBlocks(2_500_000)},
		{"br_table of 1.5M", "function body size", wasmbin.BrTable(1_500_000)},
		{"nesting", "nesting depth of blocks", wasmbin.NestedBlocks(1_000)},
	} {
		code, msg := adminDo(t, e, "PUT", "/v1/rules/hamustro", c.wasm)
		if code != 400 || !strings.Contains(msg, c.want) || !strings.Contains(msg, "over the limit") {
			t.Errorf("%s: %d %s, want 400 naming %q", c.name, code, msg, c.want)
		}
		if code, got := ruleHeader(t, e, 2); code != 200 || got != before {
			t.Fatalf("%s: after the refusal, status %d served by %q, want 200 by %q", c.name, code, got, before)
		}
	}
}
