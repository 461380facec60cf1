package storetest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

func sec(s int64) time.Time { return time.Unix(s, 0) }

func testQuery(t *testing.T, open Open) {
	events := Dataset(900, 11)
	s := openEmpty(t, open)
	Ingest(t, s, events...)
	const t0 = 1_700_000_000
	tests := []struct {
		name string
		q    store.Query
	}{
		{"everything", store.Query{}},
		{"session", store.Query{Session: "s2"}},
		{"category", store.Query{Category: "click"}},
		{"name", store.Query{Name: "cart"}},
		{"category and name", store.Query{Category: "view", Name: "home"}},
		{"session and category", store.Query{Session: "s1", Category: "buy"}},
		{"session and name", store.Query{Session: "s3", Name: "search"}},
		{"session, category and name", store.Query{Session: "s0", Category: "view", Name: "a"}},
		{"time range", store.Query{Start: sec(t0 + 50), End: sec(t0 + 120)}},
		{"start only", store.Query{Start: sec(t0 + 250)}},
		{"end only", store.Query{End: sec(t0 + 30)}},
		{"session in time range", store.Query{Session: "s4", Start: sec(t0 + 10), End: sec(t0 + 200)}},
		{"category and name in time range", store.Query{Category: "click", Name: "cart", Start: sec(t0 + 100), End: sec(t0 + 101)}},
		{"session, category in time range", store.Query{Session: "s5", Category: "click", Start: sec(t0 + 100)}},
		{"unknown session", store.Query{Session: "nobody"}},
		{"empty range", store.Query{Start: sec(t0 + 100), End: sec(t0 + 100)}},
		{"inverted range", store.Query{Start: sec(t0 + 200), End: sec(t0 + 100)}},
		{"range before all", store.Query{End: sec(t0)}},
		{"range after all", store.Query{Start: sec(t0 + 1000)}},
		{"extreme times", store.Query{Start: time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC), End: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"NUL in session filter", store.Query{Session: "s1\x00"}},
		{"NUL in category filter", store.Query{Category: "view\x00home"}},
		{"over-long name filter", store.Query{Name: strings.Repeat("n", store.MaxValueLen+1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := Reference(events, tt.q)
			for _, limit := range []int{7, store.MaxLimit} {
				q := tt.q
				q.Limit = limit
				if got := QueryAll(t, s, q); !slices.Equal(got, want) {
					t.Fatalf("limit %d: got %d ids %.5q…, want %d %.5q…", limit, len(got), got, len(want), want)
				}
			}
		})
	}
	if n := len(Reference(events, store.Query{Session: "s1", Category: "buy"})); n < 5 {
		t.Fatalf("dataset too thin: %d events for session and category", n)
	}
}

// testQueryTimeBounds pins the order and the bounds on known events.
func testQueryTimeBounds(t *testing.T, open Open) {
	noClock := Event("r250", 0, "s", "", "")
	noClock.ReceivedAt = 250e9
	events := []*eventpb.Event{
		Event("t100", 100, "s", "", ""),
		Event("t200b", 200, "s", "", ""),
		Event("t200a", 200, "s", "", ""),
		noClock,
		Event("t300", 300, "s", "", ""),
		Event("t299", 299, "s", "", ""),
	}
	s := openEmpty(t, open)
	Ingest(t, s, events...)
	ns := func(n int64) time.Time { return time.Unix(0, n) }
	tests := []struct {
		name string
		q    store.Query
		want []string
	}{
		{"all, newest first, ties by id", store.Query{}, []string{"t300", "t299", "r250", "t200a", "t200b", "t100"}},
		{"start inclusive", store.Query{Start: sec(200)}, []string{"t300", "t299", "r250", "t200a", "t200b"}},
		{"end exclusive", store.Query{End: sec(300)}, []string{"t299", "r250", "t200a", "t200b", "t100"}},
		{"one second", store.Query{Start: sec(200), End: sec(201)}, []string{"t200a", "t200b"}},
		{"one nanosecond", store.Query{Start: sec(200), End: ns(200e9 + 1)}, []string{"t200a", "t200b"}},
		{"just after", store.Query{Start: ns(200e9 + 1), End: sec(300)}, []string{"t299", "r250"}},
		{"received_at without client time", store.Query{Start: sec(250), End: ns(250e9 + 1)}, []string{"r250"}},
		{"session", store.Query{Session: "s", Start: sec(200), End: sec(300)}, []string{"t299", "r250", "t200a", "t200b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, limit := range []int{1, 2, 100} {
				q := tt.q
				q.Limit = limit
				if got := QueryAll(t, s, q); !slices.Equal(got, tt.want) {
					t.Fatalf("limit %d: got %q, want %q", limit, got, tt.want)
				}
				if got := Reference(events, q); !slices.Equal(got, tt.want) {
					t.Fatalf("the reference disagrees with the test: %q", got)
				}
			}
		})
	}
}

// testQueryPaging pages through a few thousand events and checks that every
// matching event is visited exactly once, in order.
func testQueryPaging(t *testing.T, open Open) {
	events := Dataset(4000, 5)
	s := openEmpty(t, open)
	for i := 0; i < len(events); i += 500 {
		Ingest(t, s, events[i:i+500]...)
	}
	const t0 = 1_700_000_000
	for _, q := range []store.Query{
		{},
		{Session: "s3"},
		{Category: "view"},
		{Name: "home"},
		{Category: "buy", Name: "search"},
		{Session: "s1", Category: "click", Name: "cart"},
		{Session: "s2", Start: sec(t0 + 100), End: sec(t0 + 900)},
	} {
		want := Reference(events, q)
		for _, limit := range []int{0, 10, 97} {
			q.Limit = limit
			got := QueryAll(t, s, q)
			if !slices.Equal(got, want) {
				t.Fatalf("%+v: got %d ids, want %d", q, len(got), len(want))
			}
			if uniq := len(slices.Compact(slices.Sorted(slices.Values(got)))); uniq != len(got) {
				t.Fatalf("%+v: %d of %d ids repeated", q, len(got)-uniq, len(got))
			}
		}
	}
}

// testQueryPagingWhileIngesting: a cursor is a position in time order, so
// events newer than the last one seen do not show up on later pages and
// older ones do, also when they sort right after the page's last event.
func testQueryPagingWhileIngesting(t *testing.T, open Open) {
	s := openEmpty(t, open)
	Ingest(t, s, Event("e40", 40, "s", "", ""), Event("e30", 30, "s", "", ""), Event("e20", 20, "s", "", ""), Event("e10", 10, "s", "", ""))
	res, err := s.Query(context.Background(), store.Query{Session: "s", Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	Ingest(t, s, Event("e50", 50, "s", "", ""), Event("e35", 35, "s", "", ""), Event("e25", 25, "s", "", ""), Event("e15", 15, "s", "", ""))
	rest := QueryAll(t, s, store.Query{Session: "s", Limit: 2, Cursor: res.Next})
	if want := []string{"e25", "e20", "e15", "e10"}; !slices.Equal(rest, want) {
		t.Fatalf("after ingesting: %q, want %q", rest, want)
	}
}

// testQueryBadCursor: a cursor is accepted only by a query with the filters
// and time range of the one that returned it; what is no cursor at all is
// refused too. A backend's own tests try the damaged cursors its encoding
// can tell.
func testQueryBadCursor(t *testing.T, open Open) {
	s := openEmpty(t, open)
	Ingest(t, s, Dataset(200, 2)...)
	next := func(q store.Query) string {
		t.Helper()
		q.Limit = 3
		res, err := s.Query(context.Background(), q)
		if err != nil || res.Next == "" {
			t.Fatalf("%+v: no cursor (err %v)", q, err)
		}
		return res.Next
	}
	session := next(store.Query{Session: "s1"})
	tests := []struct {
		name   string
		q      store.Query
		cursor string
	}{
		{"not base64", store.Query{Session: "s1"}, "!!!"},
		{"one character", store.Query{Session: "s1"}, "A"},
		{"garbage", store.Query{Session: "s1"}, "bm9wZQ"},
		{"other session", store.Query{Session: "s2"}, session},
		{"other filters", store.Query{Category: "view"}, session},
		{"an extra filter", store.Query{Session: "s1", Category: "view"}, session},
		{"other time range", store.Query{Session: "s1", Start: sec(1)}, session},
		{"cursor of a time query", store.Query{}, next(store.Query{Start: sec(1)})},
		{"cursor of a name query", store.Query{Name: "cart", Category: "buy"}, next(store.Query{Name: "cart"})},
		{"query that matches nothing", store.Query{Session: "s1", Start: sec(5), End: sec(5)}, session},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.q.Cursor = tt.cursor
			if _, err := s.Query(context.Background(), tt.q); !errors.Is(err, store.ErrBadCursor) {
				t.Fatalf("err = %v, want ErrBadCursor", err)
			}
		})
	}
	// The limit is not part of the filters.
	if _, err := s.Query(context.Background(), store.Query{Session: "s1", Limit: 50, Cursor: session}); err != nil {
		t.Fatalf("other limit: %v", err)
	}
}
