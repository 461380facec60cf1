package pebble

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

func sec(s int64) time.Time { return time.Unix(s, 0) }

func TestQuery(t *testing.T) {
	events := dataset(900, 11)
	s := openMem(t)
	ingest(t, s, events...)
	const t0 = 1_700_000_000
	tests := []struct {
		name string
		q    store.Query
		ks   byte // index the plan must use
	}{
		{"everything", store.Query{}, ksTime},
		{"session", store.Query{Session: "s2"}, ksSession},
		{"category", store.Query{Category: "click"}, ksCategory},
		{"name", store.Query{Name: "cart"}, ksName},
		{"category and name", store.Query{Category: "view", Name: "home"}, ksCatName},
		{"session and category", store.Query{Session: "s1", Category: "buy"}, ksSession},
		{"session and name", store.Query{Session: "s3", Name: "search"}, ksSession},
		{"session, category and name", store.Query{Session: "s0", Category: "view", Name: "a"}, ksSession},
		{"time range", store.Query{Start: sec(t0 + 50), End: sec(t0 + 120)}, ksTime},
		{"start only", store.Query{Start: sec(t0 + 250)}, ksTime},
		{"end only", store.Query{End: sec(t0 + 30)}, ksTime},
		{"session in time range", store.Query{Session: "s4", Start: sec(t0 + 10), End: sec(t0 + 200)}, ksSession},
		{"category and name in time range", store.Query{Category: "click", Name: "cart", Start: sec(t0 + 100), End: sec(t0 + 101)}, ksCatName},
		{"session, category in time range", store.Query{Session: "s5", Category: "click", Start: sec(t0 + 100)}, ksSession},
		{"unknown session", store.Query{Session: "nobody"}, ksSession},
		{"empty range", store.Query{Start: sec(t0 + 100), End: sec(t0 + 100)}, ksTime},
		{"inverted range", store.Query{Start: sec(t0 + 200), End: sec(t0 + 100)}, ksTime},
		{"range before all", store.Query{End: sec(t0)}, ksTime},
		{"range after all", store.Query{Start: sec(t0 + 1000)}, ksTime},
		{"extreme times", store.Query{Start: time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC), End: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}, ksTime},
		{"NUL in session filter", store.Query{Session: "s1\x00"}, ksSession},
		{"NUL in category filter", store.Query{Category: "view\x00home"}, ksCategory},
		{"over-long name filter", store.Query{Name: strings.Repeat("n", 300)}, ksName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ks := planQuery(tt.q).ks; ks != tt.ks {
				t.Errorf("plan uses index %q, want %q", ks, tt.ks)
			}
			want := reference(events, tt.q)
			for _, limit := range []int{7, store.MaxLimit} {
				q := tt.q
				q.Limit = limit
				if got := queryAll(t, s, q); !slices.Equal(got, want) {
					t.Fatalf("limit %d: got %d ids %.5q…, want %d %.5q…", limit, len(got), got, len(want), want)
				}
			}
		})
	}
	if n := len(reference(events, store.Query{Session: "s1", Category: "buy"})); n < 5 {
		t.Fatalf("dataset too thin: %d events for session and category", n)
	}
}

func TestQueryTimeBounds(t *testing.T) {
	noClock := event("r250", 0, "s", "", "")
	noClock.ReceivedAt = 250e9
	events := []*eventpb.Event{
		event("t100", 100, "s", "", ""),
		event("t200b", 200, "s", "", ""),
		event("t200a", 200, "s", "", ""),
		noClock,
		event("t300", 300, "s", "", ""),
		event("t299", 299, "s", "", ""),
	}
	s := openMem(t)
	ingest(t, s, events...)
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
		{"session index", store.Query{Session: "s", Start: sec(200), End: sec(300)}, []string{"t299", "r250", "t200a", "t200b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, limit := range []int{1, 2, 100} {
				q := tt.q
				q.Limit = limit
				if got := queryAll(t, s, q); !slices.Equal(got, tt.want) {
					t.Fatalf("limit %d: got %q, want %q", limit, got, tt.want)
				}
				if got := reference(events, q); !slices.Equal(got, tt.want) {
					t.Fatalf("reference disagrees with the test: %q", got)
				}
			}
		})
	}
}

// TestQueryPaging pages through a few thousand events and checks that every
// matching event is visited exactly once, in order.
func TestQueryPaging(t *testing.T) {
	events := dataset(4000, 5)
	s := openMem(t)
	for i := 0; i < len(events); i += 500 {
		ingest(t, s, events[i:i+500]...)
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
		want := reference(events, q)
		for _, limit := range []int{0, 10, 97} {
			q.Limit = limit
			got := queryAll(t, s, q)
			if !slices.Equal(got, want) {
				t.Fatalf("%+v: got %d ids, want %d", q, len(got), len(want))
			}
			if uniq := len(slices.Compact(slices.Sorted(slices.Values(got)))); uniq != len(got) {
				t.Fatalf("%+v: %d of %d ids repeated", q, len(got)-uniq, len(got))
			}
		}
	}
}

// TestQueryPagingWhileIngesting: a cursor is a position in time order, so
// events newer than the last one seen do not show up on later pages and
// older ones do, also when they sort right after the page's last event.
func TestQueryPagingWhileIngesting(t *testing.T) {
	s := openMem(t)
	ingest(t, s, event("e40", 40, "s", "", ""), event("e30", 30, "s", "", ""), event("e20", 20, "s", "", ""), event("e10", 10, "s", "", ""))
	res, err := s.Query(context.Background(), store.Query{Session: "s", Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	ingest(t, s, event("e50", 50, "s", "", ""), event("e35", 35, "s", "", ""), event("e25", 25, "s", "", ""), event("e15", 15, "s", "", ""))
	rest := queryAll(t, s, store.Query{Session: "s", Limit: 2, Cursor: res.Next})
	if want := []string{"e25", "e20", "e15", "e10"}; !slices.Equal(rest, want) {
		t.Fatalf("after ingesting: %q, want %q", rest, want)
	}
}

func TestQueryBadCursor(t *testing.T) {
	s := openMem(t)
	events := dataset(200, 2)
	ingest(t, s, events...)
	next := func(q store.Query) string {
		t.Helper()
		q.Limit = 3
		res, err := s.Query(context.Background(), q)
		if err != nil || res.Next == "" {
			t.Fatalf("%+v: no cursor (err %v)", q, err)
		}
		return res.Next
	}
	raw := func(c string) []byte {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	enc := base64.RawURLEncoding.EncodeToString
	session := next(store.Query{Session: "s1"})
	b := raw(session)
	tests := []struct {
		name   string
		q      store.Query
		cursor string
	}{
		{"not base64", store.Query{Session: "s1"}, "!!!"},
		{"padded base64", store.Query{Session: "s1"}, session + "=="},
		{"empty after decoding", store.Query{Session: "s1"}, "A"},
		{"garbage", store.Query{Session: "s1"}, "bm9wZQ"},
		{"unknown version", store.Query{Session: "s1"}, enc(append([]byte{2}, b[1:]...))},
		{"truncated", store.Query{Session: "s1"}, enc(b[:cursorHeader+timeLen])},
		{"id too long", store.Query{Session: "s1"}, enc(append(b, strings.Repeat("x", 300)...))},
		{"NUL in id", store.Query{Session: "s1"}, enc(append(b, 0))},
		{"other session", store.Query{Session: "s2"}, session},
		{"other index", store.Query{Category: "view"}, session},
		{"extra filter on the same index", store.Query{Session: "s1", Category: "view"}, session},
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

// FuzzQueryCursor feeds arbitrary cursors to Query: each is either rejected
// with ErrBadCursor or answered with a page of matching events.
func FuzzQueryCursor(f *testing.F) {
	s := openMem(f)
	events := dataset(100, 9)
	ingest(f, s, events...)
	queries := []store.Query{{}, {Session: "s1"}, {Category: "view", Name: "home"}, {Name: "a"}, {Category: "buy"}}
	for _, q := range queries {
		q.Limit = 2
		res, err := s.Query(context.Background(), q)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(res.Next, uint8(0))
	}
	f.Add("", uint8(1))
	f.Add("AQ", uint8(2))
	f.Add("AXMAAAAAAAAAAP____________9h", uint8(1))
	f.Fuzz(func(t *testing.T, cursor string, which uint8) {
		q := queries[int(which)%len(queries)]
		q.Cursor = cursor
		q.Limit = 5
		res, err := s.Query(context.Background(), q)
		if err != nil {
			if !errors.Is(err, store.ErrBadCursor) {
				t.Fatalf("err = %v, want nil or ErrBadCursor", err)
			}
			return
		}
		for _, ev := range res.Events {
			if !q.Matches(ev) {
				t.Fatalf("event %q does not match %+v", ev.GetId(), q)
			}
		}
	})
}
