package pebble

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/aggregator/internal/store/storetest"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// Run with e.g.
//
//	go test -run '^$' -bench 'Ingest' -benchtime 20x ./aggregator/internal/store/pebble/
//	go test -run '^$' -bench 'Query' -benchtime 2000x ./aggregator/internal/store/pebble/

const (
	benchBatch    = 1000
	benchSessions = 300
)

// benchEvents makes n realistic events numbered from first: about 300 bytes
// of JSON data, benchSessions sessions, a handful of categories and names,
// client times a millisecond apart with jitter, some without client time.
func benchEvents(first, n int, r *rand.Rand) []*eventpb.Event {
	const t0 = 1_760_000_000_000_000_000
	events := make([]*eventpb.Event, n)
	for i := range events {
		nr := first + i
		session := fmt.Sprintf("%016x", uint64(nr%benchSessions)*0x9e3779b97f4a7c15)
		events[i] = storetest.BenchEvent(fmt.Sprintf("h:%s:%d", session, nr/benchSessions), session,
			int64(t0+nr*1e6+r.IntN(5e6)), r)
	}
	return events
}

func benchBatches(n int) [][]*eventpb.Event {
	r := rand.New(rand.NewPCG(1, 2))
	batches := make([][]*eventpb.Event, n)
	for i := range batches {
		batches[i] = benchEvents(i*benchBatch, benchBatch, r)
	}
	return batches
}

// BenchmarkIngest stores batches of new events through store.Store.Ingest: checks,
// duplicate lookups, primary key and index entries, one synced commit.
func BenchmarkIngest(b *testing.B) {
	batches := benchBatches(b.N)
	s := openAt(b, Options{Dir: b.TempDir()})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		st, err := s.Ingest(ctx, batches[i])
		if err != nil {
			b.Fatal(err)
		}
		if st.Stored != benchBatch {
			b.Fatalf("stored %d of %d", st.Stored, benchBatch)
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkIngestBaseline writes the same events as BenchmarkIngest with the
// least Pebble allows: marshal, one key per id, one synced batch; no indexes,
// no duplicate check. It uses the store's Pebble options, so that
// BenchmarkIngest / this is the cost of the store's work, not of tuning.
func BenchmarkIngestBaseline(b *testing.B) {
	batches := benchBatches(b.N)
	db, err := pebbledb.Open(b.TempDir(), pebbleOptions(nil, quiet, DefaultCacheSize))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	b.ReportAllocs()
	b.ResetTimer()
	var key []byte
	for i := range b.N {
		batch := db.NewBatch()
		for _, ev := range batches[i] {
			val, err := marshal.Marshal(ev)
			if err != nil {
				b.Fatal(err)
			}
			key = eventKey(key[:0], ev.GetId())
			if err := batch.Set(key, val, nil); err != nil {
				b.Fatal(err)
			}
		}
		if err := batch.Commit(pebbledb.Sync); err != nil {
			b.Fatal(err)
		}
		batch.Close()
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkIngestDuplicates resends batches that are already stored: the
// cost of an edge retrying after a lost acknowledgement.
func BenchmarkIngestDuplicates(b *testing.B) {
	const distinct = 20
	batches := benchBatches(distinct)
	s := openAt(b, Options{Dir: b.TempDir()})
	ctx := context.Background()
	for _, batch := range batches {
		if _, err := s.Ingest(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		st, err := s.Ingest(ctx, batches[i%distinct])
		if err != nil {
			b.Fatal(err)
		}
		if st.Duplicates != benchBatch {
			b.Fatalf("%d duplicates of %d", st.Duplicates, benchBatch)
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "events/s")
}

// queryFixture is a store of queryFixtureEvents events on disk, built once
// for all query benchmarks and removed by TestMain.
var queryFixture struct {
	once sync.Once
	dir  string
	s    *Store
	err  error
}

const queryFixtureEvents = 200_000

func openQueryFixture(b *testing.B) *Store {
	b.Helper()
	f := &queryFixture
	f.once.Do(func() {
		if f.dir, f.err = os.MkdirTemp("", "store-bench-"); f.err != nil {
			return
		}
		if f.s, f.err = Open(Options{Dir: f.dir, Logger: quiet}); f.err != nil {
			return
		}
		r := rand.New(rand.NewPCG(3, 4))
		for i := 0; i < queryFixtureEvents && f.err == nil; i += benchBatch {
			_, f.err = f.s.Ingest(context.Background(), benchEvents(i, benchBatch, r))
		}
	})
	if f.err != nil {
		b.Fatalf("query fixture: %v", f.err)
	}
	return f.s
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, f := range []*struct {
		dir string
		s   *Store
	}{{queryFixture.dir, queryFixture.s}, {bigFixture.dir, bigFixture.s}} {
		if f.s != nil {
			f.s.Close()
		}
		if f.dir != "" {
			os.RemoveAll(f.dir)
		}
	}
	os.Exit(code)
}

// BenchmarkQuerySession reads the first page (10 events) of a session, of a
// session narrowed by category (checked while scanning), and a page deep into
// a session through a cursor, on a store of 200k events. Older events cost
// more to read than recent ones, which are mostly still in the memtable.
func BenchmarkQuerySession(b *testing.B) {
	s := openQueryFixture(b)
	ctx := context.Background()
	sessions := make([]string, benchSessions)
	for i := range sessions {
		sessions[i] = fmt.Sprintf("%016x", uint64(i)*0x9e3779b97f4a7c15)
	}
	// Cursors to page 40 of each session, and the event time that page
	// starts at.
	deep := make([]string, len(sessions))
	deepEnd := make([]time.Time, len(sessions))
	for i, session := range sessions {
		q := store.Query{Session: session}
		for range 39 {
			res, err := s.Query(ctx, q)
			if err != nil || res.Next == "" {
				b.Fatalf("paging session %s: %v", session, err)
			}
			q.Cursor = res.Next
		}
		deep[i] = q.Cursor
		res, err := s.Query(ctx, q)
		if err != nil || len(res.Events) == 0 {
			b.Fatalf("page 40 of session %s: %v", session, err)
		}
		deepEnd[i] = time.Unix(0, store.EventTime(res.Events[0])+1)
	}
	for _, bc := range []struct {
		name  string
		query func(i int) store.Query
	}{
		{"first-page", func(i int) store.Query { return store.Query{Session: sessions[i%len(sessions)]} }},
		{"first-page-with-category", func(i int) store.Query {
			return store.Query{Session: sessions[i%len(sessions)], Category: storetest.BenchCategories[i%len(storetest.BenchCategories)]}
		}},
		{"page-40", func(i int) store.Query {
			return store.Query{Session: sessions[i%len(sessions)], Cursor: deep[i%len(sessions)]}
		}},
		// The same events as page-40 as a first page, through End: page-40
		// costs what this costs, not 40 pages.
		{"first-page-ending-at-page-40", func(i int) store.Query {
			return store.Query{Session: sessions[i%len(sessions)], End: deepEnd[i%len(sessions)]}
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := range b.N {
				res, err := s.Query(ctx, bc.query(i))
				if err != nil {
					b.Fatal(err)
				}
				if len(res.Events) != store.DefaultLimit {
					b.Fatalf("%d events", len(res.Events))
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
		})
	}
}
