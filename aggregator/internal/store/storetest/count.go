package storetest

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// buckets lists every bucket width.
var buckets = []store.Bucket{store.Minute, store.Hour, store.Day}

// Spread makes n events over about five days, clustered so that minutes,
// hours and days hold several events and ranges cut through them, plus events
// at the extreme times an int64 can hold.
func Spread(n int, seed uint64) []*eventpb.Event {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	pick := func(vals ...string) string { return vals[r.IntN(len(vals))] }
	const t0 = int64(1_700_000_000) * 1e9
	events := make([]*eventpb.Event, 0, n+4)
	for i := range n {
		var t int64
		switch r.IntN(4) {
		case 0: // a few busy minutes
			t = t0 + int64(r.IntN(3))*int64(time.Minute) + r.Int64N(int64(time.Minute))
		case 1: // one busy hour
			t = t0 + 5*int64(time.Hour) + r.Int64N(int64(time.Hour))
		default: // five days, some at whole seconds so that bounds hit them
			t = t0 - int64(2*24*time.Hour) + r.Int64N(int64(5*24*time.Hour))
			if r.IntN(3) == 0 {
				t -= t % int64(time.Second)
			}
		}
		ev := Event(fmt.Sprintf("e%05d", i), 0, pick("s0", "s1", "s2", ""), pick("view", "click", ""), pick("home", "cart", "a", ""))
		ev.ClientTime, ev.ReceivedAt = t, t+7e9
		if r.IntN(6) == 0 {
			ev.ClientTime, ev.ReceivedAt = 0, t
		}
		events = append(events, ev)
	}
	extreme := func(id string, t int64) {
		ev := Event(id, 0, "s0", "view", "home")
		ev.ClientTime, ev.ReceivedAt = 0, t
		if t > 0 {
			ev.ClientTime = t
		}
		events = append(events, ev)
	}
	extreme("min", math.MinInt64)
	extreme("min+1", math.MinInt64+1)
	extreme("max", math.MaxInt64)
	extreme("negative", -int64(90*time.Second)-3)
	return events
}

// spreadQueries are filters of every kind: with and without a session, on
// values that exist and on ones no event can have.
var spreadQueries = []store.Query{
	{},
	{Category: "view"},
	{Name: "cart"},
	{Category: "click", Name: "home"},
	{Session: "s1"},
	{Session: "s0", Category: "view"},
	{Session: "s2", Name: "a"},
	{Category: "nothing"},
	{Session: "s1\x00"},
}

// spreadRanges returns time ranges that cut through buckets in every way,
// around the times of events.
func spreadRanges(events []*eventpb.Event, n int, seed uint64) [][2]time.Time {
	r := rand.New(rand.NewPCG(seed, 1))
	ns := func(t int64) time.Time { return time.Unix(0, t) }
	around := func() time.Time {
		t := store.EventTime(events[r.IntN(len(events))])
		switch r.IntN(6) {
		case 0:
			return time.Time{} // unbounded
		case 1:
			return ns(t) // exactly an event's time
		case 2:
			return ns(t + 1)
		case 3: // a bucket boundary
			return buckets[r.IntN(len(buckets))].Floor(ns(t))
		default:
			return ns(t + r.Int64N(int64(3*time.Hour)) - int64(90*time.Minute))
		}
	}
	ranges := [][2]time.Time{
		{}, {ns(math.MinInt64), ns(math.MaxInt64)}, {ns(math.MinInt64 + 1), ns(math.MaxInt64 - 1)},
		{ns(math.MinInt64), {}}, {{}, ns(math.MaxInt64)}, {time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)},
		{ns(0), ns(int64(24 * time.Hour))}, {ns(-int64(time.Hour)), ns(0)},
	}
	for range n {
		a, b := around(), around()
		if !a.IsZero() && !b.IsZero() && b.Before(a) && r.IntN(4) != 0 {
			a, b = b, a
		}
		ranges = append(ranges, [2]time.Time{a, b})
	}
	return ranges
}

func testCount(t *testing.T, open Open) {
	events := Spread(1500, 1)
	s := openEmpty(t, open)
	Ingest(t, s, events[:700]...)
	Ingest(t, s, events[700:]...)
	ctx := context.Background()
	for _, rg := range spreadRanges(events, 60, 2) {
		for _, q := range spreadQueries {
			q.Start, q.End = rg[0], rg[1]
			got, err := s.Count(ctx, q)
			if err != nil {
				t.Fatalf("count %+v: %v", q, err)
			}
			if want := len(Reference(events, q)); got != want {
				t.Fatalf("count %+v = %d, want %d", q, got, want)
			}
		}
	}
}

// testQueryOffset checks that a page at an offset is that slice of the
// whole ordered result, for every kind of query and range.
func testQueryOffset(t *testing.T, open Open) {
	events := Spread(1200, 3)
	s := openEmpty(t, open)
	Ingest(t, s, events...)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(4, 4))
	for i, rg := range spreadRanges(events, 25, 5) {
		for _, q := range spreadQueries {
			q.Start, q.End = rg[0], rg[1]
			want := Reference(events, q)
			offsets := []int{0, 1, len(want) - 1, len(want), len(want) + 1}
			for range 8 {
				offsets = append(offsets, r.IntN(len(want)+1))
			}
			for _, off := range offsets {
				if off < 0 {
					continue
				}
				q.Offset, q.Limit = off, 1+r.IntN(40)
				res, err := s.Query(ctx, q)
				if err != nil {
					t.Fatalf("range %d, %+v: %v", i, q, err)
				}
				got := IDs(res.Events)
				end := min(off+q.Limit, len(want))
				if wantPage := want[min(off, len(want)):end]; !slices.Equal(got, wantPage) {
					t.Fatalf("range %d, %+v: got %q, want %q", i, q, got, wantPage)
				}
				if (res.Next != "") != (end < len(want)) {
					t.Fatalf("range %d, %+v: next %q with %d of %d", i, q, res.Next, end, len(want))
				}
				if res.Next != "" { // the cursor of an offset page continues it
					q2 := q
					q2.Offset, q2.Cursor = 0, res.Next
					next, err := s.Query(ctx, q2)
					if err != nil {
						t.Fatalf("range %d, %+v: the page after: %v", i, q, err)
					}
					if got, wantNext := IDs(next.Events), want[end:min(end+q.Limit, len(want))]; !slices.Equal(got, wantNext) {
						t.Fatalf("range %d, %+v: continuing by cursor gives %q, want %q", i, q, got, wantNext)
					}
				}
			}
		}
	}
}

func testQueryOffsetErrors(t *testing.T, open Open) {
	s := openEmpty(t, open)
	Ingest(t, s, Dataset(30, 1)...)
	res, err := s.Query(context.Background(), store.Query{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []store.Query{{Offset: -1}, {Offset: 2, Cursor: res.Next}} {
		if _, err := s.Query(context.Background(), q); err == nil || !strings.Contains(err.Error(), "offset") {
			t.Errorf("%+v: err = %v, want an offset error", q, err)
		}
	}
}
