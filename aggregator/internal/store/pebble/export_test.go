package pebble

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// exportAll reads the feed from after to its end in pages of limit and
// returns the ids and the final cursor.
func exportAll(tb testing.TB, s store.Store, q store.ExportQuery) ([]string, string) {
	tb.Helper()
	var ids []string
	for {
		res, err := s.Export(context.Background(), q)
		if err != nil {
			tb.Fatalf("export after %q: %v", q.After, err)
		}
		if res.Next == "" {
			tb.Fatal("export result without Next")
		}
		for _, ev := range res.Events {
			ids = append(ids, ev.GetId())
		}
		if len(res.Events) == 0 && res.Next == q.After {
			return ids, res.Next
		}
		q.After = res.Next
	}
}

func ids(events []*eventpb.Event) []string {
	out := make([]string, len(events))
	for i, ev := range events {
		out[i] = ev.GetId()
	}
	return out
}

// TestExportIsTheStoredOrderOnce ingests batches with duplicates and
// rejections and reads the feed in pages: every stored event once, in the
// order stored (batch after batch, each in the order given), and a cursor
// that resumes after a restart.
func TestExportIsTheStoredOrderOnce(t *testing.T) {
	fs := vfs.NewMem()
	s := openAt(t, Options{Dir: "db", FS: fs})
	b1 := []*eventpb.Event{event("z", 50, "s1", "view", "home"), event("a", 10, "s1", "view", "home"), event("m", 30, "s2", "click", "buy")}
	b2 := []*eventpb.Event{event("a", 10, "s1", "view", "home"), event("b", 5, "", "", ""), nil, event("b", 5, "", "", "")}
	ingest(t, s, b1...)
	ingest(t, s, b2...)
	want := []string{"z", "a", "m", "b"}
	for _, limit := range []int{1, 2, 3, 100} {
		if got, _ := exportAll(t, s, store.ExportQuery{Limit: limit}); !slices.Equal(got, want) {
			t.Errorf("limit %d: feed %v, want %v", limit, got, want)
		}
	}
	_, end := exportAll(t, s, store.ExportQuery{})
	s.Close()

	s = openAt(t, Options{Dir: "db", FS: fs})
	ingest(t, s, event("c", 1, "s3", "view", "home"), event("z", 50, "s1", "view", "home"))
	if got, _ := exportAll(t, s, store.ExportQuery{After: end}); !slices.Equal(got, []string{"c"}) {
		t.Errorf("after a restart, from the old end: %v, want [c]", got)
	}
	if got, _ := exportAll(t, s, store.ExportQuery{}); !slices.Equal(got, append(want, "c")) {
		t.Errorf("after a restart, from the start: %v", got)
	}
}

func TestExportFilters(t *testing.T) {
	s := openMem(t)
	events := dataset(400, 7)
	for i := 0; i < len(events); i += 37 {
		ingest(t, s, events[i:min(i+37, len(events))]...)
	}
	cases := []store.ExportQuery{
		{},
		{Session: "s1"},
		{Category: "view", Name: "home"},
		{Name: "buy"},
		{NamePrefixes: []string{"ho", "bu"}},
		{Session: "s2", NamePrefixes: []string{"h"}},
		{Start: time.Unix(20, 0), End: time.Unix(60, 0)},
		{Session: "no such session"},
		{Session: "nul\x00"},
	}
	for _, q := range cases {
		t.Run(fmt.Sprintf("%+v", q), func(t *testing.T) {
			var want []string
			for _, ev := range events {
				if q.Matches(ev) {
					want = append(want, ev.GetId())
				}
			}
			for _, limit := range []int{1, 7, 1000} {
				q.Limit = limit
				got, _ := exportAll(t, s, q)
				if !slices.Equal(got, want) {
					t.Fatalf("limit %d: %d events %v, want %d %v", limit, len(got), got, len(want), want)
				}
			}
		})
	}
}

// TestExportWaits long-polls an empty feed position: an ingest wakes it
// with the new event; without one it returns empty with the same cursor.
func TestExportWaits(t *testing.T) {
	s := openMem(t)
	ingest(t, s, event("first", 1, "s", "c", "n"))
	_, end := exportAll(t, s, store.ExportQuery{})

	res, err := s.Export(context.Background(), store.ExportQuery{After: end, Wait: 20 * time.Millisecond})
	if err != nil || len(res.Events) != 0 || res.Next != end {
		t.Fatalf("a wait with nothing new: %v events, next %q, %v; want none, %q", len(res.Events), res.Next, err, end)
	}

	got := make(chan store.ExportResult, 1)
	go func() {
		res, err := s.Export(context.Background(), store.ExportQuery{After: end, Wait: time.Hour})
		if err != nil {
			t.Error(err)
		}
		got <- res
	}()
	ingest(t, s, event("other", 2, "s", "c", "other-name"))
	ingest(t, s, event("second", 3, "s", "c", "n"))
	res = <-got
	if n := ids(res.Events); len(n) == 0 || n[0] != "other" {
		t.Fatalf("woken with %v, want [other ...]", n)
	}

	// A filtered wait passes over what does not match and keeps waiting.
	go func() {
		res, err := s.Export(context.Background(), store.ExportQuery{After: end, Name: "third", Wait: time.Hour})
		if err != nil {
			t.Error(err)
		}
		got <- res
	}()
	ingest(t, s, event("third-event", 4, "s", "c", "third"))
	if n := ids((<-got).Events); !slices.Equal(n, []string{"third-event"}) {
		t.Fatalf("filtered wait: %v, want [third-event]", n)
	}

	// Close ends a wait.
	go func() {
		res, _ := s.Export(context.Background(), store.ExportQuery{After: "", Name: "never", Wait: time.Hour})
		got <- res
	}()
	s.Close()
	if res := <-got; len(res.Events) != 0 {
		t.Fatalf("a wait ended by Close returned %v", ids(res.Events))
	}
}

func TestExportCursorErrors(t *testing.T) {
	a, b := openMem(t), openMem(t)
	ingest(t, a, event("x", 1, "s", "c", "n"))
	ingest(t, b, event("x", 1, "s", "c", "n"))
	_, fromA := exportAll(t, a, store.ExportQuery{})
	for _, c := range []string{"nope", "AAAA", fromA + "A"} {
		if _, err := a.Export(context.Background(), store.ExportQuery{After: c}); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("cursor %q: %v, want ErrBadCursor", c, err)
		}
	}
	if _, err := b.Export(context.Background(), store.ExportQuery{After: fromA}); !errors.Is(err, store.ErrBadCursor) {
		t.Errorf("a cursor of another store: %v, want ErrBadCursor", err)
	}
}

// TestMigrateFeed opens a database of layout 2 (no feed, no store id): Open
// builds the feed, oldest event first, and later ingests follow it.
func TestMigrateFeed(t *testing.T) {
	fs := vfs.NewMem()
	s := openAt(t, Options{Dir: "db", FS: fs})
	ingest(t, s, event("late", 50, "s", "c", "n"), event("early", 10, "s", "c", "n"), event("mid", 30, "s", "c", "n"))
	if err := s.db.DeleteRange([]byte{ksFeed}, []byte{ksFeed + 1}, pebbledb.Sync); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Delete([]byte(storeIDKey), pebbledb.Sync); err != nil {
		t.Fatal(err)
	}
	rawSet(t, s, []byte(layoutKey), []byte("2"))
	s.Close()

	s = openAt(t, Options{Dir: "db", FS: fs})
	ingest(t, s, event("new", 1, "s", "c", "n"))
	if got, _ := exportAll(t, s, store.ExportQuery{}); !slices.Equal(got, []string{"early", "mid", "late", "new"}) {
		t.Fatalf("feed after migration: %v", got)
	}
}
