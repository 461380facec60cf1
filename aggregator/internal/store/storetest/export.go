package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// ExportAll reads the feed from q.After to its end in pages of q.Limit and
// returns the ids and the final cursor. It fails on a result without Next.
func ExportAll(tb testing.TB, s store.Store, q store.ExportQuery) ([]string, string) {
	tb.Helper()
	var all []string
	for {
		res, err := s.Export(context.Background(), q)
		if err != nil {
			tb.Fatalf("export after %q: %v", q.After, err)
		}
		if res.Next == "" {
			tb.Fatal("export result without Next")
		}
		if len(res.Events) > q.PageSize() {
			tb.Fatalf("export after %q: %d events, limit %d", q.After, len(res.Events), q.PageSize())
		}
		all = append(all, IDs(res.Events)...)
		if len(res.Events) == 0 && res.Next == q.After {
			return all, res.Next
		}
		q.After = res.Next
	}
}

// testExport ingests batches with duplicates and rejections and reads the
// feed in pages: every stored event once, in the order stored (batch after
// batch, each in the order given), and a cursor that resumes after a
// restart.
func testExport(t *testing.T, open Open) {
	s, reopen := open(t)
	b1 := []*eventpb.Event{Event("z", 50, "s1", "view", "home"), Event("a", 10, "s1", "view", "home"), Event("m", 30, "s2", "click", "buy")}
	b2 := []*eventpb.Event{Event("a", 10, "s1", "view", "home"), Event("b", 5, "", "", ""), nil, Event("b", 5, "", "", "")}
	Ingest(t, s, b1...)
	Ingest(t, s, b2...)
	want := []string{"z", "a", "m", "b"}
	for _, limit := range []int{1, 2, 3, 100} {
		if got, _ := ExportAll(t, s, store.ExportQuery{Limit: limit}); !slices.Equal(got, want) {
			t.Errorf("limit %d: feed %v, want %v", limit, got, want)
		}
	}
	_, end := ExportAll(t, s, store.ExportQuery{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = reopen()
	Ingest(t, s, Event("c", 1, "s3", "view", "home"), Event("z", 50, "s1", "view", "home"))
	if got, _ := ExportAll(t, s, store.ExportQuery{After: end}); !slices.Equal(got, []string{"c"}) {
		t.Errorf("after a restart, from the old end: %v, want [c]", got)
	}
	if got, _ := ExportAll(t, s, store.ExportQuery{}); !slices.Equal(got, append(want, "c")) {
		t.Errorf("after a restart, from the start: %v", got)
	}
}

func testExportFilters(t *testing.T, open Open) {
	s := openEmpty(t, open)
	events := Dataset(400, 7)
	for i := 0; i < len(events); i += 37 {
		Ingest(t, s, events[i:min(i+37, len(events))]...)
	}
	const t0 = 1_700_000_000
	for _, tc := range []struct {
		name string
		q    store.ExportQuery
	}{
		{"everything", store.ExportQuery{}},
		{"session", store.ExportQuery{Session: "s1"}},
		{"category and name", store.ExportQuery{Category: "view", Name: "home"}},
		{"name", store.ExportQuery{Name: "buy"}},
		{"name prefixes", store.ExportQuery{NamePrefixes: []string{"ho", "bu"}}},
		{"session and name prefix", store.ExportQuery{Session: "s2", NamePrefixes: []string{"h"}}},
		{"time range", store.ExportQuery{Start: sec(t0 + 20), End: sec(t0 + 60)}},
		{"time range before all", store.ExportQuery{Start: time.Unix(20, 0), End: time.Unix(60, 0)}},
		{"unknown session", store.ExportQuery{Session: "no such session"}},
		{"NUL in session", store.ExportQuery{Session: "nul\x00"}},
	} {
		q := tc.q
		t.Run(tc.name, func(t *testing.T) {
			var want []string
			for _, ev := range events {
				if q.Matches(ev) {
					want = append(want, ev.GetId())
				}
			}
			for _, limit := range []int{1, 7, 1000} {
				q.Limit = limit
				got, _ := ExportAll(t, s, q)
				if !slices.Equal(got, want) {
					t.Fatalf("limit %d: %d events %v, want %d %v", limit, len(got), got, len(want), want)
				}
			}
		})
	}
}

// testExportWaits long-polls an empty feed position: an ingest wakes it
// with the new event; without one it returns empty with the same cursor.
func testExportWaits(t *testing.T, open Open) {
	s := openEmpty(t, open)
	ctx := context.Background()
	Ingest(t, s, Event("first", 1, "s", "c", "n"))
	_, end := ExportAll(t, s, store.ExportQuery{})

	res, err := s.Export(ctx, store.ExportQuery{After: end, Wait: 20 * time.Millisecond})
	if err != nil || len(res.Events) != 0 || res.Next != end {
		t.Fatalf("a wait with nothing new: %v events, next %q, %v; want none, %q", len(res.Events), res.Next, err, end)
	}

	// poll starts a long-poll, gives it time to begin waiting, and then
	// stores events one call each; the poll must answer before its Wait
	// ends, woken by the ingest.
	const wait = 5 * time.Second
	poll := func(q store.ExportQuery, events ...*eventpb.Event) ([]string, time.Duration) {
		t.Helper()
		q.Wait = wait
		began := time.Now()
		got := make(chan store.ExportResult, 1)
		go func() {
			res, err := s.Export(ctx, q)
			if err != nil {
				t.Error(err)
			}
			got <- res
		}()
		time.Sleep(50 * time.Millisecond)
		for _, ev := range events {
			Ingest(t, s, ev)
		}
		res := <-got
		return IDs(res.Events), time.Since(began)
	}
	if got, took := poll(store.ExportQuery{After: end}, Event("other", 2, "s", "c", "other-name")); !slices.Equal(got, []string{"other"}) || took >= wait {
		t.Fatalf("woken with %v after %v, want [other] at once", got, took)
	}
	// A filtered wait passes over what does not match and keeps waiting.
	if got, took := poll(store.ExportQuery{After: end, Name: "third"}, Event("second", 3, "s", "c", "n"), Event("third-event", 4, "s", "c", "third")); !slices.Equal(got, []string{"third-event"}) || took >= wait {
		t.Fatalf("filtered wait: %v after %v, want [third-event] at once", got, took)
	}

	// The end of the context ends a wait with a valid, empty answer. (It
	// must end after the store's first read of the feed, or that read fails
	// with the context's error: 2 s leaves a database under load the time.)
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if res, err := s.Export(short, store.ExportQuery{Name: "never", Wait: time.Hour}); err != nil || len(res.Events) != 0 || res.Next == "" {
		t.Fatalf("a wait ended by its context: %v events, next %q, %v", IDs(res.Events), res.Next, err)
	}

	// Close ends a wait.
	closed := make(chan store.ExportResult, 1)
	go func() {
		res, _ := s.Export(ctx, store.ExportQuery{After: end, Name: "never", Wait: time.Hour})
		closed <- res
	}()
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if res := <-closed; len(res.Events) != 0 {
		t.Fatalf("a wait ended by Close returned %v", IDs(res.Events))
	}
}

func testExportCursorErrors(t *testing.T, open Open) {
	a, b := openEmpty(t, open), openEmpty(t, open)
	Ingest(t, a, Event("x", 1, "s", "c", "n"))
	Ingest(t, b, Event("x", 1, "s", "c", "n"))
	_, fromA := ExportAll(t, a, store.ExportQuery{})
	for _, c := range []string{"nope", "AAAA", fromA + "A"} {
		if _, err := a.Export(context.Background(), store.ExportQuery{After: c}); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("cursor %q: %v, want ErrBadCursor", c, err)
		}
	}
	if _, err := b.Export(context.Background(), store.ExportQuery{After: fromA}); !errors.Is(err, store.ErrBadCursor) {
		t.Errorf("a cursor of another store: %v, want ErrBadCursor", err)
	}
}
