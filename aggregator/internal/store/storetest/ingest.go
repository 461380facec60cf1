package storetest

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/internal/storable"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

func testIngestGet(t *testing.T, open Open) {
	s := openEmpty(t, open)
	events := Dataset(50, 1)
	st := Ingest(t, s, events...)
	if st.Stored != 50 || st.Duplicates != 0 || len(st.Rejected) != 0 {
		t.Fatalf("stats = %+v, want 50 stored", st)
	}
	for _, want := range events {
		got, err := s.Get(context.Background(), want.GetId())
		if err != nil {
			t.Fatalf("get %q: %v", want.GetId(), err)
		}
		equalEvent(t, got, want)
	}
	for _, id := range []string{"", "nope", events[0].GetId() + "x", events[0].GetId()[:3]} {
		if _, err := s.Get(context.Background(), id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("get %q: err = %v, want ErrNotFound", id, err)
		}
	}
	if err := s.Ready(); err != nil {
		t.Errorf("ready: %v", err)
	}
}

func testIngestDuplicates(t *testing.T, open Open) {
	a, b, c, d := Event("a", 1, "s", "c", "n"), Event("b", 2, "s", "c", "n"), Event("c", 3, "s", "", ""), Event("d", 4, "", "", "n")
	changed := Event("a", 99, "other", "x", "y") // same id, other content: still a duplicate
	type call struct {
		events      []*eventpb.Event
		stored, dup int
	}
	tests := []struct {
		name  string
		calls []call
		want  []*eventpb.Event // what the store holds afterwards
	}{
		{"within one call", []call{{[]*eventpb.Event{a, b, a, a, b}, 2, 3}}, []*eventpb.Event{a, b}},
		{"across calls", []call{{[]*eventpb.Event{a, b}, 2, 0}, {[]*eventpb.Event{a, b}, 0, 2}, {[]*eventpb.Event{b}, 0, 1}}, []*eventpb.Event{a, b}},
		{"resent in another order", []call{{[]*eventpb.Event{a, b, c, d}, 4, 0}, {[]*eventpb.Event{d, c, b, a}, 0, 4}, {[]*eventpb.Event{c, a, d, b}, 0, 4}}, []*eventpb.Event{a, b, c, d}},
		{"partly new", []call{{[]*eventpb.Event{a, b}, 2, 0}, {[]*eventpb.Event{c, b, d, a, c}, 2, 3}}, []*eventpb.Event{a, b, c, d}},
		{"first copy wins", []call{{[]*eventpb.Event{a}, 1, 0}, {[]*eventpb.Event{changed}, 0, 1}}, []*eventpb.Event{a}},
		{"empty call", []call{{nil, 0, 0}, {[]*eventpb.Event{}, 0, 0}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openEmpty(t, open)
			for i, c := range tt.calls {
				st := Ingest(t, s, c.events...)
				if st.Stored != c.stored || st.Duplicates != c.dup || len(st.Rejected) != 0 {
					t.Fatalf("call %d: stats = %+v, want %d stored, %d duplicates", i, st, c.stored, c.dup)
				}
			}
			CheckStored(t, s, tt.want)
		})
	}
}

// testIngestConcurrent ingests overlapping id sets from many goroutines and
// checks that every id ends up stored exactly once.
func testIngestConcurrent(t *testing.T, open Open) {
	const (
		distinct   = 400
		goroutines = 12
		calls      = 40
		batch      = 60
	)
	s := openEmpty(t, open)
	all := Dataset(distinct, 7)
	var (
		wg              sync.WaitGroup
		mu              sync.Mutex
		stored, dup, in int
		seen            = map[string]bool{}
	)
	for g := range goroutines {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 99))
			for range calls {
				events := make([]*eventpb.Event, batch)
				for i := range events {
					events[i] = all[r.IntN(distinct)]
				}
				st, err := s.Ingest(context.Background(), events)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				stored += st.Stored
				dup += st.Duplicates
				in += len(events)
				for _, ev := range events {
					seen[ev.GetId()] = true
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if stored != len(seen) || stored+dup != in {
		t.Fatalf("stored %d, duplicates %d of %d sent with %d distinct ids", stored, dup, in, len(seen))
	}
	var sent []*eventpb.Event
	for _, ev := range all {
		if seen[ev.GetId()] {
			sent = append(sent, ev)
		}
	}
	CheckStored(t, s, sent)
	got, _ := ExportAll(t, s, store.ExportQuery{Limit: 1000})
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(IDs(sent)))) {
		t.Fatalf("the feed has %d entries, want each of the %d stored events once", len(got), len(sent))
	}
}

func testIngestRejections(t *testing.T, open Open) {
	long := strings.Repeat("x", store.MaxValueLen+1)
	full := strings.Repeat("x", store.MaxValueLen)
	longID, fullID := strings.Repeat("x", store.MaxIDLen+1), strings.Repeat("x", store.MaxIDLen)
	with := func(f func(*eventpb.Event)) *eventpb.Event {
		ev := Event("id", 1, "s", "c", "n")
		f(ev)
		return ev
	}
	tests := []struct {
		name   string
		ev     *eventpb.Event
		reason string // "" = stored
	}{
		{"nil event", nil, store.ReasonNilEvent},
		{"empty id", with(func(e *eventpb.Event) { e.Id = "" }), storable.ReasonEmptyID},
		{"id of MaxIDLen bytes", with(func(e *eventpb.Event) { e.Id = fullID }), ""},
		{"id over MaxIDLen bytes", with(func(e *eventpb.Event) { e.Id = longID }), storable.ReasonIDTooLong},
		{"NUL in id", with(func(e *eventpb.Event) { e.Id = "a\x00b" }), storable.ReasonIDNUL},
		{"session of MaxValueLen bytes", with(func(e *eventpb.Event) { e.Session = full }), ""},
		{"session over MaxValueLen bytes", with(func(e *eventpb.Event) { e.Session = long }), storable.ReasonSessionTooLong},
		{"NUL in session", with(func(e *eventpb.Event) { e.Session = "s\x00" }), storable.ReasonSessionNUL},
		{"category of MaxValueLen bytes", with(func(e *eventpb.Event) { e.Category = full }), ""},
		{"category over MaxValueLen bytes", with(func(e *eventpb.Event) { e.Category = long }), storable.ReasonCategoryTooLong},
		{"NUL in category", with(func(e *eventpb.Event) { e.Category = "\x00" }), storable.ReasonCategoryNUL},
		{"name of MaxValueLen bytes", with(func(e *eventpb.Event) { e.Name = full }), ""},
		{"name over MaxValueLen bytes", with(func(e *eventpb.Event) { e.Name = long }), storable.ReasonNameTooLong},
		{"NUL in name", with(func(e *eventpb.Event) { e.Name = "n\x00n" }), storable.ReasonNameNUL},
		{"invalid UTF-8", with(func(e *eventpb.Event) { e.Ip = "\xff" }), storable.ReasonIPUTF8},
		{"invalid UTF-8 in name", with(func(e *eventpb.Event) { e.Name = "n\xc3" }), storable.ReasonNameUTF8},
		{"NUL in data is fine", with(func(e *eventpb.Event) { e.Data = []byte{0, 0} }), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openEmpty(t, open)
			good := Event("good", 5, "s", "c", "n")
			st := Ingest(t, s, good, tt.ev, good)
			if tt.reason == "" {
				if st.Stored != 2 || st.Duplicates != 1 || len(st.Rejected) != 0 {
					t.Fatalf("stats = %+v, want 2 stored, 1 duplicate", st)
				}
				CheckStored(t, s, []*eventpb.Event{good, tt.ev})
				return
			}
			if st.Stored != 1 || st.Duplicates != 1 || len(st.Rejected) != 1 {
				t.Fatalf("stats = %+v, want 1 stored, 1 duplicate, 1 rejected", st)
			}
			rj := st.Rejected[0]
			if rj.Index != 1 || rj.ID != tt.ev.GetId() || !strings.HasPrefix(rj.Reason, tt.reason) {
				t.Errorf("rejection = %+v, want index 1, id %q, reason %q", rj, tt.ev.GetId(), tt.reason)
			}
			CheckStored(t, s, []*eventpb.Event{good})
		})
	}
}

func testIngestCanceled(t *testing.T, open Open) {
	s := openEmpty(t, open)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Ingest(ctx, []*eventpb.Event{Event("a", 1, "", "", "")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, err := s.Get(context.Background(), "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get after canceled ingest: %v, want ErrNotFound", err)
	}
	CheckStored(t, s, nil)
}

// testRestart checks that what Ingest acknowledged survives closing and
// reopening the store, and that the store goes on from there.
func testRestart(t *testing.T, open Open) {
	events := Dataset(300, 3)
	s, reopen := open(t)
	Ingest(t, s, events[:100]...)
	Ingest(t, s, events[100:200]...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = reopen()
	CheckStored(t, s, events[:200])
	Ingest(t, s, events[150:]...)
	CheckStored(t, s, events)
}

func testClosed(t *testing.T, open Open) {
	s := openEmpty(t, open)
	Ingest(t, s, Event("a", 1, "", "", ""))
	if err := s.Ready(); err != nil {
		t.Fatalf("ready: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	ctx := context.Background()
	_, ingestErr := s.Ingest(ctx, []*eventpb.Event{Event("b", 1, "", "", "")})
	_, getErr := s.Get(ctx, "a")
	_, queryErr := s.Query(ctx, store.Query{})
	_, countErr := s.Count(ctx, store.Query{})
	_, statsErr := s.Stats(ctx, store.StatsQuery{Bucket: store.Hour})
	_, exportErr := s.Export(ctx, store.ExportQuery{})
	_, prefixErr := s.IDPrefix(ctx, "a", 1)
	for name, err := range map[string]error{
		"ready": s.Ready(), "ingest": ingestErr, "get": getErr, "query": queryErr, "count": countErr,
		"stats": statsErr, "export": exportErr, "id prefix": prefixErr,
	} {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after close: %v, want ErrClosed", name, err)
		}
	}
}

func testIDPrefix(t *testing.T, open Open) {
	s := openEmpty(t, open)
	var events []*eventpb.Event
	for _, id := range []string{"cs:p1:a:u1", "cs:p1:b:u2", "cs:p1:a:u3", "cs:p2:a:u1", "cs:p1", "cs:p10:a:u4", "h:x", "cs;", "cr"} {
		events = append(events, Event(id, 1, "", "", ""))
	}
	Ingest(t, s, events...)
	ctx := context.Background()
	for _, tc := range []struct {
		prefix string
		limit  int
		want   []string
	}{
		{"cs:p1:", 0, []string{"cs:p1:a:u1", "cs:p1:a:u3", "cs:p1:b:u2"}},
		{"cs:p1:a:", 10, []string{"cs:p1:a:u1", "cs:p1:a:u3"}},
		{"cs:p1", store.MaxLimit + 1, []string{"cs:p1", "cs:p10:a:u4", "cs:p1:a:u1", "cs:p1:a:u3", "cs:p1:b:u2"}},
		{"cs:", 2, []string{"cs:p1", "cs:p10:a:u4"}},
		{"cs:p1:a:u1", -1, []string{"cs:p1:a:u1"}},
		{"cs:p3", 5, nil},
		{"\xff", 5, nil},
	} {
		got, err := s.IDPrefix(ctx, tc.prefix, tc.limit)
		if err != nil {
			t.Fatalf("prefix %q: %v", tc.prefix, err)
		}
		if !slices.Equal(IDs(got), tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("prefix %q limit %d: %q, want %q", tc.prefix, tc.limit, IDs(got), tc.want)
		}
		for _, ev := range got {
			if i := slices.IndexFunc(events, func(e *eventpb.Event) bool { return e.GetId() == ev.GetId() }); i >= 0 {
				equalEvent(t, ev, events[i])
			}
		}
	}
	if _, err := s.IDPrefix(ctx, "", 10); err == nil {
		t.Error("an empty prefix is accepted")
	}
}
