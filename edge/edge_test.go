package edge_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/aggregator"
	"github.com/edgetrack/edgetrack/edge"
	"github.com/edgetrack/edgetrack/edge/internal/spool"
	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/proto/eventpb"
	"github.com/edgetrack/edgetrack/proto/hamustropb"
	"github.com/edgetrack/edgetrack/wasm/rules/hamustro/hamustrotest"
)

func edgeConfig(t *testing.T) config.Edge {
	c := config.Default().Edge
	c.Listen, c.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	c.DataDir = t.TempDir()
	c.AggregatorURL = "http://127.0.0.1:1" // nothing there: events stay in the spool
	c.Token = "edge-token"
	c.Hamustro.Secrets = []string{hamustrotest.Secret}
	c.Spool.MinFreeBytes = 0
	c.ShutdownTimeout = config.Duration(10 * time.Second)
	return c
}

func body(t testing.TB, dev string, nr int) []byte {
	c := hamustrotest.Collection(1)
	c.DeviceId = proto.String(dev)
	c.Session = proto.String(hamustrotest.SessionOf(c))
	c.Payloads[0].Nr = proto.Uint32(uint32(nr))
	b, err := proto.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func send(url string, b []byte) (int, error) {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, _ := http.NewRequest("POST", url+"/api/v1/track", bytes.NewReader(b))
	req.Header.Set("X-Hamustro-Time", ts)
	req.Header.Set("X-Hamustro-Signature", hamustrotest.Sign(ts, b, hamustrotest.Secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestShutdownUnderLoad stops an edge (as SIGTERM does) while clients keep
// sending: every request is answered 200 or 503, or refused at connect; Run
// returns; and every event that got a 200 is in the spool when it is opened
// again.
func TestShutdownUnderLoad(t *testing.T) {
	cfg := edgeConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	e, err := edge.New(ctx, edge.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	url := "http://" + e.Addr()

	var (
		mu      sync.Mutex
		acked   = map[string]bool{}
		badCode []int
		wg      sync.WaitGroup
	)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			dev := fmt.Sprintf("device-%d", g)
			for nr := 1; ; nr++ {
				b := body(t, dev, nr)
				code, err := send(url, b)
				if err != nil {
					return // refused: the listener is closed
				}
				mu.Lock()
				switch code {
				case 200:
					var c hamustropb.Collection
					proto.Unmarshal(b, &c)
					acked[hamustrotest.EventIDs(&c)[0]] = true
				case 503:
				default:
					badCode = append(badCode, code)
				}
				n := len(acked)
				mu.Unlock()
				if n > 2000 {
					return
				}
			}
		}(g)
	}
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 200 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel() // what SIGTERM does in cmd/edgetrack
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	wg.Wait()
	if len(badCode) > 0 {
		t.Fatalf("statuses other than 200/503 during shutdown: %v", badCode)
	}

	sp, err := spool.Open(spool.Options{Dir: filepath.Join(cfg.DataDir, "spool"), MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	entries, err := readAll(sp)
	if err != nil {
		t.Fatal(err)
	}
	inSpool := map[string]bool{}
	for _, v := range entries {
		var ev eventpb.Event
		if err := proto.Unmarshal(v, &ev); err != nil {
			t.Fatal(err)
		}
		inSpool[ev.Id] = true
	}
	for id := range acked {
		if !inSpool[id] {
			t.Errorf("acknowledged event %s is not in the spool", id)
		}
	}
	t.Logf("%d acknowledged, %d in the spool", len(acked), len(inSpool))
}

func readAll(sp *spool.Spool) ([][]byte, error) {
	var out [][]byte
	after := spool.Position{}
	for {
		es, err := sp.Read(after, 1000, 0)
		if err != nil || len(es) == 0 {
			return out, err
		}
		for _, e := range es {
			out = append(out, e.Value)
		}
		after = es[len(es)-1].Pos
	}
}

func TestInvalidConfigListsEveryProblem(t *testing.T) {
	cfg := edgeConfig(t)
	cfg.Token = ""
	cfg.Hamustro.Secrets = nil
	_, err := edge.New(context.Background(), edge.Options{Config: cfg})
	if err == nil {
		t.Fatal("edge started without token and secrets")
	}
	for _, want := range []string{"edge.token", "edge.hamustro.secrets"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func nowUnix() int64 { return time.Now().Unix() }

func sign(ts string, b []byte) string { return hamustrotest.Sign(ts, b, hamustrotest.Secret) }

// startAggregator runs an aggregator in-process with the tokens the edge
// tests use ("edge-token", "query-token", admin "registry-admin"), changed
// by modify if given, and stops it when the test ends.
func startAggregator(t *testing.T, dir string, modify ...func(*config.Aggregator)) *aggregator.Aggregator {
	t.Helper()
	acfg := config.Default().Aggregator
	acfg.Listen, acfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	acfg.DataDir = filepath.Join(dir, "agg")
	acfg.Tokens.Edge, acfg.Tokens.Query, acfg.Tokens.Admin = []string{"edge-token"}, []string{"query-token"}, []string{"registry-admin"}
	for _, m := range modify {
		m(&acfg)
	}
	agg, err := aggregator.New(aggregator.Options{Config: acfg, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { agg.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return agg
}

// TestRunStopsAtOnce cancels an edge's context before Run starts, as a test
// or an operator's signal at start-up may: Run must stop, although its
// listeners may not be serving yet when it shuts them down. (It waited
// forever when fasthttp's Shutdown ran before its Serve.)
func TestRunStopsAtOnce(t *testing.T) {
	for i := range 20 {
		ctx, cancel := context.WithCancel(context.Background())
		e, err := edge.New(ctx, edge.Options{Config: edgeConfig(t), Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("start %d: Run: %v", i, err)
			}
		case <-time.After(time.Minute):
			t.Fatalf("start %d: Run did not return a minute after its context was canceled", i)
		}
	}
}
