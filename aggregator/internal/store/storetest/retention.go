package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// expirer returns s as a store.Expirer, or skips the test.
func expirer(t *testing.T, s store.Store) store.Expirer {
	t.Helper()
	x, ok := s.(store.Expirer)
	if !ok {
		t.Skipf("%T does not implement store.Expirer (retention)", s)
	}
	return x
}

// spreadCenter is Spread's t0.
var spreadCenter = time.Unix(1_700_000_000, 0)

// testRetention retention applies per category: "view" is kept 36 hours,
// "click" forever, everything else (events without a category) two days,
// and a category no event has one hour. Two passes cut through days, hours
// and minutes (the second one inside a busy minute); after each, nothing
// past its retention is left in Get, any query, page offset, count, stats,
// IDPrefix or the export feed, everything else is exactly as before, a
// cursor of the feed taken before goes on, and all of it holds after a
// restart. A pass with nothing to do removes nothing.
func testRetention(t *testing.T, open Open) {
	s, reopen := open(t)
	x := expirer(t, s)
	events := Spread(600, 21)
	for i := 0; i < len(events); i += 100 {
		Ingest(t, s, events[i:min(i+100, len(events))]...)
	}
	// A feed cursor from before the passes, a third of the way in.
	res, err := s.Export(context.Background(), store.ExportQuery{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	cursor, before := res.Next, IDs(res.Events)

	r := store.Retention{
		Default:    48 * time.Hour,
		Categories: map[string]time.Duration{"view": 36 * time.Hour, "click": 0, "nothing": time.Hour},
	}
	kept := events
	for pass, now := range []time.Time{
		spreadCenter.Add(24 * time.Hour),                // view before t0-12h, "" before t0-24h
		spreadCenter.Add(36*time.Hour + 90*time.Second), // view before t0+90s: inside a busy minute
		spreadCenter.Add(36*time.Hour + 90*time.Second), // nothing more
	} {
		var removed []*eventpb.Event
		byCategory := map[string]int{}
		var next []*eventpb.Event
		for _, ev := range kept {
			if r.Expired(ev, now) {
				removed = append(removed, ev)
				byCategory[ev.GetCategory()]++
			} else {
				next = append(next, ev)
			}
		}
		if pass < 2 && len(removed) == 0 {
			t.Fatalf("pass %d: the dataset has nothing to remove; the test proves nothing", pass)
		}
		st, err := x.Expire(context.Background(), r, now)
		if err != nil {
			t.Fatalf("pass %d: expire: %v", pass, err)
		}
		if st.Removed != len(removed) {
			t.Fatalf("pass %d: removed %d events, want %d", pass, st.Removed, len(removed))
		}
		for c, n := range byCategory {
			if st.ByCategory[c] != n {
				t.Errorf("pass %d: removed %d of category %q, want %d (%v)", pass, st.ByCategory[c], c, n, st.ByCategory)
			}
		}
		kept = next
		checkRetained(t, s, events, kept, removed)
		checkFeedAfter(t, s, cursor, before, kept)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = reopen()
	checkRetained(t, s, events, kept, nil)
	checkFeedAfter(t, s, cursor, before, kept)
	// Events ingested after the passes are in the feed after the kept ones.
	late := Event("late", spreadCenter.Add(40*time.Hour).Unix(), "s1", "view", "home")
	Ingest(t, s, late)
	if got, _ := ExportAll(t, s, store.ExportQuery{Limit: 50}); !slices.Equal(got, append(IDs(kept), "late")) {
		t.Fatalf("feed after a late ingest: %d ids, want the %d kept and \"late\"", len(got), len(kept))
	}
}

// checkRetained checks that s holds exactly kept out of all: by Get,
// queries (pages and offsets), Count, Stats, IDPrefix and the feed, and that
// ingesting kept again finds every one of them a duplicate.
func checkRetained(t *testing.T, s store.Store, all, kept, removed []*eventpb.Event) {
	t.Helper()
	ctx := context.Background()
	for _, ev := range removed {
		if _, err := s.Get(ctx, ev.GetId()); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("get %q after it expired: %v, want ErrNotFound", ev.GetId(), err)
		}
	}
	for _, want := range kept {
		got, err := s.Get(ctx, want.GetId())
		if err != nil {
			t.Fatalf("get %q (kept): %v", want.GetId(), err)
		}
		equalEvent(t, got, want)
	}
	ranges := append(spreadRanges(all, 12, 5), [2]time.Time{})
	for _, q := range spreadQueries {
		for _, rg := range ranges {
			q := q
			q.Start, q.End, q.Limit = rg[0], rg[1], 13
			want := Reference(kept, q)
			if got := QueryAll(t, s, q); !slices.Equal(got, want) {
				t.Fatalf("query %+v: %d ids, want %d\n got %v\nwant %v", q, len(got), len(want), got, want)
			}
			if n, err := s.Count(ctx, q); err != nil || n != len(want) {
				t.Fatalf("count %+v = %d, %v; want %d", q, n, err, len(want))
			}
			for _, off := range []int{1, 13, 40} {
				q.Offset = off
				res, err := s.Query(ctx, q)
				if err != nil {
					t.Fatalf("query %+v: %v", q, err)
				}
				w := want[min(off, len(want)):]
				w = w[:min(len(w), 13)]
				if got := IDs(res.Events); !slices.Equal(got, w) {
					t.Fatalf("query %+v: %v, want %v", q, got, w)
				}
			}
		}
	}
	CheckStats(t, s, kept, ranges[:4])
	CheckStats(t, s, kept, [][2]time.Time{{}})
	for _, prefix := range []string{"e", "e001", "m"} {
		got, err := s.IDPrefix(ctx, prefix, 0)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, ev := range kept {
			if strings.HasPrefix(ev.GetId(), prefix) {
				want = append(want, ev.GetId())
			}
		}
		slices.Sort(want)
		if !slices.Equal(IDs(got), want) {
			t.Fatalf("IDPrefix(%q): %d ids, want %d", prefix, len(got), len(want))
		}
	}
	if got, _ := ExportAll(t, s, store.ExportQuery{Limit: 37}); !slices.Equal(got, IDs(kept)) {
		t.Fatalf("feed: %d ids, want the %d kept in the order stored", len(got), len(kept))
	}
	for i := 0; i < len(kept); i += 100 {
		batch := kept[i:min(i+100, len(kept))]
		if st := Ingest(t, s, batch...); st.Stored != 0 || st.Duplicates != len(batch) {
			t.Fatalf("ingesting kept events again: %+v, want all duplicates", st)
		}
	}
}

// checkFeedAfter reads the feed from a cursor taken before the passes:
// it goes on with the kept events that were stored after the events it had
// passed (before).
func checkFeedAfter(t *testing.T, s store.Store, cursor string, before []string, kept []*eventpb.Event) {
	t.Helper()
	passed := map[string]bool{}
	for _, id := range before {
		passed[id] = true
	}
	var want []string
	for _, ev := range kept {
		if !passed[ev.GetId()] {
			want = append(want, ev.GetId())
		}
	}
	if got, _ := ExportAll(t, s, store.ExportQuery{After: cursor, Limit: 41}); !slices.Equal(got, want) {
		t.Fatalf("feed after an earlier cursor: %d ids, want %d", len(got), len(want))
	}
}

// testRetentionWhileIngesting runs a pass while new events are ingested
// and the store is read: the pass removes exactly the expired events, every
// new event is stored, and queries, counts, stats, IDPrefix and the feed
// never fail during the pass.
func testRetentionWhileIngesting(t *testing.T, open Open) {
	s := openEmpty(t, open)
	x := expirer(t, s)
	old := make([]*eventpb.Event, 3000)
	for i := range old {
		old[i] = Event(fmt.Sprintf("old-%05d", i), spreadCenter.Unix()-int64(i), []string{"s1", "s2", ""}[i%3], []string{"view", ""}[i%2], "home")
	}
	for i := 0; i < len(old); i += 500 {
		Ingest(t, s, old[i:i+500]...)
	}
	now := spreadCenter.Add(48 * time.Hour)
	r := store.Retention{Default: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var fresh []*eventpb.Event
	var errs []error
	var mu sync.Mutex
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil && i < 200; i++ {
			batch := []*eventpb.Event{
				Event(fmt.Sprintf("new-%04d-a", i), now.Unix()-int64(i), "s1", "view", "home"),
				Event(fmt.Sprintf("new-%04d-b", i), now.Unix()-int64(i), "", "", ""),
			}
			if _, err := s.Ingest(context.Background(), batch); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			mu.Lock()
			fresh = append(fresh, batch...)
			mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			for _, q := range []store.Query{{Limit: 50}, {Session: "s1", Limit: 50}, {Category: "view", Limit: 50, Offset: 100}} {
				if _, err := s.Query(context.Background(), q); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("query %+v during the pass: %w", q, err))
					mu.Unlock()
				}
			}
			for _, q := range []store.Query{{}, {Category: "view"}, {Session: "s1", Category: "view"}} {
				if _, err := s.Count(context.Background(), q); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("count %+v during the pass: %w", q, err))
					mu.Unlock()
				}
			}
			_, errStats := s.Stats(context.Background(), store.StatsQuery{Bucket: store.Hour, ByCategory: true})
			_, errExport := s.Export(context.Background(), store.ExportQuery{Limit: 100})
			_, errPrefix := s.IDPrefix(context.Background(), "old-", 100)
			if err := errors.Join(errStats, errExport, errPrefix); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("stats, export or IDPrefix during the pass: %w", err))
				mu.Unlock()
			}
		}
	}()
	st, err := x.Expire(context.Background(), r, now)
	cancel()
	wg.Wait()
	if err != nil {
		t.Fatalf("expire: %v", err)
	}
	for _, err := range errs {
		t.Error(err)
	}
	if st.Removed != len(old) {
		t.Fatalf("removed %d, want the %d old events", st.Removed, len(old))
	}
	slices.SortFunc(fresh, func(a, b *eventpb.Event) int { return strings.Compare(a.GetId(), b.GetId()) })
	if got := QueryAll(t, s, store.Query{Limit: 100}); len(got) != len(fresh) {
		t.Fatalf("%d events left, want the %d ingested during the pass", len(got), len(fresh))
	}
	if n, err := s.Count(context.Background(), store.Query{}); err != nil || n != len(fresh) {
		t.Fatalf("count %d, %v; want %d", n, err, len(fresh))
	}
	CheckStats(t, s, fresh, [][2]time.Time{{}})
}

// testRetentionAll expires every event: nothing is left in any answer, and
// after a restart the next event stored comes after every cursor given out
// before, however far the feed had gone.
func testRetentionAll(t *testing.T, open Open) {
	s, reopen := open(t)
	x := expirer(t, s)
	now := spreadCenter.Add(30 * 24 * time.Hour)
	r := store.Retention{Default: time.Hour}
	var events []*eventpb.Event
	for _, ev := range Spread(200, 23) {
		if r.Expired(ev, now) { // not the events at the end of time
			events = append(events, ev)
		}
	}
	Ingest(t, s, events...)
	_, end := ExportAll(t, s, store.ExportQuery{Limit: 50})
	st, err := x.Expire(context.Background(), r, now)
	if err != nil {
		t.Fatal(err)
	}
	if st.Removed != len(events) {
		t.Fatalf("removed %d, want all %d", st.Removed, len(events))
	}
	checkRetained(t, s, events, nil, events)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = reopen()
	checkRetained(t, s, events, nil, events)
	late := Event("late", now.Unix(), "s1", "view", "home")
	Ingest(t, s, late)
	if got, _ := ExportAll(t, s, store.ExportQuery{After: end}); !slices.Equal(got, []string{"late"}) {
		t.Fatalf("the feed after the end cursor of before the pass, across a restart: %q, want [late]", got)
	}
	CheckStats(t, s, []*eventpb.Event{late}, [][2]time.Time{{}})
}
