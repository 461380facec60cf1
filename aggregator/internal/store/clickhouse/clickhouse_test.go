package clickhouse

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/aggregator/internal/store/storetest"
	"github.com/edgetrack/edgetrack/internal/dbtest"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// TestStore runs the conformance suite, each store on a database of its
// own on the local ClickHouse server, several at once: the calls mostly
// wait on the server.
func TestStore(t *testing.T) {
	dbtest.ClickHouseAddr(t) // skips the suite at once without a server
	t.Parallel()             // beside TestClusterStore
	storetest.RunParallel(t, func(t *testing.T) (store.Store, func() store.Store) {
		dsn := dbtest.ClickHouse(t)
		return openAt(t, dsn), func() store.Store { return openAt(t, dsn) }
	})
}

var quiet = slog.New(slog.DiscardHandler)

func openAt(tb testing.TB, dsn string) *Store {
	tb.Helper()
	s, err := Open(context.Background(), Options{DSN: dsn, Logger: quiet})
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// slipThrough inserts events into s as a racing aggregator does whose
// look-up ran before another's insert landed: without looking for them
// first.
func slipThrough(tb testing.TB, s *Store, events ...*eventpb.Event) []string {
	tb.Helper()
	rows := make([]row, len(events))
	ids := make([]string, len(events))
	for i, ev := range events {
		body, err := marshal.Marshal(ev)
		if err != nil {
			tb.Fatal(err)
		}
		rows[i], ids[i] = row{ev, body}, ev.GetId()
	}
	s.ingestMu.Lock()
	defer s.ingestMu.Unlock()
	seq := s.nextSeq()
	if err := s.insert(context.Background(), rows, seq); err != nil {
		tb.Fatal(err)
	}
	s.inserted(seq, len(rows), nil)
	return ids
}

func rowCount(tb testing.TB, s *Store, table string) uint64 {
	tb.Helper()
	var n uint64
	if err := s.conn.QueryRow(context.Background(), "SELECT count() FROM "+s.table(table)).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// TestRacingAggregators: two stores on one database (two aggregators)
// insert the same events, as when both pass the look-up before either
// inserts. Every read of either store keeps one copy of each, Stats counts
// each once, and the store whose copy is not canonical reports a
// duplicate — whether it finds the race right after its insert, or, having
// stopped before it could, the events' resend does.
func TestRacingAggregators(t *testing.T) {
	for _, tc := range []struct {
		name  string
		found func(t *testing.T, a, b *Store, ids []string)
	}{
		{"found after the insert", func(t *testing.T, a, b *Store, ids []string) {
			lost, err := b.checkRaces(context.Background(), ids)
			if err != nil || lost != len(ids) {
				t.Fatalf("checkRaces = %d, %v; want %d lost", lost, err, len(ids))
			}
		}},
		{"found by the resend", func(t *testing.T, a, b *Store, ids []string) {
			// b stopped after its insert; the edge sends the events
			// again, to a.
			events := storetest.Spread(300, 41)[:len(ids)]
			if st := storetest.Ingest(t, a, events...); st.Duplicates != len(ids) {
				t.Fatalf("resend: %+v, want all duplicates", st)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := dbtest.ClickHouse(t)
			a, b := openAt(t, dsn), openAt(t, dsn)
			events := storetest.Spread(300, 41)
			storetest.Ingest(t, a, events...)
			ids := slipThrough(t, b, events[:50]...)
			if n := rowCount(t, a, "events"); n != uint64(len(events)+50) {
				t.Fatalf("%d rows, want %d: the copies were not inserted", n, len(events)+50)
			}
			// Before the race is found, rows and counts are already
			// exact (Stats is not: it needs the record).
			for _, s := range []*Store{a, b} {
				if n, err := s.Count(context.Background(), store.Query{}); err != nil || n != len(events) {
					t.Fatalf("count before the record = %d, %v; want %d", n, err, len(events))
				}
			}
			tc.found(t, a, b, ids)
			if n := rowCount(t, a, "duplicates"); n == 0 {
				t.Fatal("the race was not recorded")
			}
			for _, s := range []*Store{a, b} {
				storetest.CheckStored(t, s, events)
				got, _ := storetest.ExportAll(t, s, store.ExportQuery{Limit: 7})
				if len(got) != len(events) {
					t.Fatalf("the feed has %d events, want %d", len(got), len(events))
				}
				evs, err := s.IDPrefix(context.Background(), "e000", 0)
				if err != nil || len(evs) != 100 {
					t.Fatalf("id prefix: %d events, %v; want 100", len(evs), err)
				}
			}
		})
	}
}

// TestTwoStoresConcurrently ingests overlapping batches through two stores
// on one database at once; whatever races happen, both answer as if each
// event had arrived once, and a feed cursor of one is valid at the other.
func TestTwoStoresConcurrently(t *testing.T) {
	dsn := dbtest.ClickHouse(t)
	stores := []*Store{openAt(t, dsn), openAt(t, dsn)}
	// A reader follows the feed through one of them meanwhile.
	var feed []string
	cursor := ""
	follow := func() {
		got, next := storetest.ExportAll(t, stores[0], store.ExportQuery{After: cursor, Limit: 50})
		feed, cursor = append(feed, got...), next
	}
	done := make(chan struct{})
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		for {
			select {
			case <-done:
				return
			default:
				follow()
			}
		}
	}()
	want, stored := ingestOverlapping(t, stores, storetest.Spread(400, 51), 6, 20)
	close(done)
	<-followed
	for _, s := range stores {
		storetest.CheckStored(t, s, want)
	}
	if stored < int64(len(want)) {
		t.Fatalf("%d reported stored, %d are", stored, len(want))
	}
	// It gets every event once: none was stored behind its cursor.
	for deadline := time.Now().Add(30 * time.Second); len(feed) < len(want) && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		follow()
	}
	if got, ids := slices.Sorted(slices.Values(feed)), slices.Sorted(slices.Values(storetest.IDs(want))); !slices.Equal(got, ids) {
		t.Fatalf("the feed followed during ingest has %d events, want the %d stored once each", len(got), len(ids))
	}
	// A feed cursor names the database, not the process.
	_, end := storetest.ExportAll(t, stores[0], store.ExportQuery{Limit: 100})
	if got, _ := storetest.ExportAll(t, stores[1], store.ExportQuery{After: end}); len(got) != 0 {
		t.Fatalf("the other store continues the feed with %d events, want none", len(got))
	}
}

// ingestOverlapping has senders goroutines, sender g through stores[g %
// len(stores)], each ingest rounds overlapping slices of events at once. It
// returns the events given, each once, in the order first given, and how
// many the calls reported stored.
func ingestOverlapping(t *testing.T, stores []*Store, events []*eventpb.Event, senders, rounds int) (want []*eventpb.Event, stored int64) {
	t.Helper()
	slice := func(g, i int) []*eventpb.Event {
		from := (g*53 + i*29) % len(events)
		return events[from:min(from+60, len(events))]
	}
	var wg sync.WaitGroup
	var n atomic.Int64
	for g := range senders {
		wg.Go(func() {
			s := stores[g%len(stores)]
			for i := range rounds {
				st, err := s.Ingest(context.Background(), slice(g, i))
				if err != nil {
					t.Error(err)
					return
				}
				n.Add(int64(st.Stored))
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for g := range senders {
		for i := range rounds {
			for _, ev := range slice(g, i) {
				if !seen[ev.GetId()] {
					seen[ev.GetId()] = true
					want = append(want, ev)
				}
			}
		}
	}
	return want, n.Load()
}

// TestSchemaVersion: a new database records each version up to the
// current one once; reopening it migrates nothing; a later version is
// refused.
func TestSchemaVersion(t *testing.T) {
	dsn := dbtest.ClickHouse(t)
	s := openAt(t, dsn)
	s.Close()
	s = openAt(t, dsn)
	if n := rowCount(t, s, "schema_version"); n != schemaVersion {
		t.Fatalf("%d schema versions recorded, want %d", n, schemaVersion)
	}
	b, err := s.conn.PrepareBatch(context.Background(), "INSERT INTO "+s.table("schema_version")+" (version, applied_at)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(uint32(schemaVersion+1), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), Options{DSN: dsn, Logger: quiet}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("open of a later schema: %v, want a refusal", err)
	}
}

func TestParseDSN(t *testing.T) {
	for _, tc := range []struct {
		dsn, db, err string
	}{
		{"clickhouse://127.0.0.1:9000/analytics", "analytics", ""},
		{"clickhouse://127.0.0.1:9000", DefaultDatabase, ""},
		{"clickhouse://u:p@127.0.0.1:9000/x_1?dial_timeout=2s", "x_1", ""},
		{"http://127.0.0.1:8123/x", "", "want clickhouse://"},
		{"clickhouse://127.0.0.1:9000/bad-name", "", "database name"},
		{"clickhouse://127.0.0.1:9000/x?dial_timeout=soon", "", "dial timeout"},
	} {
		_, db, err := ParseDSN(tc.dsn)
		if tc.err == "" && (err != nil || db != tc.db) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: %q, %v; want %q, error %q", tc.dsn, db, err, tc.db, tc.err)
		}
	}
}

// TestMetrics: the counters of store/pebble, under the same names.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := Open(context.Background(), Options{DSN: dbtest.ClickHouse(t), Logger: quiet, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.Ingest(t, s, storetest.Event("a", 1, "s", "c", "n"), storetest.Event("b", 2, "s", "c", "n"), storetest.Event("a", 1, "s", "c", "n"), nil)
	want := `
# HELP edgetrack_store_events_duplicate_total Events given to Ingest whose id was already stored.
# TYPE edgetrack_store_events_duplicate_total counter
edgetrack_store_events_duplicate_total 1
# HELP edgetrack_store_events_rejected_total Events given to Ingest that can never be stored.
# TYPE edgetrack_store_events_rejected_total counter
edgetrack_store_events_rejected_total 1
# HELP edgetrack_store_events_stored_total Events newly stored by Ingest.
# TYPE edgetrack_store_events_stored_total counter
edgetrack_store_events_stored_total 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "edgetrack_store_events_stored_total",
		"edgetrack_store_events_duplicate_total", "edgetrack_store_events_rejected_total"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "edgetrack_store_ingest_seconds"); err != nil || n != 1 {
		t.Fatalf("ingest_seconds: %d series, %v", n, err)
	}
}
