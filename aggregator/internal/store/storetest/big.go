package storetest

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// The Big benchmarks of the backends (store/pebble, store/clickhouse) query
// one large store of the same events, made here, and run the same queries
// (Big), so that their figures read side by side. Each backend builds its
// store from BigBatches once per run, outside the timed part, and adds its
// own baselines.

// BigEvents is the size of the big store: the -bigstore.events flag of the
// packages whose tests import this one.
var BigEvents = flag.Int("bigstore.events", 10_000_000, "events in the store of the Big benchmarks")

const (
	BigBatch         = 10_000              // events per batch of BigBatches
	BigSpan          = 30 * 24 * time.Hour // the events' client times spread over 30 days
	bigSessionBlock  = 1000                // consecutive events share bigSessionsBlock sessions
	bigSessionsBlock = 25
	bigT0            = 1_760_000_000_000_000_000
)

// BigFirstTime is about the client time of the big store's first event.
var BigFirstTime = time.Unix(0, bigT0).UTC()

var (
	BenchCategories = []string{"view", "click", "scroll", "purchase", "error"}
	BenchNames      = []string{"home", "product", "cart", "checkout", "search", "login", "signup", "help"}
)

// BenchEvent makes one realistic event of session at clientTime (0 in one
// of 20 events: ordered by received_at), of a random category and name,
// with about 300 bytes of JSON data.
func BenchEvent(id, session string, clientTime int64, r *rand.Rand) *eventpb.Event {
	category := BenchCategories[r.IntN(len(BenchCategories))]
	name := BenchNames[r.IntN(len(BenchNames))]
	data := fmt.Sprintf(`{"url":"https://shop.example.com/%s/%d?utm_source=newsletter&utm_medium=email",`+
		`"referrer":"https://www.example.org/search?q=item+%d","title":"Item %d - Example Shop",`+
		`"viewport":"1280x720","lang":"en-US","tz":"Europe/Berlin","value":%d.%02d,"scroll_depth":%d,`+
		`"ab":"variant-%c","build":"2026.11.%d"}`,
		name, r.IntN(100000), r.IntN(1000), r.IntN(100000), r.IntN(500), r.IntN(100), r.IntN(101),
		'a'+rune(r.IntN(3)), r.IntN(30))
	ev := &eventpb.Event{
		Id:         id,
		Source:     eventpb.Source_SOURCE_HAMUSTRO,
		ReceivedAt: clientTime + int64(50e6+r.IntN(200e6)),
		ClientTime: clientTime,
		Session:    session,
		Category:   category,
		Name:       name,
		Data:       []byte(data),
		Ip:         fmt.Sprintf("203.0.113.%d", r.IntN(256)),
		Edge:       "edge-fra-1",
		Rule:       "hamustro@3f2a9c1b",
	}
	if r.IntN(20) == 0 {
		ev.ClientTime = 0
	}
	return ev
}

// BigSession is the session of session number k.
func BigSession(k int) string { return fmt.Sprintf("%016x", uint64(k)*0x9e3779b97f4a7c15) }

// BigBatchEvents makes events [first, first+n) of a store of total events:
// in time order over BigSpan, in sessions of about 40 events each that are
// active together, as traffic arrives. r must have made the events before
// first (BigBatches does this).
func BigBatchEvents(first, n, total int, r *rand.Rand) []*eventpb.Event {
	events := make([]*eventpb.Event, n)
	step := int64(BigSpan) / int64(total)
	for i := range events {
		nr := first + i
		k := nr/bigSessionBlock*bigSessionsBlock + r.IntN(bigSessionsBlock)
		t := bigT0 + int64(nr)*step + r.Int64N(2e9)
		events[i] = BenchEvent(fmt.Sprintf("h:%s:%d", BigSession(k), nr), BigSession(k), t, r)
	}
	return events
}

// BigBatches makes the events of a big store of total events in batches of
// BigBatch, in order, on one goroutine, two batches ahead of the reader.
// The reader must drain the channel.
func BigBatches(total int) <-chan []*eventpb.Event {
	batches := make(chan []*eventpb.Event, 2)
	go func() {
		defer close(batches)
		r := rand.New(rand.NewPCG(5, 6))
		for i := 0; i < total; i += BigBatch {
			batches <- BigBatchEvents(i, min(BigBatch, total-i), total, r)
		}
	}()
	return batches
}

// Big runs the queries of the Big benchmarks on S, a store holding the
// events of BigBatches(N). Each sub-benchmark checks that its query
// returned events and reports the store's size with its result.
type Big struct {
	S   store.Store
	N   int     // events in the store
	MiB float64 // the store's size on disk

	r       *rand.Rand
	cursors []string // to DeepPage of CatName(0…7)
}

// NewBig returns the queries of a big store s of n events, mib on disk.
func NewBig(s store.Store, n int, mib float64) *Big {
	return &Big{S: s, N: n, MiB: mib, r: rand.New(rand.NewPCG(9, 9))}
}

// Report reports the store's size and the time per query in milliseconds.
func (g *Big) Report(b *testing.B) {
	b.ReportMetric(float64(g.N), "events-in-store")
	b.ReportMetric(g.MiB, "store-MiB")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/op")
}

// RandomSession is one of the store's sessions, at random.
func (g *Big) RandomSession() string {
	return BigSession(g.r.IntN(g.N / bigSessionBlock * bigSessionsBlock))
}

// CatName is the i-th category and name (each pair holds 1/40 of the events).
func CatName(i int) (string, string) {
	return BenchCategories[i%len(BenchCategories)], BenchNames[(i/len(BenchCategories))%len(BenchNames)]
}

// DeepPage is the page the page-1000 queries read: 1000 (size 10), fewer in
// a small store.
func (g *Big) DeepPage() int { return min(1000, g.N/40/store.DefaultLimit/2) }

// Query runs q and fails b when it errs or returns no events.
func (g *Big) Query(b *testing.B, q store.Query) store.Result {
	b.Helper()
	res, err := g.S.Query(context.Background(), q)
	if err != nil {
		b.Fatal(err)
	}
	if len(res.Events) == 0 {
		b.Fatalf("%+v: no events", q)
	}
	return res
}

// Cursors returns the cursors to DeepPage of CatName(0) to CatName(7),
// each the Next of the page before it read by page number. The first call
// reads them outside b's timed part.
func (g *Big) Cursors(b *testing.B) []string {
	if g.cursors != nil {
		return g.cursors
	}
	b.StopTimer()
	defer b.StartTimer()
	for i := range 8 {
		c, n := CatName(i)
		res := g.Query(b, store.Query{Category: c, Name: n, Offset: (g.DeepPage() - 2) * store.DefaultLimit})
		if res.Next == "" {
			b.Fatalf("%s/%s: no page %d", c, n, g.DeepPage())
		}
		g.cursors = append(g.cursors, res.Next)
	}
	return g.cursors
}

// Day is the i-th of 28 days of the store, from its second day on.
func Day(i int) (start, end time.Time) {
	start = store.Day.Floor(BigFirstTime).AddDate(0, 0, 1+i%28)
	return start, start.AddDate(0, 0, 1)
}

// SessionFirstPage: the first page (10 events) of a random session.
func (g *Big) SessionFirstPage(b *testing.B) {
	for b.Loop() {
		g.Query(b, store.Query{Session: g.RandomSession()})
	}
	g.Report(b)
}

// CategoryNameFirstPage: the first page of one category and name (1/40 of
// the events).
func (g *Big) CategoryNameFirstPage(b *testing.B) {
	i := 0
	for b.Loop() {
		c, n := CatName(i)
		g.Query(b, store.Query{Category: c, Name: n})
		i++
	}
	g.Report(b)
}

// PageByCursor: DeepPage of a category and name through a cursor (the
// cursors are read outside the timed part).
func (g *Big) PageByCursor(b *testing.B) {
	cursors := g.Cursors(b)
	i := 0
	for b.Loop() {
		c, n := CatName(i % len(cursors))
		g.Query(b, store.Query{Category: c, Name: n, Cursor: cursors[i%len(cursors)]})
		i++
	}
	g.Report(b)
	b.ReportMetric(float64(g.DeepPage()), "page")
}

// PageByOffset: DeepPage of a category and name by page number (Offset).
func (g *Big) PageByOffset(b *testing.B) {
	i := 0
	for b.Loop() {
		c, n := CatName(i % 8)
		g.Query(b, store.Query{Category: c, Name: n, Offset: (g.DeepPage() - 1) * store.DefaultLimit})
		i++
	}
	g.Report(b)
	b.ReportMetric(float64(g.DeepPage()), "page")
}

// CountCategoryName: Count of one category and name.
func (g *Big) CountCategoryName(b *testing.B) {
	i := 0
	for b.Loop() {
		c, n := CatName(i)
		if k, err := g.S.Count(context.Background(), store.Query{Category: c, Name: n}); err != nil || k == 0 {
			b.Fatalf("count %s/%s = %d, %v", c, n, k, err)
		}
		i++
	}
	g.Report(b)
}

// CountAll: Count of the whole store, which must be N.
func (g *Big) CountAll(b *testing.B) {
	for b.Loop() {
		if k, err := g.S.Count(context.Background(), store.Query{}); err != nil || k != g.N {
			b.Fatalf("count = %d, %v; want %d", k, err, g.N)
		}
	}
	g.Report(b)
}

// StatsDayByHour: the counts per hour of one day, by category and name.
func (g *Big) StatsDayByHour(b *testing.B) {
	i := 0
	for b.Loop() {
		start, end := Day(i)
		series, err := g.S.Stats(context.Background(), store.StatsQuery{Bucket: store.Hour, Start: start, End: end, ByCategory: true, ByName: true})
		if err != nil || len(series) == 0 {
			b.Fatalf("stats: %d series, %v", len(series), err)
		}
		i++
	}
	g.Report(b)
}
