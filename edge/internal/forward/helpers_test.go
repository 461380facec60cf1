package forward

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/edge/internal/spool"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// patience bounds every wait in these tests. It is generous on purpose: the
// tests never assert on timing, they only wait for things to happen.
const patience = 30 * time.Second

const (
	testToken = "s3cret"
	testEdge  = "edge-1"
)

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// openSpool opens a spool in dir (a fresh temp dir if "") and closes it when
// the test ends.
func openSpool(tb testing.TB, dir string) *spool.Spool {
	tb.Helper()
	if dir == "" {
		dir = tb.TempDir()
	}
	s, err := spool.Open(spool.Options{Dir: dir, MinFreeBytes: -1, Logger: quietLogger})
	if err != nil {
		tb.Fatalf("open spool: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func eventValue(tb testing.TB, id string) []byte {
	tb.Helper()
	v, err := proto.Marshal(&eventpb.Event{Id: id, Source: eventpb.Source_SOURCE_EYE, Name: "click", Edge: testEdge,
		Data: []byte(`{"k":"v"}`)})
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// appendEvents appends one event per id, all in one Append.
func appendEvents(tb testing.TB, s *spool.Spool, ids ...string) {
	tb.Helper()
	vs := make([][]byte, len(ids))
	for i, id := range ids {
		vs[i] = eventValue(tb, id)
	}
	if _, err := s.Append(vs...); err != nil {
		tb.Fatalf("append: %v", err)
	}
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + string(rune('a'+i/26)) + string(rune('a'+i%26))
	}
	return out
}

// reply is what the fake aggregator answers. The zero reply accepts the
// whole batch (200, every event stored).
type reply struct {
	status int
	header map[string]string
	body   []byte                // raw body; nil with status 200 means result
	result *eventpb.IngestResult // with status 200 and no body; nil = all stored
	hangUp bool                  // close the connection without an answer
	block  bool                  // answer nothing until the client gives up
}

// request is one request the fake aggregator got.
type request struct {
	header http.Header
	batch  *eventpb.Batch
	status int // what it answered; 0 for hang-ups and blocks
}

// aggregator is a fake aggregator on loopback that really decodes
// zstd+protobuf and records what it got.
type aggregator struct {
	tb  testing.TB
	srv *httptest.Server
	dec *zstd.Decoder

	mu       sync.Mutex
	script   func(call int, b *eventpb.Batch) reply // nil: accept everything
	requests []request
	stored   map[string]int // id -> times stored by a 200 (duplicates included)
	blocked  chan int       // call numbers of blocking replies, as they block
}

func newAggregator(tb testing.TB, script func(call int, b *eventpb.Batch) reply) *aggregator {
	tb.Helper()
	dec, err := zstd.NewReader(nil)
	if err != nil {
		tb.Fatal(err)
	}
	a := &aggregator{tb: tb, dec: dec, script: script, stored: map[string]int{}, blocked: make(chan int, 16)}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	tb.Cleanup(func() {
		a.srv.Close()
		dec.Close()
	})
	return a
}

func (a *aggregator) setScript(script func(call int, b *eventpb.Batch) reply) {
	a.mu.Lock()
	a.script = script
	a.mu.Unlock()
}

func (a *aggregator) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/ingest" {
		a.tb.Errorf("aggregator: unexpected %s %s", r.Method, r.URL.Path)
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	compressed, err := io.ReadAll(r.Body)
	if err != nil {
		return // the client went away
	}
	raw, err := a.dec.DecodeAll(compressed, nil)
	if err != nil {
		a.tb.Errorf("aggregator: zstd: %v", err)
		http.Error(w, "bad zstd", http.StatusBadRequest)
		return
	}
	var b eventpb.Batch
	if err := proto.Unmarshal(raw, &b); err != nil {
		a.tb.Errorf("aggregator: protobuf: %v", err)
		http.Error(w, "bad protobuf", http.StatusBadRequest)
		return
	}

	a.mu.Lock()
	call := len(a.requests)
	var rep reply
	if a.script != nil {
		rep = a.script(call, &b)
	}
	a.requests = append(a.requests, request{header: r.Header.Clone(), batch: &b, status: rep.status})
	if rep.status == 0 && !rep.hangUp && !rep.block {
		rep.status = http.StatusOK
		a.requests[call].status = http.StatusOK
	}
	if rep.status == http.StatusOK && rep.body == nil {
		res := rep.result
		if res == nil {
			res = &eventpb.IngestResult{Stored: uint32(len(b.Events))}
		}
		rejected := map[uint32]bool{}
		for _, rj := range res.Rejected {
			rejected[rj.Index] = true
		}
		for i, ev := range b.Events {
			if !rejected[uint32(i)] {
				a.stored[ev.Id]++
			}
		}
		rep.body, _ = proto.Marshal(res)
		if rep.header == nil {
			rep.header = map[string]string{"Content-Type": "application/x-protobuf"}
		}
	}
	a.mu.Unlock()

	switch {
	case rep.hangUp:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			a.tb.Errorf("aggregator: hijack: %v", err)
			return
		}
		_ = conn.Close()
		return
	case rep.block:
		a.blocked <- call
		<-r.Context().Done()
		return
	}
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(rep.body)
}

func (a *aggregator) url() string { return a.srv.URL }

func (a *aggregator) snapshot() []request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.requests)
}

// storedIDs returns the ids stored at least once, sorted.
func (a *aggregator) storedIDs() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.stored))
	for id := range a.stored {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// eventIDs returns the ids of the events of b.
func eventIDs(b *eventpb.Batch) []string {
	out := make([]string, len(b.Events))
	for i, ev := range b.Events {
		out[i] = ev.Id
	}
	return out
}

// harness is a Forwarder running on a spool against an aggregator.
type harness struct {
	f    *Forwarder
	reg  *prometheus.Registry
	stop func() // cancels Run and waits for it; idempotent
}

// startForwarder builds a Forwarder with test-friendly options, changed by
// mod, and runs it until stop or the end of the test.
func startForwarder(tb testing.TB, sp *spool.Spool, url string, reg *prometheus.Registry, mod func(*Options)) *harness {
	tb.Helper()
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	opts := Options{
		Spool:          sp,
		URL:            url,
		Token:          testToken,
		EdgeID:         testEdge,
		BatchMaxAge:    10 * time.Millisecond,
		RequestTimeout: patience,
		BackoffMin:     time.Millisecond,
		BackoffMax:     10 * time.Millisecond,
		Registerer:     reg,
		Logger:         quietLogger,
	}
	if mod != nil {
		mod(&opts)
	}
	f, err := New(opts)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					tb.Errorf("Run: %v", err)
				}
			case <-time.After(patience):
				tb.Errorf("Run did not return after cancel")
			}
		})
	}
	tb.Cleanup(stop)
	return &harness{f: f, reg: reg, stop: stop}
}

func (h *harness) flush(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := h.f.Flush(ctx); err != nil {
		tb.Fatalf("Flush: %v", err)
	}
}

// metric returns the value of the counter, gauge or (sample count of the)
// histogram name with the label pairs given, or 0 if it does not exist.
func metric(tb testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !hasLabel(m, labels[i], labels[i+1]) {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return 0
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// checkMetrics compares the forwarder's counters with want, keyed
// "batches/success", "events/delivered" and so on.
func checkMetrics(tb testing.TB, reg *prometheus.Registry, want map[string]float64) {
	tb.Helper()
	for k, w := range want {
		kind, result, _ := strings.Cut(k, "/")
		if got := metric(tb, reg, "edgetrack_forward_"+kind+"_total", "result", result); got != w {
			tb.Errorf("edgetrack_forward_%s_total{result=%q} = %v, want %v", kind, result, got, w)
		}
	}
}

func deadLetters(tb testing.TB, s *spool.Spool) []spool.DeadLetter {
	tb.Helper()
	dls, err := s.DeadLetters(spool.Position{}, 0)
	if err != nil {
		tb.Fatalf("dead letters: %v", err)
	}
	return dls
}

func checkDrained(tb testing.TB, s *spool.Spool, wantDead int64) {
	tb.Helper()
	if st := s.Stats(); st.Depth != 0 || st.DeadLetters != wantDead {
		tb.Errorf("spool stats %+v, want depth 0 and %d dead letters", st, wantDead)
	}
}

// syncBuffer is a log sink safe for concurrent writes and reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
