package clickhouse

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/aggregator/internal/store/storetest"
	"github.com/edgetrack/edgetrack/internal/dbtest"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// BenchmarkBig runs the queries of storetest.Big — those of store/pebble's
// BenchmarkBig, under the same names — on a database holding the same 10
// million events (-bigstore.events sets another size) on the ClickHouse
// server `make clickhouse` starts (it skips without one). The Pebble figures
// of the same run are the baseline; there is no full scan here. Run with
// e.g.
//
//	go test -run '^$' -bench Big -timeout 30m ./aggregator/internal/store/clickhouse/
//	go test -run '^$' -bench Big ./aggregator/internal/store/clickhouse/ -bigstore.events 1000000
//
// Each call builds its database (so -count N builds it N times) with
// bigLoad, outside the timed part, waits until the server has no merge of
// it running, and drops it at the end. Every result reports the store's
// size (events-in-store, store-MiB: the database's parts on disk).
//
// events is ordered by id, so Query and Count read columns of the whole
// table (see the package doc, Costs): their figures grow with the store,
// and a page of a filter that matches rows in most granules reads the
// bodies of those granules. Stats reads rollups only.
func BenchmarkBig(b *testing.B) {
	if testing.Short() {
		b.Skip("the big store takes minutes to build")
	}
	dsn := dbtest.ClickHouse(b)
	n := *storetest.BigEvents
	stores := make([]*Store, bigWriters)
	for i := range stores {
		stores[i] = openAt(b, dsn)
	}
	s := stores[0]
	began := time.Now()
	if err := bigLoad(stores, storetest.BigBatches(n), bigInsert); err != nil {
		b.Fatalf("big store: %v", err)
	}
	loaded := time.Since(began)
	if err := waitMerges(s); err != nil {
		b.Fatalf("big store: %v", err)
	}
	took := time.Since(began)
	var bytes, parts uint64
	if err := s.conn.QueryRow(context.Background(), "SELECT sum(bytes_on_disk), countIf(table = 'events') FROM system.parts WHERE active AND database = ?", s.db).
		Scan(&bytes, &parts); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("big store: %d events, %.1f GiB on disk, loaded in %v (%.0f events/s), merged in %v more (%d parts of events)\n",
		n, float64(bytes)/(1<<30), loaded.Round(time.Second), float64(n)/loaded.Seconds(), (took - loaded).Round(time.Second), parts)

	g := storetest.NewBig(s, n, float64(bytes)/(1<<20))
	b.Run("session-first-page/index", g.SessionFirstPage)
	b.Run("category-name-first-page/index", g.CategoryNameFirstPage)
	b.Run("page-1000/cursor", g.PageByCursor)
	b.Run("page-1000/offset", g.PageByOffset)
	b.Run("count/category-name", g.CountCategoryName)
	b.Run("count/all", g.CountAll)
	b.Run("stats-day-by-hour/rollups", g.StatsDayByHour)
}

const (
	// bigWriters stores insert at once, as as many aggregators on one
	// database would: one encodes its rows while the server writes the
	// other's.
	bigWriters = 2
	// bigInsert events go in one INSERT (one part): fewer, larger parts
	// than the edges' batches of 10,000 make, so the server merges less
	// while loading.
	bigInsert = 10 * storetest.BigBatch
)

// bigLoad stores the events of batches, whose ids must be new, through
// stores (Stores on one database), per at a time (or the rest), each INSERT the
// one Ingest makes (Store.insert, under the store's lock, with its sequence
// numbers and writer id). It skips Ingest's two look-ups of the ids, before
// and after the INSERT: events is ordered by id, and the ids of a call are
// spread over the key space, so each look-up reads most of the id column
// and costs more as the table grows. Through Ingest (two Stores, calls of
// 10,000 events) the 10 million events took 7 min 33 s on 2 cores, about
// 90,000 events/s for the first million and 15,000 for the last; this takes
// about 80 s. TestBigLoad checks that it stores the rows Ingest does.
func bigLoad(stores []*Store, batches <-chan []*eventpb.Event, per int) error {
	inserts := make(chan []*eventpb.Event)
	go func() {
		defer close(inserts)
		var events []*eventpb.Event
		for batch := range batches {
			if events = append(events, batch...); len(events) >= per {
				inserts <- events
				events = nil
			}
		}
		if len(events) > 0 {
			inserts <- events
		}
	}()
	errs := make([]error, len(stores))
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() {
			for events := range inserts {
				if errs[i] == nil {
					errs[i] = s.insertNoLookUp(events)
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// insertNoLookUp is Ingest of new, valid events without its look-ups.
func (s *Store) insertNoLookUp(events []*eventpb.Event) error {
	rows := make([]row, len(events))
	for i, ev := range events {
		body, err := marshal.Marshal(ev)
		if err != nil {
			return err
		}
		rows[i] = row{ev, body}
	}
	s.ingestMu.Lock()
	defer s.ingestMu.Unlock()
	seq := s.nextSeq()
	err := s.insert(context.Background(), rows, seq)
	s.inserted(seq, len(rows), nil)
	if err == nil {
		s.notifyStored()
	}
	return err
}

// waitMerges returns when the server runs no merge of s's tables, so that
// the queries do not share the machine with them.
func waitMerges(s *Store) error {
	for {
		var n uint64
		if err := s.conn.QueryRow(context.Background(), "SELECT count() FROM system.merges WHERE database = ?", s.db).Scan(&n); err != nil {
			return fmt.Errorf("read merges: %w", err)
		}
		if n == 0 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestBigLoad: bigLoad stores what Ingest stores — the same rows in events
// (but for seq and writer, which are each process's own) and the same
// rollups — for the first events of the big store, and its store answers
// as Ingest's does.
func TestBigLoad(t *testing.T) {
	t.Parallel()
	const n, per = 25_000, 20_000 // one full INSERT and a short one
	var events []*eventpb.Event
	for batch := range storetest.BigBatches(n) {
		events = append(events, batch...)
	}
	dsn := dbtest.ClickHouse(t)
	loaded := []*Store{openAt(t, dsn), openAt(t, dsn)}
	ch := make(chan []*eventpb.Event, len(events)/storetest.BigBatch+1)
	for i := 0; i < n; i += storetest.BigBatch {
		ch <- events[i:min(i+storetest.BigBatch, n)]
	}
	close(ch)
	if err := bigLoad(loaded, ch, per); err != nil {
		t.Fatal(err)
	}
	ingested := openAt(t, dbtest.ClickHouse(t))
	for i := 0; i < n; i += storetest.BigBatch {
		if st := storetest.Ingest(t, ingested, events[i:min(i+storetest.BigBatch, n)]...); st.Stored != min(storetest.BigBatch, n-i) {
			t.Fatalf("ingest: %+v", st)
		}
	}

	// Each row as one string: every column of events but seq and writer,
	// (width, bucket, category, name, count) of rollups.
	for _, q := range []string{
		"SELECT concat(id, ' ', toString(event_time), ' ', session, ' ', category, ' ', name, ' ', hex(body), ' ', " +
			"user_id, ' ', device_id, ' ', toString(subjects)) FROM {db}.events ORDER BY id",
		"SELECT concat(toString(width), ' ', toString(bucket), ' ', category, ' ', name, ' ', toString(sum(events))) AS r " +
			"FROM {db}.rollups GROUP BY width, bucket, category, name ORDER BY r",
	} {
		got, want := dump(t, loaded[0], q), dump(t, ingested, q)
		if len(got) != len(want) {
			t.Fatalf("%s: %d rows, Ingest stores %d", q, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: row %d is\n%s\nIngest stores\n%s", q, i, got[i], want[i])
			}
		}
	}
	ctx := context.Background()
	for i := 0; i < n; i += 499 {
		got, err := loaded[1].Get(ctx, events[i].GetId())
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, events[i]) {
			t.Fatalf("get %s:\n got %v\nwant %v", events[i].GetId(), got, events[i])
		}
	}
	c, nm := storetest.CatName(3)
	for _, q := range []store.Query{{Session: events[n/2].GetSession()}, {Category: c, Name: nm, Limit: 97}} {
		if got, want := storetest.QueryAll(t, loaded[1], q), storetest.QueryAll(t, ingested, q); !slices.Equal(got, want) {
			t.Fatalf("query %+v: %d ids, Ingest's store answers %d", q, len(got), len(want))
		}
	}
}

// dump returns the rows of q, whose one column is a string, with {db} for
// s's database.
func dump(t *testing.T, s *Store, q string) []string {
	t.Helper()
	rows, err := s.conn.Query(context.Background(), s.layout.fill(q))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
