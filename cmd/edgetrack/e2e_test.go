package main

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/internal/freeport"
	"github.com/edgetrack/edgetrack/proto/hamustropb"
	"github.com/edgetrack/edgetrack/wasm/rules/hamustro/hamustrotest"
)

// The test binary doubles as the edgetrack binary: with E2E_EDGETRACK_MAIN
// set it runs main() with the arguments after "--".
func TestMain(m *testing.M) {
	if os.Getenv("E2E_EDGETRACK_MAIN") == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{"edgetrack"}, os.Args[i+1:]...)
				break
			}
		}
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const (
	e2eSecret     = "e2e-secret"
	e2eEdgeToken  = "e2e-edge-token"
	e2eQueryToken = "e2e-query-token"
	e2eAdminToken = "e2e-admin-token"
)

// proc is one edgetrack process started by a test.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  *output
	done chan struct{}
}

// output is a process's stdout and stderr, readable while it runs.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(b)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

func start(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Dir = dir // no .env from the repository
	cmd.Env = append(os.Environ(), append([]string{"E2E_EDGETRACK_MAIN=1", "EDGETRACK_LOG_LEVEL=warn"}, env...)...)
	p := &proc{t: t, cmd: cmd, out: &output{}, done: make(chan struct{})}
	cmd.Stdout = p.out
	cmd.Stderr = p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Fatalf("process did not stop after SIGTERM:\n%s", p.out)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		p.t.Fatalf("exit code %d after SIGTERM:\n%s", code, p.out)
	}
}

func waitReady(t *testing.T, p *proc, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("process exited:\n%s", p.out)
		default:
		}
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s not ready:\n%s", url, p.out)
}

// collection returns a signed-ready body for device dev with payload
// numbers first..first+n-1, its session and the ids of its events.
func collection(t *testing.T, dev string, first, n int) (body []byte, session string, ids []string) {
	c := &hamustropb.Collection{
		DeviceId: proto.String(dev), ClientId: proto.String("e2e"), SystemVersion: proto.String("1"), ProductVersion: proto.String("1"),
	}
	sum := md5.Sum([]byte(dev + ":e2e:1:1"))
	session = hex.EncodeToString(sum[:])
	c.Session = proto.String(session)
	for i := first; i < first+n; i++ {
		c.Payloads = append(c.Payloads, &hamustropb.Payload{At: proto.Uint64(uint64(time.Now().Unix())), Event: proto.String("e2e"), Nr: proto.Uint32(uint32(i))})
	}
	body, err := proto.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return body, session, hamustrotest.EventIDs(c)
}

func track(url string, body []byte) (int, error) {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, _ := http.NewRequest("POST", url+"/api/v1/track", bytes.NewReader(body))
	req.Header.Set("X-Hamustro-Time", ts)
	req.Header.Set("X-Hamustro-Signature", hamustrotest.Sign(ts, body, e2eSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// ledger records what was sent and what was acknowledged with a 200.
type ledger struct {
	mu    sync.Mutex
	sent  map[string]bool // event ids
	acked map[string]bool
	sess  map[string]bool
}

func (l *ledger) send(t *testing.T, url, dev string, first, n int) (int, error) {
	body, session, ids := collection(t, dev, first, n)
	l.mu.Lock()
	l.sess[session] = true
	for _, id := range ids {
		l.sent[id] = true
	}
	l.mu.Unlock()
	code, err := track(url, body)
	if err == nil && code == 200 {
		l.mu.Lock()
		for _, id := range ids {
			l.acked[id] = true
		}
		l.mu.Unlock()
	}
	return code, err
}

// stored returns every event id stored for the ledger's sessions, with how
// often each appears.
func stored(t *testing.T, aggURL string, sessions map[string]bool) map[string]int {
	t.Helper()
	ids := map[string]int{}
	for s := range sessions {
		cursor := ""
		for {
			req, _ := http.NewRequest("GET", aggURL+"/events?session_id="+s+"&limit=1000&cursor="+cursor, nil)
			req.Header.Set("Authorization", "Bearer "+e2eQueryToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var page struct {
				Results []struct {
					ID string `json:"id"`
				} `json:"results"`
				Next string `json:"next"`
			}
			err = json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("query: %d %v", resp.StatusCode, err)
			}
			for _, r := range page.Results {
				ids[r.ID]++
			}
			if page.Next == "" {
				break
			}
			cursor = page.Next
		}
	}
	return ids
}

// TestEndToEndCrashAndOutage runs an aggregator and an edge as separate
// processes: events flow through; the aggregator stops while the edge keeps
// accepting; the edge is SIGKILLed mid-traffic and restarted; the aggregator
// returns. Every event that got a 200 ends up stored exactly once, and
// nothing that was never sent appears.
func TestEndToEndCrashAndOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	aggAddr, aggAdmin, edgeAddr, edgeAdmin := freeport.Addr(t), freeport.Addr(t), freeport.Addr(t), freeport.Addr(t)
	aggURL, edgeURL := "http://"+aggAddr, "http://"+edgeAddr
	aggEnv := []string{
		"EDGETRACK_AGGREGATOR_LISTEN=" + aggAddr, "EDGETRACK_AGGREGATOR_ADMIN_LISTEN=" + aggAdmin,
		"EDGETRACK_AGGREGATOR_DATA_DIR=" + filepath.Join(dir, "agg"),
		"EDGETRACK_AGGREGATOR_TOKENS_EDGE=" + e2eEdgeToken, "EDGETRACK_AGGREGATOR_TOKENS_QUERY=" + e2eQueryToken,
	}
	edgeEnv := []string{
		"EDGETRACK_EDGE_LISTEN=" + edgeAddr, "EDGETRACK_EDGE_ADMIN_LISTEN=" + edgeAdmin,
		"EDGETRACK_EDGE_DATA_DIR=" + filepath.Join(dir, "edge"), "EDGETRACK_EDGE_AGGREGATOR_URL=" + aggURL,
		"EDGETRACK_EDGE_TOKEN=" + e2eEdgeToken, "EDGETRACK_EDGE_HAMUSTRO_SECRETS=" + e2eSecret, "EDGETRACK_EDGE_ID=e2e-edge",
		"EDGETRACK_EDGE_FORWARD_BATCH_MAX_AGE=50ms", "EDGETRACK_EDGE_FORWARD_BACKOFF_MAX=300ms",
		"EDGETRACK_EDGE_SPOOL_MIN_FREE_BYTES=0",
	}
	l := &ledger{sent: map[string]bool{}, acked: map[string]bool{}, sess: map[string]bool{}}

	agg := start(t, dir, aggEnv, "aggregator")
	waitReady(t, agg, aggURL)
	edge := start(t, dir, edgeEnv, "edge")
	waitReady(t, edge, edgeURL)

	// Phase 1: everything flows through.
	for i := 0; i < 20; i++ {
		if code, err := l.send(t, edgeURL, fmt.Sprintf("dev-%d", i), 1, 5); err != nil || code != 200 {
			t.Fatalf("phase 1 send %d: %d %v", i, code, err)
		}
	}
	waitStored(t, aggURL, l)

	// Phase 2: the aggregator is gone; the edge keeps answering 200.
	agg.stop()
	for i := 0; i < 20; i++ {
		if code, err := l.send(t, edgeURL, fmt.Sprintf("dev-%d", i), 6, 5); err != nil || code != 200 {
			t.Fatalf("phase 2 send %d: %d %v", i, code, err)
		}
	}

	// Phase 3: the edge is killed while requests are in flight.
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				if _, err := l.send(t, edgeURL, fmt.Sprintf("dev-kill-%d", g), 1+i*3, 3); err != nil {
					return // the edge is gone
				}
			}
		}(g)
	}
	for {
		l.mu.Lock()
		n := len(l.acked)
		l.mu.Unlock()
		if n >= 200+250 { // phases 1 and 2, then 250 more in flight
			break
		}
		time.Sleep(time.Millisecond)
	}
	edge.kill()
	wg.Wait()

	// Phase 4: the edge comes back on the same data, then the aggregator.
	edge = start(t, dir, edgeEnv, "edge")
	waitReady(t, edge, edgeURL)
	for i := 0; i < 5; i++ {
		if code, err := l.send(t, edgeURL, fmt.Sprintf("dev-after-%d", i), 1, 5); err != nil || code != 200 {
			t.Fatalf("phase 4 send %d: %d %v", i, code, err)
		}
	}
	agg = start(t, dir, aggEnv, "aggregator")
	waitReady(t, agg, aggURL)
	got := waitStored(t, aggURL, l)

	for id, n := range got {
		if n != 1 {
			t.Errorf("event %s stored %d times", id, n)
		}
		if !l.sent[id] {
			t.Errorf("event %s was never sent", id)
		}
	}
	t.Logf("sent %d events, %d acknowledged, %d stored", len(l.sent), len(l.acked), len(got))
	edge.stop()
	agg.stop()
}

// waitStored waits until every acknowledged event is stored, then returns
// what is stored.
func waitStored(t *testing.T, aggURL string, l *ledger) map[string]int {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		got := stored(t, aggURL, l.sess)
		missing := 0
		for id := range l.acked {
			if got[id] == 0 {
				missing++
			}
		}
		if missing == 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d acknowledged events never reached the aggregator", missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func osArgs0() string { return os.Args[0] }
