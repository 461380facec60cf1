package pebble

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"testing"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/aggregator/internal/store/storetest"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// TestStore runs the conformance suite on stores in directories on disk.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (store.Store, func() store.Store) {
		dir := t.TempDir()
		return openAt(t, Options{Dir: dir}), func() store.Store { return openAt(t, Options{Dir: dir}) }
	})
}

// openMem opens a store on an in-memory filesystem, closed at the end of the
// test.
func openMem(tb testing.TB) *Store {
	tb.Helper()
	return openAt(tb, Options{Dir: "db", FS: vfs.NewMem()})
}

func openAt(tb testing.TB, opts Options) *Store {
	tb.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	s, err := Open(opts)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

var quiet = slog.New(slog.DiscardHandler)

// countKeys counts the keys in each keyspace of s.
func countKeys(tb testing.TB, s *Store) map[byte]int {
	tb.Helper()
	it, err := s.db.NewIter(nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer it.Close()
	n := map[byte]int{}
	for valid := it.First(); valid; valid = it.Next() {
		n[it.Key()[0]]++
	}
	if err := it.Error(); err != nil {
		tb.Fatal(err)
	}
	return n
}

// wantKeys is what countKeys must return for a store holding events.
func wantKeys(events []*eventpb.Event) map[byte]int {
	n := map[byte]int{ksMeta: 2} // layout version, store id
	cells := rollupDeltas{}
	for _, ev := range events {
		cells.add(ev)
		n[ksEvent]++
		n[ksFeed]++
		n[ksTime]++
		if ev.GetSession() != "" {
			n[ksSession]++
		}
		if ev.GetCategory() != "" && ev.GetName() != "" {
			n[ksCatName]++
		}
		if ev.GetCategory() != "" {
			n[ksCategory]++
		}
		if ev.GetName() != "" {
			n[ksName]++
		}
	}
	if len(cells) > 0 {
		n[ksRollup] = len(cells)
	}
	return n
}

// rawSet writes a key directly, to build states that Ingest never makes.
func rawSet(tb testing.TB, s *Store, key, value []byte) {
	tb.Helper()
	if err := s.db.Set(key, value, pebbledb.Sync); err != nil {
		tb.Fatal(err)
	}
}

// TestKeysPerKeyspace checks the key layout's bookkeeping: each stored event
// has its primary key, feed entry and index entries once, and duplicates and
// rejected events write nothing.
func TestKeysPerKeyspace(t *testing.T) {
	events := storetest.Dataset(300, 1)
	t.Run("one call", func(t *testing.T) {
		s := openMem(t)
		storetest.Ingest(t, s, events...)
		if got, want := countKeys(t, s), wantKeys(events); !maps.Equal(got, want) {
			t.Errorf("keys per keyspace = %v, want %v", got, want)
		}
	})
	t.Run("duplicates and rejections", func(t *testing.T) {
		s := openMem(t)
		bad := storetest.Event("bad", 1, "s", "c", "n\x00")
		storetest.Ingest(t, s, events[0], events[1], events[0], nil, bad)
		storetest.Ingest(t, s, events[1], events[2], events[2], events[0])
		if got, want := countKeys(t, s), wantKeys(events[:3]); !maps.Equal(got, want) {
			t.Errorf("keys per keyspace = %v, want %v", got, want)
		}
	})
	t.Run("concurrent calls", func(t *testing.T) {
		s := openMem(t)
		var wg sync.WaitGroup
		for g := range 6 {
			wg.Go(func() {
				for i := g; i < len(events); i += 20 {
					if _, err := s.Ingest(context.Background(), events[i:min(i+60, len(events))]); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if got, want := countKeys(t, s), wantKeys(events); !maps.Equal(got, want) {
			t.Errorf("keys per keyspace = %v, want %v", got, want)
		}
	})
	t.Run("empty store", func(t *testing.T) {
		if got, want := countKeys(t, openMem(t)), wantKeys(nil); !maps.Equal(got, want) {
			t.Errorf("keys per keyspace = %v, want %v", got, want)
		}
	})
}

// TestCrash checks that what Ingest acknowledged survives a crash that loses
// every unsynced write.
func TestCrash(t *testing.T) {
	events := storetest.Dataset(300, 3)
	fs := vfs.NewCrashableMem()
	s := openAt(t, Options{Dir: "db", FS: fs})
	storetest.Ingest(t, s, events[:100]...)
	storetest.Ingest(t, s, events[100:]...)
	// The clone holds exactly what was synced; s is never closed before.
	crashed := openAt(t, Options{Dir: "db", FS: fs.CrashClone(vfs.CrashCloneCfg{})})
	storetest.CheckStored(t, crashed, events)
	if got, _ := storetest.ExportAll(t, crashed, store.ExportQuery{Limit: 1000}); len(got) != len(events) {
		t.Fatalf("the feed after a crash has %d events, want %d", len(got), len(events))
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	fs := vfs.NewMem()
	s := openAt(t, Options{Dir: "db", FS: fs, Registerer: reg})
	storetest.Ingest(t, s, storetest.Event("a", 1, "", "", ""), storetest.Event("b", 1, "", "", ""), storetest.Event("a", 1, "", "", ""), nil)
	s.Close()
	// Reopening with the same registry keeps counting.
	s = openAt(t, Options{Dir: "db", FS: fs, Registerer: reg})
	storetest.Ingest(t, s, storetest.Event("b", 1, "", "", ""), storetest.Event("c", 1, "", "", ""))

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
