package pebble

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/internal/storable"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

func TestIngestGet(t *testing.T) {
	s := openMem(t)
	events := dataset(50, 1)
	st := ingest(t, s, events...)
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
	if got, want := countKeys(t, s), wantKeys(events); !maps.Equal(got, want) {
		t.Errorf("keys per keyspace = %v, want %v", got, want)
	}
}

func TestIngestDuplicates(t *testing.T) {
	a, b, c, d := event("a", 1, "s", "c", "n"), event("b", 2, "s", "c", "n"), event("c", 3, "s", "", ""), event("d", 4, "", "", "n")
	changed := event("a", 99, "other", "x", "y") // same id, other content: still a duplicate
	type call struct {
		events      []*eventpb.Event
		stored, dup int
	}
	tests := []struct {
		name  string
		calls []call
		want  []*eventpb.Event // what Get returns afterwards
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
			s := openMem(t)
			for i, c := range tt.calls {
				st := ingest(t, s, c.events...)
				if st.Stored != c.stored || st.Duplicates != c.dup || len(st.Rejected) != 0 {
					t.Fatalf("call %d: stats = %+v, want %d stored, %d duplicates", i, st, c.stored, c.dup)
				}
			}
			for _, want := range tt.want {
				got, err := s.Get(context.Background(), want.GetId())
				if err != nil {
					t.Fatal(err)
				}
				equalEvent(t, got, want)
			}
			if got, want := countKeys(t, s), wantKeys(tt.want); !maps.Equal(got, want) {
				t.Errorf("keys per keyspace = %v, want %v", got, want)
			}
		})
	}
}

// TestIngestHammer ingests overlapping id sets from many goroutines and
// checks that every id ends up stored exactly once, with its index entries
// once each.
func TestIngestHammer(t *testing.T) {
	const (
		ids        = 400
		goroutines = 12
		calls      = 40
		batch      = 60
	)
	s := openMem(t)
	all := dataset(ids, 7)
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
					events[i] = all[r.IntN(ids)]
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
	if got, want := countKeys(t, s), wantKeys(sent); !maps.Equal(got, want) {
		t.Errorf("keys per keyspace = %v, want %v", got, want)
	}
	got := queryAll(t, s, store.Query{Limit: 37})
	if want := reference(sent, store.Query{}); !slices.Equal(got, want) {
		t.Errorf("query of everything returned %d ids, want %d", len(got), len(want))
	}
}

func TestIngestRejections(t *testing.T) {
	long := strings.Repeat("x", 257)
	full := strings.Repeat("x", 256)
	with := func(f func(*eventpb.Event)) *eventpb.Event {
		ev := event("id", 1, "s", "c", "n")
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
		{"id of 256 bytes", with(func(e *eventpb.Event) { e.Id = full }), ""},
		{"id of 257 bytes", with(func(e *eventpb.Event) { e.Id = long }), storable.ReasonIDTooLong},
		{"NUL in id", with(func(e *eventpb.Event) { e.Id = "a\x00b" }), storable.ReasonIDNUL},
		{"session of 256 bytes", with(func(e *eventpb.Event) { e.Session = full }), ""},
		{"session of 257 bytes", with(func(e *eventpb.Event) { e.Session = long }), storable.ReasonSessionTooLong},
		{"NUL in session", with(func(e *eventpb.Event) { e.Session = "s\x00" }), storable.ReasonSessionNUL},
		{"category of 256 bytes", with(func(e *eventpb.Event) { e.Category = full }), ""},
		{"category of 257 bytes", with(func(e *eventpb.Event) { e.Category = long }), storable.ReasonCategoryTooLong},
		{"NUL in category", with(func(e *eventpb.Event) { e.Category = "\x00" }), storable.ReasonCategoryNUL},
		{"name of 256 bytes", with(func(e *eventpb.Event) { e.Name = full }), ""},
		{"name of 257 bytes", with(func(e *eventpb.Event) { e.Name = long }), storable.ReasonNameTooLong},
		{"NUL in name", with(func(e *eventpb.Event) { e.Name = "n\x00n" }), storable.ReasonNameNUL},
		{"invalid UTF-8", with(func(e *eventpb.Event) { e.Ip = "\xff" }), storable.ReasonIPUTF8},
		{"invalid UTF-8 in name", with(func(e *eventpb.Event) { e.Name = "n\xc3" }), storable.ReasonNameUTF8},
		{"NUL in data is fine", with(func(e *eventpb.Event) { e.Data = []byte{0, 0} }), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openMem(t)
			good := event("good", 5, "s", "c", "n")
			st := ingest(t, s, good, tt.ev, good)
			if tt.reason == "" {
				if st.Stored != 2 || st.Duplicates != 1 || len(st.Rejected) != 0 {
					t.Fatalf("stats = %+v, want 2 stored, 1 duplicate", st)
				}
				got, err := s.Get(context.Background(), tt.ev.GetId())
				if err != nil {
					t.Fatal(err)
				}
				equalEvent(t, got, tt.ev)
				return
			}
			if st.Stored != 1 || st.Duplicates != 1 || len(st.Rejected) != 1 {
				t.Fatalf("stats = %+v, want 1 stored, 1 duplicate, 1 rejected", st)
			}
			rj := st.Rejected[0]
			if rj.Index != 1 || rj.ID != tt.ev.GetId() || !strings.HasPrefix(rj.Reason, tt.reason) {
				t.Errorf("rejection = %+v, want index 1, id %q, reason %q", rj, tt.ev.GetId(), tt.reason)
			}
			if got, want := countKeys(t, s), wantKeys([]*eventpb.Event{good}); !maps.Equal(got, want) {
				t.Errorf("keys per keyspace = %v, want %v", got, want)
			}
		})
	}
}

func TestIngestCanceled(t *testing.T) {
	s := openMem(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Ingest(ctx, []*eventpb.Event{event("a", 1, "", "", "")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, err := s.Get(context.Background(), "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get after canceled ingest: %v, want ErrNotFound", err)
	}
}

// TestDurable checks that what Ingest acknowledged survives a clean reopen
// and a crash that loses every unsynced write.
func TestDurable(t *testing.T) {
	events := dataset(300, 3)
	check := func(t *testing.T, s store.Store) {
		t.Helper()
		for _, want := range events {
			got, err := s.Get(context.Background(), want.GetId())
			if err != nil {
				t.Fatalf("get %q: %v", want.GetId(), err)
			}
			equalEvent(t, got, want)
		}
		q := store.Query{Session: "s1", Limit: 9}
		if got, want := queryAll(t, s, q), reference(events, q); !slices.Equal(got, want) {
			t.Fatalf("query after reopen: %d ids, want %d", len(got), len(want))
		}
		checkStats(t, s, events, [][2]time.Time{{}})
		if st := ingest(t, s, events...); st.Stored != 0 || st.Duplicates != len(events) {
			t.Fatalf("re-ingest after reopen: %+v, want all duplicates", st)
		}
		checkStats(t, s, events, [][2]time.Time{{}})
	}
	t.Run("close and reopen", func(t *testing.T) {
		dir := t.TempDir()
		s, err := Open(Options{Dir: dir, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		ingest(t, s, events[:100]...)
		ingest(t, s, events[100:]...)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		check(t, openAt(t, Options{Dir: dir}))
	})
	t.Run("crash", func(t *testing.T) {
		fs := vfs.NewCrashableMem()
		s := openAt(t, Options{Dir: "db", FS: fs})
		ingest(t, s, events[:100]...)
		ingest(t, s, events[100:]...)
		// The clone holds exactly what was synced; s is never closed before.
		check(t, openAt(t, Options{Dir: "db", FS: fs.CrashClone(vfs.CrashCloneCfg{})}))
	})
}

func TestClosed(t *testing.T) {
	s, err := Open(Options{Dir: "db", FS: vfs.NewMem(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
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
	_, ingestErr := s.Ingest(ctx, []*eventpb.Event{event("a", 1, "", "", "")})
	_, getErr := s.Get(ctx, "a")
	_, queryErr := s.Query(ctx, store.Query{})
	_, countErr := s.Count(ctx, store.Query{})
	_, statsErr := s.Stats(ctx, store.StatsQuery{Bucket: store.Hour})
	for name, err := range map[string]error{
		"ready": s.Ready(), "ingest": ingestErr, "get": getErr, "query": queryErr, "count": countErr, "stats": statsErr,
	} {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after close: %v, want ErrClosed", name, err)
		}
	}
}

func TestLayoutVersion(t *testing.T) {
	fs := vfs.NewMem()
	s := openAt(t, Options{Dir: "db", FS: fs})
	rawSet(t, s, []byte(layoutKey), []byte("99"))
	s.Close()
	if _, err := Open(Options{Dir: "db", FS: fs, Logger: quiet}); err == nil || !strings.Contains(err.Error(), "layout") {
		t.Fatalf("open with unknown layout: err = %v", err)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	fs := vfs.NewMem()
	s := openAt(t, Options{Dir: "db", FS: fs, Registerer: reg})
	ingest(t, s, event("a", 1, "", "", ""), event("b", 1, "", "", ""), event("a", 1, "", "", ""), nil)
	s.Close()
	// Reopening with the same registry keeps counting.
	s = openAt(t, Options{Dir: "db", FS: fs, Registerer: reg})
	ingest(t, s, event("b", 1, "", "", ""), event("c", 1, "", "", ""))

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				got[f.GetName()] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				got[f.GetName()] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	want := map[string]float64{
		"edgetrack_store_events_stored_total":    3,
		"edgetrack_store_events_duplicate_total": 2,
		"edgetrack_store_events_rejected_total":  1,
		"edgetrack_store_ingest_seconds":         2,
	}
	if !maps.Equal(got, want) {
		t.Errorf("metrics = %v, want %v", got, want)
	}
}
