package forward

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/edge/internal/spool"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

func TestSingleEventGoesOutByAge(t *testing.T) {
	sp := openSpool(t, "")
	agg := newAggregator(t, nil)
	h := startForwarder(t, sp, agg.url(), nil, func(o *Options) {
		o.BatchMaxAge = 0 // the default, 200ms: a lone event must not wait for company
	})
	appendEvents(t, sp, "e1")
	h.flush(t)

	reqs := agg.snapshot()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	hdr, b := reqs[0].header, reqs[0].batch
	for k, want := range map[string]string{
		"Authorization":    "Bearer " + testToken,
		"Content-Type":     "application/x-protobuf",
		"Content-Encoding": "zstd",
		"X-Edgetrack-Edge": testEdge,
	} {
		if got := hdr.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if b.Edge != testEdge || b.BootEpoch != sp.Epoch() || b.FirstSeq != 1 || b.LastSeq != 1 {
		t.Errorf("batch header edge=%q epoch=%d seq=%d..%d, want %q %d 1..1", b.Edge, b.BootEpoch, b.FirstSeq, b.LastSeq, testEdge, sp.Epoch())
	}
	if len(b.Events) != 1 || !proto.Equal(b.Events[0], mustEvent(t, eventValue(t, "e1"))) {
		t.Errorf("events %v, want the appended e1", b.Events)
	}
	checkDrained(t, sp, 0)
	checkMetrics(t, h.reg, map[string]float64{
		"batches/success": 1, "batches/rejected": 0, "batches/retry": 0,
		"events/delivered": 1, "events/dead_lettered": 0,
	})
	if n := metric(t, h.reg, "edgetrack_forward_request_duration_seconds"); n != 1 {
		t.Errorf("request duration histogram has %v samples, want 1", n)
	}
}

func mustEvent(tb testing.TB, v []byte) *eventpb.Event {
	tb.Helper()
	var ev eventpb.Event
	if err := proto.Unmarshal(v, &ev); err != nil {
		tb.Fatal(err)
	}
	return &ev
}

func TestBatchesByCount(t *testing.T) {
	sp := openSpool(t, "")
	all := ids("c", 30)
	appendEvents(t, sp, all...) // before Run: every batch is full at once
	agg := newAggregator(t, nil)
	h := startForwarder(t, sp, agg.url(), nil, func(o *Options) { o.BatchMaxEvents = 10 })
	h.flush(t)

	reqs := agg.snapshot()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	for i, r := range reqs {
		first := uint64(10*i + 1)
		if r.batch.FirstSeq != first || r.batch.LastSeq != first+9 || r.batch.BootEpoch != sp.Epoch() {
			t.Errorf("batch %d: epoch %d seq %d..%d, want %d %d..%d", i, r.batch.BootEpoch, r.batch.FirstSeq, r.batch.LastSeq, sp.Epoch(), first, first+9)
		}
		if got, want := eventIDs(r.batch), all[10*i:10*i+10]; !slices.Equal(got, want) {
			t.Errorf("batch %d: ids %v, want %v", i, got, want)
		}
	}
	checkDrained(t, sp, 0)
	checkMetrics(t, h.reg, map[string]float64{"batches/success": 3, "events/delivered": 30})
}

// TestPartialBatchWaitsForMore appends events one by one while the forwarder
// runs. BatchMaxAge is an hour, so they can only go out together, once the
// batch is full.
func TestPartialBatchWaitsForMore(t *testing.T) {
	sp := openSpool(t, "")
	agg := newAggregator(t, nil)
	h := startForwarder(t, sp, agg.url(), nil, func(o *Options) {
		o.BatchMaxEvents = 5
		o.BatchMaxAge = time.Hour
	})
	all := ids("q", 5)
	for _, id := range all {
		appendEvents(t, sp, id)
	}
	h.flush(t)
	reqs := agg.snapshot()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	if b := reqs[0].batch; !slices.Equal(eventIDs(b), all) || b.FirstSeq != 1 || b.LastSeq != 5 {
		t.Errorf("batch seq %d..%d ids %v, want 1..5 %v", b.FirstSeq, b.LastSeq, eventIDs(b), all)
	}
}

func TestBatchesByBytes(t *testing.T) {
	sp := openSpool(t, "")
	all := ids("b", 6)
	appendEvents(t, sp, all...)
	size := len(eventValue(t, all[0]))
	agg := newAggregator(t, nil)
	h := startForwarder(t, sp, agg.url(), nil, func(o *Options) { o.BatchMaxBytes = 2*size + size/2 })
	h.flush(t)
	reqs := agg.snapshot()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3 of 2 events", len(reqs))
	}
	for i, r := range reqs {
		if got := eventIDs(r.batch); !slices.Equal(got, all[2*i:2*i+2]) {
			t.Errorf("batch %d: ids %v, want %v", i, got, all[2*i:2*i+2])
		}
	}
}

func TestOneEpochPerBatch(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir)
	old := sp.Epoch()
	appendEvents(t, sp, "a1", "a2", "a3")
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	sp = openSpool(t, dir)
	appendEvents(t, sp, "b1", "b2")

	agg := newAggregator(t, nil)
	h := startForwarder(t, sp, agg.url(), nil, nil)
	h.flush(t)
	reqs := agg.snapshot()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2 (one per epoch)", len(reqs))
	}
	for i, want := range []struct {
		epoch uint64
		ids   []string
	}{{old, []string{"a1", "a2", "a3"}}, {sp.Epoch(), []string{"b1", "b2"}}} {
		b := reqs[i].batch
		if b.BootEpoch != want.epoch || b.FirstSeq != 1 || b.LastSeq != uint64(len(want.ids)) || !slices.Equal(eventIDs(b), want.ids) {
			t.Errorf("batch %d: epoch %d seq %d..%d ids %v, want epoch %d seq 1..%d ids %v",
				i, b.BootEpoch, b.FirstSeq, b.LastSeq, eventIDs(b), want.epoch, len(want.ids), want.ids)
		}
	}
	checkDrained(t, sp, 0)
}

func TestPerEventRejection(t *testing.T) {
	sp := openSpool(t, "")
	agg := newAggregator(t, func(call int, b *eventpb.Batch) reply {
		if call > 0 {
			return reply{}
		}
		return reply{status: http.StatusOK, result: &eventpb.IngestResult{
			Stored:   uint32(len(b.Events) - 1),
			Rejected: []*eventpb.Rejection{{Index: 1, Id: b.Events[1].Id, Reason: "id longer than 256 bytes"}},
		}}
	})
	appendEvents(t, sp, "x0", "x1", "x2")
	h := startForwarder(t, sp, agg.url(), nil, nil)
	h.flush(t)

	dls := deadLetters(t, sp)
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dls))
	}
	d := dls[0]
	if d.Pos != (spool.Position{Epoch: sp.Epoch(), Seq: 2}) || mustEvent(t, d.Value).Id != "x1" {
		t.Errorf("dead letter at %s with id %q, want seq 2 with x1", d.Pos, mustEvent(t, d.Value).Id)
	}
	if want := "aggregator rejected event: id longer than 256 bytes"; d.Reason != want {
		t.Errorf("reason %q, want %q", d.Reason, want)
	}
	if got := agg.storedIDs(); !slices.Equal(got, []string{"x0", "x2"}) {
		t.Errorf("stored %v, want [x0 x2]", got)
	}
	checkDrained(t, sp, 1)
	checkMetrics(t, h.reg, map[string]float64{
		"batches/success": 1, "batches/rejected": 0, "batches/retry": 0,
		"events/delivered": 2, "events/dead_lettered": 1,
	})
}

func TestBadRequestDeadLettersBatch(t *testing.T) {
	sp := openSpool(t, "")
	agg := newAggregator(t, func(call int, b *eventpb.Batch) reply {
		if call == 0 {
			return reply{status: http.StatusBadRequest, body: []byte(`{"error":"malformed batch:\nno edge"}` + "\n"),
				header: map[string]string{"Content-Type": "application/json"}}
		}
		return reply{}
	})
	appendEvents(t, sp, "m0", "m1", "m2")
	h := startForwarder(t, sp, agg.url(), nil, nil)
	h.flush(t)

	dls := deadLetters(t, sp)
	if len(dls) != 3 {
		t.Fatalf("%d dead letters, want 3", len(dls))
	}
	for i, d := range dls {
		if want := "aggregator rejected batch: 400 malformed batch: no edge"; d.Reason != want {
			t.Errorf("dead letter %d: reason %q, want %q", i, d.Reason, want)
		}
	}
	// The forwarder goes on with what comes next.
	appendEvents(t, sp, "m3")
	h.flush(t)
	if got := agg.storedIDs(); !slices.Equal(got, []string{"m3"}) {
		t.Errorf("stored %v, want [m3]", got)
	}
	checkDrained(t, sp, 3)
	checkMetrics(t, h.reg, map[string]float64{
		"batches/success": 1, "batches/rejected": 1, "batches/retry": 0,
		"events/delivered": 1, "events/dead_lettered": 3,
	})
}

func TestTooLargeHalvesUntilItFits(t *testing.T) {
	sp := openSpool(t, "")
	tooLarge := true
	agg := newAggregator(t, func(call int, b *eventpb.Batch) reply {
		if tooLarge && len(b.Events) > 2 {
			return reply{status: http.StatusRequestEntityTooLarge, body: []byte("batch over 64 MiB")}
		}
		return reply{}
	})
	all := ids("t", 8)
	appendEvents(t, sp, all...)
	h := startForwarder(t, sp, agg.url(), nil, func(o *Options) { o.BatchMaxEvents = 8 })
	h.flush(t)

	var sizes []int
	for _, r := range agg.snapshot() {
		sizes = append(sizes, len(r.batch.Events))
	}
	if want := []int{8, 4, 2, 2, 2, 2}; !slices.Equal(sizes, want) {
		t.Errorf("batch sizes %v, want %v", sizes, want)
	}
	if got := agg.storedIDs(); !slices.Equal(got, all) {
		t.Errorf("stored %v, want %v", got, all)
	}
	checkDrained(t, sp, 0)
	checkMetrics(t, h.reg, map[string]float64{"batches/success": 4, "batches/retry": 2, "events/delivered": 8})

	// Past the range that was too large, batches are full size again.
	agg.mu.Lock()
	tooLarge = false
	agg.mu.Unlock()
	appendEvents(t, sp, ids("u", 6)...)
	h.flush(t)
	reqs := agg.snapshot()
	if n := len(reqs[len(reqs)-1].batch.Events); len(reqs) != 7 || n != 6 {
		t.Errorf("%d requests, last of %d events; want 7, the last of 6", len(reqs), n)
	}
}

func TestTooLargeSingleEventIsDeadLettered(t *testing.T) {
	sp := openSpool(t, "")
	agg := newAggregator(t, func(call int, b *eventpb.Batch) reply {
		if slices.Contains(eventIDs(b), "big") {
			return reply{status: http.StatusRequestEntityTooLarge, body: []byte("event too large")}
		}
		return reply{}
	})
	appendEvents(t, sp, "a", "big", "c")
	h := startForwarder(t, sp, agg.url(), nil, nil)
	h.flush(t)

	dls := deadLetters(t, sp)
	if len(dls) != 1 || mustEvent(t, dls[0].Value).Id != "big" {
		t.Fatalf("dead letters %v, want just big", dls)
	}
	if want := "aggregator rejected batch: 413 event too large"; dls[0].Reason != want {
		t.Errorf("reason %q, want %q", dls[0].Reason, want)
	}
	if got := agg.storedIDs(); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("stored %v, want [a c]", got)
	}
	checkDrained(t, sp, 1)
	checkMetrics(t, h.reg, map[string]float64{
		"batches/success": 2, "batches/rejected": 1, "batches/retry": 1,
		"events/delivered": 2, "events/dead_lettered": 1,
	})
}

func TestUndecodableEntriesNeverGoOnTheWire(t *testing.T) {
	sp := openSpool(t, "")
	garbage := []byte{0xff, 0xff, 0xff, 0xff}
	if _, err := sp.Append(eventValue(t, "g0"), garbage, eventValue(t, "g2")); err != nil {
		t.Fatal(err)
	}
	agg := newAggregator(t, nil)
	h := startForwarder(t, sp, agg.url(), nil, nil)
	h.flush(t)

	dls := deadLetters(t, sp)
	if len(dls) != 1 || dls[0].Pos.Seq != 2 || !strings.HasPrefix(dls[0].Reason, "undecodable spool entry: ") ||
		string(dls[0].Value) != string(garbage) {
		t.Fatalf("dead letters %+v, want the garbage at seq 2 with an undecodable reason", dls)
	}
	var sent []string
	for _, r := range agg.snapshot() {
		sent = append(sent, eventIDs(r.batch)...)
	}
	if !slices.Equal(sent, []string{"g0", "g2"}) {
		t.Errorf("sent %v, want [g0 g2]", sent)
	}
	checkDrained(t, sp, 1)
	checkMetrics(t, h.reg, map[string]float64{"events/delivered": 2, "events/dead_lettered": 1})
}

// TestRetryable fails the first attempts in every way that is not proof the
// events are bad, and checks that everything arrives once the aggregator
// recovers, with nothing dropped.
func TestRetryable(t *testing.T) {
	badIndex, _ := proto.Marshal(&eventpb.IngestResult{Stored: 4, Rejected: []*eventpb.Rejection{{Index: 99, Reason: "x"}}})
	wrongID, _ := proto.Marshal(&eventpb.IngestResult{Stored: 4, Rejected: []*eventpb.Rejection{{Index: 0, Id: "nope", Reason: "x"}}})
	incomplete, _ := proto.Marshal(&eventpb.IngestResult{Stored: 1})
	pb := map[string]string{"Content-Type": "application/x-protobuf"}
	cases := []struct {
		name  string
		fails int
		reply reply
	}{
		{"500", 3, reply{status: 500, body: []byte("boom")}},
		{"502", 2, reply{status: 502}},
		{"503 with Retry-After", 1, reply{status: 503, header: map[string]string{"Retry-After": "1"}}},
		{"429 with Retry-After", 1, reply{status: 429, header: map[string]string{"Retry-After": "1"}}},
		{"408", 2, reply{status: 408}},
		{"401", 3, reply{status: 401, body: []byte("unknown token")}},
		{"403", 2, reply{status: 403}},
		{"unknown status 418", 2, reply{status: 418}},
		{"redirect", 2, reply{status: 307, header: map[string]string{"Location": "/elsewhere"}}},
		{"closed connection", 3, reply{hangUp: true}},
		{"timeout", 2, reply{block: true}},
		{"200 undecodable body", 2, reply{status: 200, body: []byte{0xff, 0xff}, header: pb}},
		{"200 empty body", 2, reply{status: 200, body: []byte{}, header: pb}},
		{"200 not accounting for every event", 2, reply{status: 200, body: incomplete, header: pb}},
		{"200 rejecting an index out of range", 2, reply{status: 200, body: badIndex, header: pb}},
		{"200 rejecting the wrong id", 2, reply{status: 200, body: wrongID, header: pb}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			sp := openSpool(t, "")
			agg := newAggregator(t, func(call int, b *eventpb.Batch) reply {
				if call < c.fails {
					return c.reply
				}
				return reply{}
			})
			all := ids("r", 5)
			appendEvents(t, sp, all...)
			h := startForwarder(t, sp, agg.url(), nil, func(o *Options) {
				if c.reply.block {
					o.RequestTimeout = 100 * time.Millisecond
				}
			})
			h.flush(t)

			if got := agg.storedIDs(); !slices.Equal(got, all) {
				t.Errorf("stored %v, want %v", got, all)
			}
			if n := len(agg.snapshot()); n != c.fails+1 {
				t.Errorf("%d requests, want %d", n, c.fails+1)
			}
			checkDrained(t, sp, 0)
			checkMetrics(t, h.reg, map[string]float64{
				"batches/success": 1, "batches/rejected": 0, "batches/retry": float64(c.fails),
				"events/delivered": 5, "events/dead_lettered": 0,
			})
			if g := metric(t, h.reg, "edgetrack_forward_backoff_seconds"); g != 0 {
				t.Errorf("backoff gauge %v after a success, want 0", g)
			}
		})
	}
}

// TestRefusedTokenIsLoggedAsErrorOnce checks that a refused token is an error
// in the log, once per minute however often it is retried, and that the
// events are kept.
func TestRefusedTokenIsLoggedAsErrorOnce(t *testing.T) {
	sp := openSpool(t, "")
	const fails = 5
	agg := newAggregator(t, func(call int, b *eventpb.Batch) reply {
		if call < fails {
			return reply{status: http.StatusUnauthorized, body: []byte("unknown token")}
		}
		return reply{}
	})
	var logs syncBuffer
	appendEvents(t, sp, "k0", "k1")
	h := startForwarder(t, sp, agg.url(), nil, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	h.flush(t)

	out := logs.String()
	if n := strings.Count(out, "level=ERROR msg=\"aggregator refused the edge token"); n != 1 {
		t.Errorf("%d error lines about the token, want 1; log:\n%s", n, out)
	}
	if !strings.Contains(out, "forwarding recovered") {
		t.Errorf("no recovery line; log:\n%s", out)
	}
	if got := agg.storedIDs(); !slices.Equal(got, []string{"k0", "k1"}) {
		t.Errorf("stored %v, want [k0 k1]", got)
	}
	checkDrained(t, sp, 0)
	checkMetrics(t, h.reg, map[string]float64{"batches/retry": fails, "batches/success": 1})
}

// TestRestart stops a forwarder while a batch is in flight, reopens the spool
// (a new epoch) and appends more; a new forwarder delivers everything.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir)
	first := ids("o", 20)
	appendEvents(t, sp, first...)

	agg := newAggregator(t, func(call int, b *eventpb.Batch) reply {
		if call == 1 {
			return reply{block: true} // in flight until the forwarder is stopped
		}
		return reply{}
	})
	reg := prometheus.NewRegistry()
	h := startForwarder(t, sp, agg.url(), reg, func(o *Options) { o.BatchMaxEvents = 5 })
	select {
	case <-agg.blocked:
	case <-time.After(patience):
		t.Fatal("the second batch never arrived")
	}
	h.stop()
	if d := sp.Stats().Depth; d != 15 {
		t.Fatalf("depth %d after stopping, want 15 (one batch of 5 acked)", d)
	}

	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	sp = openSpool(t, dir)
	second := ids("n", 5)
	appendEvents(t, sp, second...)
	h = startForwarder(t, sp, agg.url(), reg, func(o *Options) { o.BatchMaxEvents = 5 })
	h.flush(t)

	want := slices.Sorted(slices.Values(append(slices.Clone(first), second...)))
	if got := agg.storedIDs(); !slices.Equal(got, want) {
		t.Errorf("stored %v, want %v", got, want)
	}
	checkDrained(t, sp, 0)
	// The old epoch goes first, in order.
	var epochs []uint64
	for _, r := range agg.snapshot()[2:] {
		epochs = append(epochs, r.batch.BootEpoch)
	}
	if !slices.IsSorted(epochs) {
		t.Errorf("epochs of the batches after the restart %v, want old ones first", epochs)
	}
	// The metrics were reused on the same registry and went on counting.
	checkMetrics(t, reg, map[string]float64{"batches/success": 1 + 3 + 1, "events/delivered": 25, "batches/retry": 0})
}

func TestRunReturnsWhenSpoolCloses(t *testing.T) {
	sp := openSpool(t, "")
	agg := newAggregator(t, nil)
	f, err := New(Options{Spool: sp, URL: agg.url(), Token: testToken, EdgeID: testEdge, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(context.Background()) }()
	appendEvents(t, sp, "s0")
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := f.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, spool.ErrClosed) {
			t.Errorf("Run returned %v, want spool.ErrClosed", err)
		}
	case <-time.After(patience):
		t.Fatal("Run did not return after the spool was closed")
	}
}

func TestRunTwiceIsRefused(t *testing.T) {
	sp := openSpool(t, "")
	agg := newAggregator(t, nil)
	h := startForwarder(t, sp, agg.url(), nil, nil)
	// The first Run holds the flag from before it waits on the spool; make
	// sure it is in there by having it deliver something.
	appendEvents(t, sp, "w0")
	h.flush(t)
	if err := h.f.Run(context.Background()); err == nil {
		t.Fatal("second Run returned nil, want an error")
	}
}

func TestFlush(t *testing.T) {
	sp := openSpool(t, "")
	f, err := New(Options{Spool: sp, URL: "http://127.0.0.1:1", Token: testToken, EdgeID: testEdge, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := f.Flush(ctx); err != nil {
		t.Errorf("Flush of an empty spool: %v", err)
	}
	// Without Run nothing moves: Flush gives up with ctx.
	appendEvents(t, sp, "f0")
	short, cancelShort := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancelShort()
	if err := f.Flush(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Flush without Run returned %v, want a deadline error", err)
	}
}

func TestNewValidates(t *testing.T) {
	sp := openSpool(t, "")
	_, err := New(Options{URL: "ftp://x", BatchMaxEvents: -1, BackoffMin: time.Minute, BackoffMax: time.Second})
	if err == nil {
		t.Fatal("New accepted bad options")
	}
	for _, want := range []string{"Spool is nil", "URL", "scheme", "Token is empty", "EdgeID is empty",
		"BatchMaxEvents is negative", "BackoffMin (1m0s) exceeds BackoffMax (1s)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	f, err := New(Options{Spool: sp, URL: "http://agg:9090/", Token: "t", EdgeID: "e"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.endpoints, []string{"http://agg:9090/v1/ingest"}) || f.opts.BatchMaxEvents != DefaultBatchMaxEvents ||
		f.opts.BatchMaxBytes != DefaultBatchMaxBytes || f.opts.BatchMaxAge != DefaultBatchMaxAge ||
		f.opts.RequestTimeout != DefaultRequestTimeout || f.opts.BackoffMin != DefaultBackoffMin ||
		f.opts.BackoffMax != DefaultBackoffMax {
		t.Errorf("defaults not applied: endpoints %q, %+v", f.endpoints, f.opts)
	}
	f, err = New(Options{Spool: sp, URL: "http://a:9090, https://b:9443/base/", Token: "t", EdgeID: "e"})
	if err != nil || !slices.Equal(f.endpoints, []string{"http://a:9090/v1/ingest", "https://b:9443/base/v1/ingest"}) {
		t.Errorf("several URLs: %v, %v", f.endpoints, err)
	}
	for _, url := range []string{"http://a:9090,", "http://a:9090,http://a:9090", "http://a:9090,ftp://b"} {
		if _, err := New(Options{Spool: sp, URL: url, Token: "t", EdgeID: "e"}); err == nil {
			t.Errorf("URL %q accepted", url)
		}
	}
}

// TestFailover: with several aggregators, a batch that fails at one is
// sent to the next, which keeps getting batches while it answers; every
// event arrives once an aggregator takes it.
func TestFailover(t *testing.T) {
	sp := openSpool(t, "")
	down := newAggregator(t, func(int, *eventpb.Batch) reply { return reply{status: http.StatusServiceUnavailable} })
	up := newAggregator(t, nil)
	// An address nothing listens on: a connection error.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := "http://" + ln.Addr().String()
	ln.Close()
	reg := prometheus.NewRegistry()
	h := startForwarder(t, sp, gone+","+down.url()+","+up.url(), reg, func(o *Options) { o.BatchMaxEvents = 10 })
	appendEvents(t, sp, ids("a", 25)...)
	h.flush(t)
	appendEvents(t, sp, ids("b", 25)...)
	h.flush(t)
	checkDrained(t, sp, 0)
	if got, want := up.storedIDs(), append(ids("a", 25), ids("b", 25)...); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Fatalf("the healthy aggregator stored %d events, want %d", len(got), len(want))
	}
	if n := len(down.snapshot()); n != 1 {
		t.Errorf("the failing aggregator got %d batches, want 1: the forwarder stays on the one that answers", n)
	}
	if n := metric(t, reg, "edgetrack_forward_failovers_total"); n != 2 {
		t.Errorf("failovers_total = %v, want 2", n)
	}
}

// TestHammer appends from several goroutines while the aggregator fails now
// and then in different ways; every event must arrive and the spool drain.
func TestHammer(t *testing.T) {
	sp := openSpool(t, "")
	agg := newAggregator(t, func(call int, b *eventpb.Batch) reply {
		switch {
		case call%3 == 1:
			return reply{status: http.StatusServiceUnavailable}
		case call%5 == 2:
			return reply{hangUp: true}
		case call%7 == 3 && len(b.Events) > 1:
			return reply{status: http.StatusRequestEntityTooLarge}
		}
		return reply{}
	})
	h := startForwarder(t, sp, agg.url(), nil, func(o *Options) { o.BatchMaxEvents = 7 })

	const writers, perWriter = 4, 150
	var want []string
	errs := make(chan error, writers)
	for w := range writers {
		mine := ids(string(rune('A'+w)), perWriter)
		want = append(want, mine...)
		go func() {
			for i := 0; i < len(mine); i += 3 {
				var vs [][]byte
				for _, id := range mine[i:min(i+3, len(mine))] {
					v, err := proto.Marshal(&eventpb.Event{Id: id})
					if err != nil {
						errs <- err
						return
					}
					vs = append(vs, v)
				}
				if _, err := sp.Append(vs...); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	h.flush(t)
	slices.Sort(want)
	if got := agg.storedIDs(); !slices.Equal(got, want) {
		t.Errorf("stored %d ids, want %d", len(got), len(want))
	}
	checkDrained(t, sp, 0)
	checkMetrics(t, h.reg, map[string]float64{"events/delivered": writers * perWriter, "events/dead_lettered": 0})
}
