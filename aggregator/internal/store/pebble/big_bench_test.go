package pebble

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/aggregator/internal/store/storetest"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// The Big benchmarks query one large store, built once per run (outside the
// timed part) in synced batches of storetest.BigBatch events (see bulkLoad),
// and measure each query of storetest.Big beside a full-scan baseline in the
// same run: read every event, decode it and filter in Go — what answering
// without indexes or rollups costs. Run with e.g.
//
//	go test -run '^$' -bench Big -timeout 60m ./aggregator/internal/store/pebble/
//	go test -run '^$' -bench Big -timeout 60m ./aggregator/internal/store/pebble/ -bigstore.events 1000000
//
// (A baseline op takes seconds, so it runs once whatever -benchtime says
// when that is a duration; with Nx it runs N times.)
//
// The store holds storetest.BigBatches' 10 million events by default (about
// 2.7 GiB; on the 2-core machine these were first run on it builds in about
// two minutes); -bigstore.events sets another size. Every result reports the
// store's size (events-in-store, store-MiB). store/clickhouse's BenchmarkBig
// runs the same queries on the same events.

var bigFixture struct {
	once  sync.Once
	dir   string
	s     *Store
	err   error
	n     int
	bytes int64
	took  time.Duration
}

func openBig(b *testing.B) *Store {
	b.Helper()
	if testing.Short() {
		b.Skip("the big store takes minutes to build")
	}
	f := &bigFixture
	f.once.Do(func() {
		if f.dir, f.err = os.MkdirTemp("", "store-big-"); f.err != nil {
			return
		}
		if f.s, f.err = Open(Options{Dir: f.dir, Logger: quiet}); f.err != nil {
			return
		}
		began := time.Now()
		f.n = *storetest.BigEvents
		// One goroutine makes batches while this one stores them.
		for batch := range storetest.BigBatches(f.n) {
			if f.err == nil {
				f.err = bulkLoad(f.s, batch)
			}
		}
		f.took = time.Since(began)
		filepath.Walk(f.dir, func(_ string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() {
				f.bytes += info.Size()
			}
			return nil
		})
		fmt.Printf("big store: %d events, %.1f GiB on disk, built in %v (%.0f events/s)\n",
			f.n, float64(f.bytes)/(1<<30), f.took.Round(time.Second), float64(f.n)/f.took.Seconds())
	})
	if f.err != nil {
		b.Fatalf("big store: %v", f.err)
	}
	return f.s
}

// bulkLoad writes events as Ingest does — the same primary key, index
// entries and rollups, in one synced batch — but without the duplicate
// check, which costs most of Ingest's time in a large store and which the
// generator's distinct ids make moot. It is how the big store is built in
// minutes rather than in a quarter of an hour; the full-scan baselines check
// the answers.
func bulkLoad(s *Store, events []*eventpb.Event) error {
	b := s.db.NewBatch()
	defer b.Close()
	rollups := rollupDeltas{}
	var key []byte
	for _, ev := range events {
		val, err := marshal.Marshal(ev)
		if err != nil {
			return err
		}
		key = eventKey(key[:0], ev.GetId())
		if err := b.Set(key, val, nil); err != nil {
			return err
		}
		if key, err = indexKeys(key, ev, func(k []byte) error { return b.Set(k, nil, nil) }); err != nil {
			return err
		}
		rollups.add(ev)
	}
	if err := rollups.apply(s.db, b); err != nil {
		return err
	}
	return b.Commit(pebbledb.Sync)
}

// fullScan reads every event of s, decodes it and passes it to fn: the
// baseline of the Big benchmarks.
func fullScan(b *testing.B, s *Store, fn func(*eventpb.Event)) {
	it, err := s.db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{ksEvent}, UpperBound: []byte{ksEvent + 1}})
	if err != nil {
		b.Fatal(err)
	}
	defer it.Close()
	n := 0
	for valid := it.First(); valid; valid = it.Next() {
		ev := new(eventpb.Event)
		if err := proto.Unmarshal(it.Value(), ev); err != nil {
			b.Fatal(err)
		}
		fn(ev)
		n++
	}
	if err := it.Error(); err != nil {
		b.Fatal(err)
	}
	if n != bigFixture.n {
		b.Fatalf("full scan read %d events of %d", n, bigFixture.n)
	}
}

// newestPage is the baseline's answer to a page: the events q matches,
// sorted newest first, and the page at offset of them.
func newestPage(b *testing.B, s *Store, q store.Query, offset, limit int) []*eventpb.Event {
	var match []*eventpb.Event
	fullScan(b, s, func(ev *eventpb.Event) {
		if q.Matches(ev) {
			match = append(match, ev)
		}
	})
	slices.SortFunc(match, func(x, y *eventpb.Event) int {
		return cmp.Or(cmp.Compare(store.EventTime(y), store.EventTime(x)), cmp.Compare(x.GetId(), y.GetId()))
	})
	return match[min(offset, len(match)):min(offset+limit, len(match))]
}

func BenchmarkBig(b *testing.B) {
	s := openBig(b)
	g := storetest.NewBig(s, bigFixture.n, float64(bigFixture.bytes)/(1<<20))
	check := func(b *testing.B, got store.Result, want []*eventpb.Event) {
		if len(got.Events) != len(want) {
			b.Fatalf("%d events, the full scan found %d", len(got.Events), len(want))
		}
		for i := range want {
			if got.Events[i].GetId() != want[i].GetId() {
				b.Fatalf("event %d is %s, the full scan says %s", i, got.Events[i].GetId(), want[i].GetId())
			}
		}
	}

	b.Run("session-first-page/index", g.SessionFirstPage)
	b.Run("session-first-page/full-scan", func(b *testing.B) {
		q := store.Query{Session: g.RandomSession()}
		for b.Loop() {
			check(b, g.Query(b, q), newestPage(b, s, q, 0, store.DefaultLimit))
		}
		g.Report(b)
	})

	b.Run("category-name-first-page/index", g.CategoryNameFirstPage)
	b.Run("page-1000/cursor", g.PageByCursor)
	b.Run("page-1000/offset", g.PageByOffset)
	// One full scan is the baseline of the three category-and-name
	// queries: it finds the events matching one category and name, sorts
	// them newest first and checks the index's first page and its page 1000
	// (by cursor and by page number) against them.
	b.Run("category-name/full-scan", func(b *testing.B) {
		cursors, deepPage := g.Cursors(b), g.DeepPage()
		c, n := storetest.CatName(3)
		q := store.Query{Category: c, Name: n}
		for b.Loop() {
			want := newestPage(b, s, q, 0, deepPage*store.DefaultLimit)
			check(b, g.Query(b, q), want[:store.DefaultLimit])
			deepQ := q
			deepQ.Cursor = cursors[3]
			check(b, g.Query(b, deepQ), want[(deepPage-1)*store.DefaultLimit:])
			deepQ.Cursor, deepQ.Offset = "", (deepPage-1)*store.DefaultLimit
			check(b, g.Query(b, deepQ), want[(deepPage-1)*store.DefaultLimit:])
		}
		g.Report(b)
	})
	b.Run("count/category-name", g.CountCategoryName)
	b.Run("count/all", g.CountAll)

	b.Run("stats-day-by-hour/rollups", g.StatsDayByHour)
	b.Run("stats-day-by-hour/full-scan", func(b *testing.B) {
		start, end := storetest.Day(5)
		q := store.StatsQuery{Bucket: store.Hour, Start: start, End: end, ByCategory: true, ByName: true}
		for b.Loop() {
			type cell struct {
				hour           int64
				category, name string
			}
			counts := map[cell]int64{}
			lo, hi := start.UnixNano(), end.UnixNano()
			fullScan(b, s, func(ev *eventpb.Event) {
				if t := store.EventTime(ev); t >= lo && t < hi {
					counts[cell{store.Hour.Index(t), ev.GetCategory(), ev.GetName()}]++
				}
			})
			series, err := s.Stats(context.Background(), q)
			if err != nil {
				b.Fatal(err)
			}
			points := 0
			for _, se := range series {
				for _, p := range se.Points {
					points++
					if c := counts[cell{store.Hour.Index(p.Start.UnixNano()), se.Category, se.Name}]; c != p.Count {
						b.Fatalf("%s/%s at %v: rollups say %d, the full scan %d", se.Category, se.Name, p.Start, p.Count, c)
					}
				}
			}
			if points != len(counts) {
				b.Fatalf("%d points, the full scan found %d", points, len(counts))
			}
		}
		g.Report(b)
	})
}
