package storetest

import (
	"cmp"
	"context"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// ReferenceStats answers q over events the slow way: every event in a bucket
// that overlaps the range, grouped and counted.
func ReferenceStats(events []*eventpb.Event, q store.StatsQuery) []store.Series {
	type group struct{ category, name string }
	counts := map[group]map[int64]int64{}
	for _, ev := range events {
		if q.Category != "" && ev.GetCategory() != q.Category || q.Name != "" && ev.GetName() != q.Name {
			continue
		}
		idx := q.Bucket.Index(store.EventTime(ev))
		if !q.Start.IsZero() && idx < q.Bucket.Index(store.UnixNano(q.Start)) {
			continue
		}
		if !q.End.IsZero() && (store.UnixNano(q.End) == math.MinInt64 || idx > q.Bucket.Index(store.UnixNano(q.End)-1)) {
			continue
		}
		var g group
		if q.ByCategory {
			g.category = ev.GetCategory()
		}
		if q.ByName {
			g.name = ev.GetName()
		}
		if counts[g] == nil {
			counts[g] = map[int64]int64{}
		}
		counts[g][idx]++
	}
	out := []store.Series{}
	for g, m := range counts {
		s := store.Series{Category: g.category, Name: g.name}
		for idx, c := range m {
			s.Points = append(s.Points, store.Point{Start: q.Bucket.Start(idx), Count: c})
		}
		slices.SortFunc(s.Points, func(a, b store.Point) int { return a.Start.Compare(b.Start) })
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b store.Series) int {
		return cmp.Or(strings.Compare(a.Category, b.Category), strings.Compare(a.Name, b.Name))
	})
	return out
}

func equalSeries(a, b []store.Series) bool {
	return slices.EqualFunc(a, b, func(x, y store.Series) bool {
		return x.Category == y.Category && x.Name == y.Name &&
			slices.EqualFunc(x.Points, y.Points, func(p, q store.Point) bool { return p.Start.Equal(q.Start) && p.Count == q.Count })
	})
}

// CheckStats compares Stats with ReferenceStats for every width, grouping
// and a few filters, in each of ranges (a zero time is unbounded).
func CheckStats(tb testing.TB, s store.Store, events []*eventpb.Event, ranges [][2]time.Time) {
	tb.Helper()
	for _, rg := range ranges {
		for _, b := range buckets {
			for _, f := range []store.StatsQuery{{}, {Category: "view"}, {Name: "cart"}, {Category: "click", Name: "home"}, {Category: "x\x00"}} {
				for _, g := range [][2]bool{{true, true}, {true, false}, {false, true}, {false, false}} {
					q := f
					q.Bucket, q.Start, q.End, q.ByCategory, q.ByName = b, rg[0], rg[1], g[0], g[1]
					got, err := s.Stats(context.Background(), q)
					if err != nil {
						tb.Fatalf("stats %+v: %v", q, err)
					}
					if want := ReferenceStats(events, q); !equalSeries(got, want) {
						tb.Fatalf("stats %+v:\n got %v\nwant %v", q, got, want)
					}
				}
			}
		}
	}
}

func testStats(t *testing.T, open Open) {
	events := Spread(1000, 21)
	s := openEmpty(t, open)
	Ingest(t, s, events[:400]...)
	Ingest(t, s, events[400:]...)
	ranges := spreadRanges(events, 12, 22)
	CheckStats(t, s, events, ranges)

	// Duplicates, also with other contents, and rejected events change
	// nothing.
	changed := make([]*eventpb.Event, 0, 100)
	for _, ev := range events[:100] {
		changed = append(changed, Event(ev.GetId(), 1, "s9", "view", "home"))
	}
	rejected := Event("rejected", 1, "s9", "view", "home\x00")
	if st := Ingest(t, s, slices.Concat(events[200:300], changed, []*eventpb.Event{rejected})...); st.Stored != 0 {
		t.Fatalf("re-ingest stored %d", st.Stored)
	}
	CheckStats(t, s, events, ranges)

	if _, err := s.Stats(context.Background(), store.StatsQuery{Bucket: 9}); err == nil {
		t.Error("unknown bucket accepted")
	}
	if _, err := s.Stats(context.Background(), store.StatsQuery{}); err == nil {
		t.Error("no bucket accepted")
	}
}

// testStatsTimes pins bucket alignment and range overlap on known events.
func testStatsTimes(t *testing.T, open Open) {
	at := func(id string, ts time.Time, category string) *eventpb.Event {
		ev := Event(id, 0, "s", category, "n")
		ev.ClientTime, ev.ReceivedAt = ts.UnixNano(), ts.UnixNano()
		return ev
	}
	d := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	s := openEmpty(t, open)
	Ingest(t, s,
		at("a", d("2022-01-01T00:00:00Z"), "x"),
		at("b", d("2022-01-01T00:59:59.999999999Z"), "x"),
		at("c", d("2022-01-01T01:00:00Z"), "y"),
		at("d", d("2022-01-01T23:30:00+02:00"), "x"), // 21:30 UTC
		at("e", d("2022-01-02T00:00:00Z"), "x"),
	)
	for _, tc := range []struct {
		q    store.StatsQuery
		want string
	}{
		{store.StatsQuery{Bucket: store.Hour, Start: d("2022-01-01T00:00:00Z"), End: d("2022-01-02T00:00:00Z"), ByCategory: true},
			"x: 2022-01-01T00:00:00Z=2 2022-01-01T21:00:00Z=1; y: 2022-01-01T01:00:00Z=1"},
		{store.StatsQuery{Bucket: store.Day, Start: d("2022-01-01T12:00:00Z"), End: d("2022-01-02T00:00:00.000000001Z")},
			": 2022-01-01T00:00:00Z=4 2022-01-02T00:00:00Z=1"},
		{store.StatsQuery{Bucket: store.Minute, Start: d("2022-01-01T00:59:30Z"), End: d("2022-01-01T01:00:00Z"), ByCategory: true, ByName: true},
			"x/n: 2022-01-01T00:59:00Z=1"},
		{store.StatsQuery{Bucket: store.Hour, Start: d("2022-01-01T01:00:00Z"), End: d("2022-01-01T01:00:00Z")}, ""},
		{store.StatsQuery{Bucket: store.Hour, Category: "y", ByName: true}, "n: 2022-01-01T01:00:00Z=1"},
	} {
		got, err := s.Stats(context.Background(), tc.q)
		if err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, se := range got {
			label := se.Category
			if se.Category != "" && se.Name != "" {
				label += "/"
			}
			label += se.Name + ":"
			for _, p := range se.Points {
				label += " " + p.Start.Format(time.RFC3339) + "=" + strconv.FormatInt(p.Count, 10)
			}
			parts = append(parts, label)
		}
		if g := strings.Join(parts, "; "); g != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.q, g, tc.want)
		}
	}
}

// testStatsConcurrent ingests overlapping batches concurrently: the counts
// must equal those of the distinct events, as if each had arrived once.
func testStatsConcurrent(t *testing.T, open Open) {
	all := Spread(300, 31)
	s := openEmpty(t, open)
	batch := func(g, i int) []*eventpb.Event {
		from := (g*37 + i*11) % len(all)
		return all[from:min(from+40, len(all))]
	}
	done := make(chan error)
	for g := range 8 {
		go func() {
			var err error
			for i := range 25 {
				if _, err = s.Ingest(context.Background(), batch(g, i)); err != nil {
					break
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	var stored []*eventpb.Event
	for g := range 8 {
		for i := range 25 {
			for _, ev := range batch(g, i) {
				if !seen[ev.GetId()] {
					seen[ev.GetId()] = true
					stored = append(stored, ev)
				}
			}
		}
	}
	CheckStats(t, s, stored, [][2]time.Time{{}})
	if n, err := s.Count(context.Background(), store.Query{}); err != nil || n != len(stored) {
		t.Fatalf("count = %d, %v; want %d", n, err, len(stored))
	}
}
