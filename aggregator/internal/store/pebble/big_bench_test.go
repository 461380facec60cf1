package pebble

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// The Big benchmarks query one large store, built once per run (outside the
// timed part) in synced batches of bigBatch events (see bulkLoad), and measure
// each query beside a full-scan baseline in the same run: read every event,
// decode it and filter in Go — what answering without indexes or rollups
// costs. Run with e.g.
//
//	go test -run '^$' -bench Big -timeout 60m ./aggregator/internal/store/pebble/
//	go test -run '^$' -bench Big -timeout 60m ./aggregator/internal/store/pebble/ -bigstore.events 1000000
//
// (A baseline op takes seconds, so it runs once whatever -benchtime says
// when that is a duration; with Nx it runs N times.)
//
// The store holds 10 million events by default (about 2.7 GiB; on the
// 2-core machine these were first run on it builds in about two minutes);
// -bigstore.events sets another size. Every result reports the store's size
// (events-in-store, store-MiB).
var bigEvents = flag.Int("bigstore.events", 10_000_000, "events in the store of the Big benchmarks")

const (
	bigBatch         = 10_000
	bigSpan          = 30 * 24 * time.Hour // the events' client times spread over 30 days
	bigSessionBlock  = 1000                // consecutive events share bigSessionsBlock sessions
	bigSessionsBlock = 25
	bigT0            = 1_760_000_000_000_000_000
)

var bigFixture struct {
	once      sync.Once
	dir       string
	s         *Store
	err       error
	n         int
	bytes     int64
	took      time.Duration
	firstTime time.Time
}

// bigSession is the session of session number k.
func bigSession(k int) string { return fmt.Sprintf("%016x", uint64(k)*0x9e3779b97f4a7c15) }

// bigBatchEvents makes events [first, first+n) of a store of total events:
// in time order over bigSpan, in sessions of about 40 events each that are
// active together, as traffic arrives.
func bigBatchEvents(first, n, total int, r *rand.Rand) []*eventpb.Event {
	events := make([]*eventpb.Event, n)
	step := int64(bigSpan) / int64(total)
	for i := range events {
		nr := first + i
		k := nr/bigSessionBlock*bigSessionsBlock + r.IntN(bigSessionsBlock)
		t := bigT0 + int64(nr)*step + r.Int64N(2e9)
		events[i] = benchEvent(fmt.Sprintf("h:%s:%d", bigSession(k), nr), bigSession(k), t, r)
	}
	return events
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
		f.n = *bigEvents
		// One goroutine makes batches while the other stores them.
		batches := make(chan []*eventpb.Event, 2)
		go func() {
			defer close(batches)
			r := rand.New(rand.NewPCG(5, 6))
			for i := 0; i < f.n; i += bigBatch {
				batches <- bigBatchEvents(i, min(bigBatch, f.n-i), f.n, r)
			}
		}()
		for batch := range batches {
			if f.err == nil {
				f.err = bulkLoad(f.s, batch)
			}
		}
		f.took = time.Since(began)
		f.firstTime = time.Unix(0, bigT0).UTC()
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

// reportBig reports the store's size with each result.
func reportBig(b *testing.B) {
	b.ReportMetric(float64(bigFixture.n), "events-in-store")
	b.ReportMetric(float64(bigFixture.bytes)/(1<<20), "store-MiB")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/op")
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
	ctx := context.Background()
	r := rand.New(rand.NewPCG(9, 9))
	sessions := bigFixture.n / bigSessionBlock * bigSessionsBlock
	randomSession := func() string { return bigSession(r.IntN(sessions)) }
	catName := func(i int) (string, string) {
		return benchCategories[i%len(benchCategories)], benchNames[(i/len(benchCategories))%len(benchNames)]
	}
	query := func(b *testing.B, q store.Query) store.Result {
		res, err := s.Query(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Events) == 0 {
			b.Fatalf("%+v: no events", q)
		}
		return res
	}
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

	// Session lookup: the first page (10 events) of a random session.
	b.Run("session-first-page/index", func(b *testing.B) {
		for b.Loop() {
			query(b, store.Query{Session: randomSession()})
		}
		reportBig(b)
	})
	b.Run("session-first-page/full-scan", func(b *testing.B) {
		q := store.Query{Session: randomSession()}
		for b.Loop() {
			check(b, query(b, q), newestPage(b, s, q, 0, store.DefaultLimit))
		}
		reportBig(b)
	})

	// A filtered first page: one category and name (1/40 of the events).
	b.Run("category-name-first-page/index", func(b *testing.B) {
		i := 0
		for b.Loop() {
			c, n := catName(i)
			query(b, store.Query{Category: c, Name: n})
			i++
		}
		reportBig(b)
	})
	// Page 1000 (size 10; fewer in a small store) of a category and name:
	// by cursor (the cursors are collected outside the timed part), by page
	// number (Offset), and the full scan.
	deepPage := min(1000, bigFixture.n/40/store.DefaultLimit/2)
	var cursors []string
	deep := func(b *testing.B) {
		if cursors != nil {
			return
		}
		b.StopTimer()
		defer b.StartTimer()
		for i := range 8 {
			c, n := catName(i)
			q := store.Query{Category: c, Name: n}
			for range deepPage - 1 {
				q.Cursor = query(b, q).Next
			}
			cursors = append(cursors, q.Cursor)
		}
	}
	b.Run("page-1000/cursor", func(b *testing.B) {
		deep(b)
		i := 0
		for b.Loop() {
			c, n := catName(i % len(cursors))
			query(b, store.Query{Category: c, Name: n, Cursor: cursors[i%len(cursors)]})
			i++
		}
		reportBig(b)
		b.ReportMetric(float64(deepPage), "page")
	})
	b.Run("page-1000/offset", func(b *testing.B) {
		i := 0
		for b.Loop() {
			c, n := catName(i % 8)
			query(b, store.Query{Category: c, Name: n, Offset: (deepPage - 1) * store.DefaultLimit})
			i++
		}
		reportBig(b)
		b.ReportMetric(float64(deepPage), "page")
	})
	// One full scan is the baseline of both category-and-name queries: it
	// finds the events matching one category and name, sorts them newest
	// first and checks the index's first page and its page 1000 (by cursor
	// and by page number) against them.
	b.Run("category-name/full-scan", func(b *testing.B) {
		deep(b)
		c, n := catName(3)
		q := store.Query{Category: c, Name: n}
		for b.Loop() {
			want := newestPage(b, s, q, 0, deepPage*store.DefaultLimit)
			check(b, query(b, q), want[:store.DefaultLimit])
			deepQ := q
			deepQ.Cursor = cursors[3]
			check(b, query(b, deepQ), want[(deepPage-1)*store.DefaultLimit:])
			deepQ.Cursor, deepQ.Offset = "", (deepPage-1)*store.DefaultLimit
			check(b, query(b, deepQ), want[(deepPage-1)*store.DefaultLimit:])
		}
		reportBig(b)
	})
	b.Run("count/category-name", func(b *testing.B) {
		i := 0
		for b.Loop() {
			c, n := catName(i)
			if _, err := s.Count(ctx, store.Query{Category: c, Name: n}); err != nil {
				b.Fatal(err)
			}
			i++
		}
		reportBig(b)
	})
	b.Run("count/all", func(b *testing.B) {
		for b.Loop() {
			if n, err := s.Count(ctx, store.Query{}); err != nil || n != bigFixture.n {
				b.Fatalf("count = %d, %v", n, err)
			}
		}
		reportBig(b)
	})

	// Counts per hour of one day, by category and name.
	day := func(i int) (time.Time, time.Time) {
		start := store.Day.Floor(bigFixture.firstTime).AddDate(0, 0, 1+i%28)
		return start, start.AddDate(0, 0, 1)
	}
	b.Run("stats-day-by-hour/rollups", func(b *testing.B) {
		i := 0
		for b.Loop() {
			start, end := day(i)
			series, err := s.Stats(ctx, store.StatsQuery{Bucket: store.Hour, Start: start, End: end, ByCategory: true, ByName: true})
			if err != nil || len(series) == 0 {
				b.Fatalf("stats: %d series, %v", len(series), err)
			}
			i++
		}
		reportBig(b)
	})
	b.Run("stats-day-by-hour/full-scan", func(b *testing.B) {
		start, end := day(5)
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
			series, err := s.Stats(ctx, q)
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
		reportBig(b)
	})
}
