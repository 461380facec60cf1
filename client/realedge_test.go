package client

// Tests against a real edge and a real aggregator, both running in this
// process on loopback: the hamustro rule (wasm) checks the signature and the
// session, the spool makes the events durable before the 200, the forwarder
// ships them to the aggregator, and the aggregator's query API shows what was
// finally stored — one event per (session, nr), with an id
// h:<session>:<nr>:<content hash>.
//
// Two views are checked. What the SDK sent and what the edge answered is
// recorded on the wire (wire, below), because the aggregator stores an event
// id once however often it arrives and so cannot show a duplicate send. What
// was stored is read back from the aggregator.
//
// What a real edge cannot be made to do on demand — answer 500, 503 or 204,
// hang, send Retry-After — stays with the fake collector (collector_test.go).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/aggregator"
	"github.com/edgetrack/edgetrack/edge"
	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/internal/syncbuf"
	"github.com/edgetrack/edgetrack/proto/hamustropb"
)

// Tokens between the real edge, the aggregator and the tests. The edge
// accepts testSecret, the secret of testConfig.
const (
	realEdgeToken  = "edge-token"
	realQueryToken = "query-token"
)

// realEdge is an edge and its aggregator on loopback, stopped at cleanup
// (the edge first, so that it drains into the aggregator).
type realEdge struct {
	URL    string // the edge's base URL, for Config.CollectorURL
	aggURL string
	wire   *wire        // every request a tracker of config made, and the edge's answer
	query  *http.Client // for the aggregator's query API
}

// startEdge starts an aggregator and an edge forwarding to it, each with its
// own data directory under tb.TempDir(). Their logs are printed if the test
// fails.
func startEdge(tb testing.TB) *realEdge {
	tb.Helper()
	logs := new(syncbuf.Buffer)
	log := slog.New(slog.NewTextHandler(logs, nil))
	// Registered first, so it runs last: after both have stopped logging.
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("edge and aggregator log:\n%s", logs)
		}
	})

	dir := tb.TempDir()
	cfg := config.Default()
	cfg.Aggregator.Listen, cfg.Aggregator.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Aggregator.DataDir = filepath.Join(dir, "aggregator")
	cfg.Aggregator.Tokens = config.Tokens{Edge: []string{realEdgeToken}, Query: []string{realQueryToken}}
	agg, err := aggregator.New(aggregator.Options{Config: cfg.Aggregator, Logger: log.With("process", "aggregator")})
	if err != nil {
		tb.Fatalf("aggregator.New: %v", err)
	}
	aggCtx, stopAgg := context.WithCancel(context.Background())
	aggDone := make(chan error, 1)
	go func() { aggDone <- agg.Run(aggCtx) }()
	tb.Cleanup(func() {
		stopAgg()
		if err := <-aggDone; err != nil {
			tb.Errorf("aggregator: Run: %v", err)
		}
	})

	cfg.Edge.ID = "test-edge"
	cfg.Edge.Listen, cfg.Edge.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Edge.DataDir = filepath.Join(dir, "edge")
	cfg.Edge.Token = realEdgeToken
	cfg.Edge.AggregatorURL = "http://" + agg.Addr()
	cfg.Edge.Hamustro.Secrets = []string{testSecret}
	cfg.Edge.Forward.BatchMaxAge = config.Duration(20 * time.Millisecond)
	cfg.Edge.Spool.MinFreeBytes = 0
	cfg.Edge.Rules.PoolSize = 1 // a shared 2-core machine
	edgeCtx, stopEdge := context.WithCancel(context.Background())
	e, err := edge.New(edgeCtx, edge.Options{Config: cfg.Edge, Logger: log.With("process", "edge")})
	if err != nil {
		stopEdge()
		tb.Fatalf("edge.New: %v", err)
	}
	edgeDone := make(chan error, 1)
	go func() { edgeDone <- e.Run(edgeCtx) }()

	trackTransport, queryTransport := &http.Transport{}, &http.Transport{}
	tb.Cleanup(func() {
		// Trackers are closed by now (their cleanups were registered later).
		trackTransport.CloseIdleConnections()
		queryTransport.CloseIdleConnections()
		stopEdge()
		if err := <-edgeDone; err != nil {
			tb.Errorf("edge: Run: %v", err)
		}
	})
	return &realEdge{
		URL:    "http://" + e.Addr(),
		aggURL: "http://" + agg.Addr(),
		wire:   &wire{tb: tb, base: trackTransport},
		query:  &http.Client{Transport: queryTransport, Timeout: 30 * time.Second},
	}
}

// config is testConfig for this edge, its requests recorded on e.wire.
func (e *realEdge) config(tb testing.TB) Config {
	cfg := testConfig(tb, e.URL)
	cfg.HTTPClient = &http.Client{Transport: e.wire, Timeout: 30 * time.Second}
	return cfg
}

// storedEvent is the part of the aggregator's JSON event the tests check.
type storedEvent struct {
	ID         string `json:"id"`
	Source     string `json:"source"`
	SessionID  string `json:"session_id"`
	Category   string `json:"category"`
	Name       string `json:"name"`
	ClientTime string `json:"client_time"`
	Edge       string `json:"edge"`
	Data       struct {
		DeviceID       string `json:"device_id"`
		ClientID       string `json:"client_id"`
		SystemVersion  string `json:"system_version"`
		ProductVersion string `json:"product_version"`
		System         string `json:"system"`
		ProductGitHash string `json:"product_git_hash"`
		At             uint64 `json:"at"`
		Nr             uint32 `json:"nr"`
		UserID         uint32 `json:"user_id"`
		Parameters     string `json:"parameters"`
		IsTesting      bool   `json:"is_testing"`
	} `json:"data"`
}

// stored returns every event of session the aggregator has, following the
// query API's cursors.
func (e *realEdge) stored(tb testing.TB, session string) []storedEvent {
	tb.Helper()
	var out []storedEvent
	cursor := ""
	for {
		q := url.Values{"session_id": {session}, "limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		req, err := http.NewRequest(http.MethodGet, e.aggURL+"/events?"+q.Encode(), nil)
		if err != nil {
			tb.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+realQueryToken)
		resp, err := e.query.Do(req)
		if err != nil {
			tb.Fatalf("aggregator query: %v", err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			tb.Fatalf("aggregator query: reading the body: %v", err)
		}
		if resp.StatusCode != http.StatusOK {
			tb.Fatalf("aggregator query: %s: %s", resp.Status, body)
		}
		var page struct {
			Results []storedEvent `json:"results"`
			Next    string        `json:"next"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			tb.Fatalf("aggregator query: %v in %s", err, body)
		}
		out = append(out, page.Results...)
		if page.Next == "" {
			return out
		}
		cursor = page.Next
	}
}

// waitStored polls the aggregator until it has at least n events of
// session and returns them. The deadline only guards against a hung test;
// no assertion depends on how long the events take.
func (e *realEdge) waitStored(tb testing.TB, session string, n int) []storedEvent {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs := e.stored(tb, session)
		if len(evs) >= n {
			return evs
		}
		if time.Now().After(deadline) {
			tb.Fatalf("aggregator has %d events of session %s, want %d: %v", len(evs), session, n, evs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wantDelivered checks that the events of session with nrs 1..len(names),
// event nr named names[nr-1], were each answered 200 by the edge exactly
// once and are each stored exactly once at the aggregator, and nothing else
// of session is.
func (e *realEdge) wantDelivered(tb testing.TB, session string, names []string) {
	tb.Helper()
	acked := e.wire.acked(session)
	slices.Sort(acked)
	if !slices.Equal(acked, seq(len(names))) {
		tb.Errorf("edge answered 200 for nrs %v of session %s, want 1..%d once each", e.wire.acked(session), session, len(names))
	}

	// Wait only for what the edge acknowledged: a 200 means durable, so
	// those events must arrive; waiting for more would only time out.
	evs := e.waitStored(tb, session, len(slices.Compact(acked)))
	seen := make(map[uint32]bool)
	for _, ev := range evs {
		nr := ev.Data.Nr
		switch {
		case !strings.HasPrefix(ev.ID, fmt.Sprintf("h:%s:%d:", session, nr)):
			tb.Errorf("stored event %s has nr %d, want an id starting h:%s:%d:", ev.ID, nr, session, nr)
		case seen[nr]:
			tb.Errorf("nr %d is stored twice", nr)
		case nr < 1 || int(nr) > len(names):
			tb.Errorf("stored unexpected nr %d (%s), want 1..%d", nr, ev.Name, len(names))
		case ev.Name != names[nr-1]:
			tb.Errorf("stored nr %d as %q, want %q", nr, ev.Name, names[nr-1])
		}
		seen[nr] = true
	}
	if len(evs) != len(names) {
		tb.Errorf("aggregator stored %d events of session %s, want %d", len(evs), session, len(names))
	}
}

// exchange is one POST a tracker made, as seen on the wire.
type exchange struct {
	Status  int // the edge's answer; 0 if there was none
	Session string
	Nrs     []uint32
}

// wire is a RoundTripper that records each request's Collection and the
// edge's answer, changing nothing.
type wire struct {
	tb   testing.TB
	base http.RoundTripper

	mu  sync.Mutex
	log []exchange
}

func (w *wire) RoundTrip(req *http.Request) (*http.Response, error) {
	var ex exchange
	if req.GetBody == nil {
		w.tb.Errorf("wire: request to %s without GetBody; cannot record it", req.URL)
	} else if body, err := req.GetBody(); err != nil {
		w.tb.Errorf("wire: %v", err)
	} else {
		b, _ := io.ReadAll(body)
		c := new(hamustropb.Collection)
		if err := proto.Unmarshal(b, c); err != nil {
			w.tb.Errorf("wire: the SDK sent an undecodable body: %v", err)
		}
		ex.Session, ex.Nrs = c.GetSession(), payloadNrs(c.GetPayloads())
	}
	resp, err := w.base.RoundTrip(req)
	if err == nil {
		ex.Status = resp.StatusCode
	}
	w.mu.Lock()
	w.log = append(w.log, ex)
	w.mu.Unlock()
	return resp, err
}

func (w *wire) exchanges() []exchange {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.log)
}

// acked returns the nrs of session the edge answered 200, in send order.
func (w *wire) acked(session string) []uint32 {
	var out []uint32
	for _, ex := range w.exchanges() {
		if ex.Status == http.StatusOK && ex.Session == session {
			out = append(out, ex.Nrs...)
		}
	}
	return out
}

// eventNames returns prefix-1 .. prefix-n.
func eventNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i+1)
	}
	return out
}

// trackAs tracks one event per name, with the fields trackN uses.
func trackAs(tb testing.TB, tr *Tracker, names ...string) {
	tb.Helper()
	for _, name := range names {
		if err := tr.TrackEvent(context.Background(), name, 7, `{"i":1}`, false); err != nil {
			tb.Fatalf("TrackEvent %s: %v", name, err)
		}
	}
}

// Tracked events and one Flush: the edge acknowledges every event once (in
// several requests, as MaxPayloadsPerRequest asks), the aggregator stores
// each once under its nr and name with the tracker's attributes, and the
// tracker holds nothing afterwards.
func TestRealEdgeFlush(t *testing.T) {
	e := startEdge(t)
	cfg := e.config(t)
	cfg.MaxPayloadsPerRequest = 10
	tr := newTracker(t, cfg)

	names := eventNames("open", 25)
	trackAs(t, tr, names...)
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	wantPending(t, tr, 0)
	if st := tr.Stats(); st.Sent != 25 || st.Requests != 3 || st.FailedRequests != 0 {
		t.Errorf("Stats = %+v, want 25 sent in 3 requests, none failed", st)
	}
	e.wantDelivered(t, tr.Session(), names)

	// The edge read every field the SDK sent.
	ev := e.stored(t, tr.Session())[0]
	at := cfg.Clock().UTC()
	d := ev.Data
	if ev.Source != "hamustro" || ev.SessionID != tr.Session() || ev.Category != cfg.ClientID || ev.Edge != "test-edge" ||
		ev.ClientTime != at.Format("2006-01-02T15:04:05.000000000Z07:00") ||
		d.DeviceID != HashDeviceID(cfg.DeviceID) || d.ClientID != cfg.ClientID ||
		d.SystemVersion != cfg.SystemVersion || d.ProductVersion != cfg.ProductVersion ||
		d.System != cfg.System || d.ProductGitHash != cfg.ProductGitHash ||
		d.At != uint64(at.Unix()) || d.UserID != 7 || d.Parameters != `{"i":1}` || d.IsTesting {
		t.Errorf("stored event does not carry what was tracked: %+v", ev)
	}
}

// Events a tracker stored and never sent — it was abandoned without Flush
// or Close, as in a crash — are delivered by the next tracker on the same
// directory.
func TestRealEdgeEventsSurviveCrash(t *testing.T) {
	t.Run("crashable fs", func(t *testing.T) {
		e := startEdge(t)
		fs := vfs.NewCrashableMem()
		cfg := e.config(t)
		cfg.fs, cfg.Dir = fs, "db"
		tr := newTracker(t, cfg)
		names := eventNames("before-crash", 5)
		trackAs(t, tr, names...)

		// Only what was synced survives the clone; tr is never used again.
		cfg.fs = fs.CrashClone(vfs.CrashCloneCfg{
			UnsyncedDataPercent: 50,
			RNG:                 rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		})
		after := newTracker(t, cfg)
		wantPending(t, after, 5)
		if ex := e.wire.exchanges(); len(ex) != 0 {
			t.Fatalf("requests before the crash: %+v, want none", ex)
		}
		names = append(names, "after-crash")
		trackAs(t, after, names[5])
		if err := after.Flush(context.Background()); err != nil {
			t.Fatalf("Flush: %v", err)
		}
		wantPending(t, after, 0)
		e.wantDelivered(t, after.Session(), names)
	})

	t.Run("process kill", func(t *testing.T) {
		if testing.Short() {
			t.Skip("starts a subprocess")
		}
		dir := t.TempDir()
		runKilledChild(t, dir) // tracks ev-1..ev-5 in dir and is killed
		e := startEdge(t)
		cfg := e.config(t)
		cfg.Dir = dir
		tr := newTracker(t, cfg)
		wantPending(t, tr, 5)
		names := append(eventNames("ev", 5), "after-kill")
		trackAs(t, tr, names[5])
		if err := tr.Flush(context.Background()); err != nil {
			t.Fatalf("Flush: %v", err)
		}
		wantPending(t, tr, 0)
		e.wantDelivered(t, tr.Session(), names)
	})
}

// Numbering continues across restarts, after sent events as well as with
// events still queued. A reused nr would not show as a duplicate: the
// aggregator keeps the first event with an id and drops the later one, so
// the check is that every name arrived under the nr it was tracked with.
func TestRealEdgeNumberingContinuesAcrossRestarts(t *testing.T) {
	e := startEdge(t)
	cfg := e.config(t)

	// Run 1: nrs 1..5, sent and stored before the restart.
	tr := newTracker(t, cfg)
	first := eventNames("run1", 5)
	trackAs(t, tr, first...)
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	e.waitStored(t, tr.Session(), 5)

	// Run 2: nrs 6..8, left queued at the restart.
	tr = newTracker(t, cfg)
	second := eventNames("run2", 3)
	trackAs(t, tr, second...)
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}

	// Run 3: nrs 9..10; one Flush sends run 2's and run 3's events.
	tr = newTracker(t, cfg)
	wantPending(t, tr, 3)
	third := eventNames("run3", 2)
	trackAs(t, tr, third...)
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	wantPending(t, tr, 0)
	e.wantDelivered(t, tr.Session(), slices.Concat(first, second, third))
}

// A wrong SharedSecret: the edge answers 401, Flush reports it and every
// event stays queued. A tracker with the right secret on the same directory
// delivers them, each exactly once.
func TestRealEdgeWrongSecret(t *testing.T) {
	e := startEdge(t)
	cfg := e.config(t)
	cfg.SharedSecret = "not-the-edge-secret"
	tr := newTracker(t, cfg)
	names := eventNames("queued", 5)
	trackAs(t, tr, names...)

	err := tr.Flush(context.Background())
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusUnauthorized || se.Session != tr.Session() {
		t.Fatalf("Flush with a wrong secret = %v, want a StatusError 401 for %s", err, tr.Session())
	}
	if !strings.Contains(se.Body, "X-Hamustro-Signature") {
		t.Errorf("StatusError body %q does not carry the edge's reason", se.Body)
	}
	wantPending(t, tr, 5)
	ex := e.wire.exchanges()
	if len(ex) != 1 || ex[0].Status != http.StatusUnauthorized || !slices.Equal(ex[0].Nrs, seq(5)) {
		t.Fatalf("exchanges = %+v, want one 401 for nrs 1..5", ex)
	}
	if st := tr.Stats(); st.Sent != 0 || st.FailedRequests != 1 {
		t.Errorf("Stats = %+v, want nothing sent and 1 failed request", st)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}

	cfg.SharedSecret = testSecret
	tr = newTracker(t, cfg)
	wantPending(t, tr, 5)
	names = append(names, "after-fix")
	trackAs(t, tr, names[5])
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatalf("Flush with the right secret: %v", err)
	}
	wantPending(t, tr, 0)
	e.wantDelivered(t, tr.Session(), names)
}

// With QueueSize 5 the fifth TrackEvent sends in the background: the events
// reach the aggregator without a Flush.
func TestRealEdgeQueueSizeTrigger(t *testing.T) {
	e := startEdge(t)
	cfg := e.config(t)
	cfg.QueueSize = 5
	tr := newTracker(t, cfg)

	names := eventNames("queued", 5)
	trackAs(t, tr, names[:4]...)
	quiesce(t, tr)
	if ex := e.wire.exchanges(); len(ex) != 0 {
		t.Fatalf("requests with 4 of 5 queued: %+v, want none", ex)
	}

	trackAs(t, tr, names[4])
	e.waitStored(t, tr.Session(), 5)
	quiesce(t, tr) // the background send has finished deleting
	wantPending(t, tr, 0)
	e.wantDelivered(t, tr.Session(), names)
}
