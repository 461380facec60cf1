package pebble

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// openMem opens a store on an in-memory filesystem, closed at the end of the
// test.
func openMem(tb testing.TB) *Store {
	tb.Helper()
	return openAt(tb, Options{Dir: "db", FS: vfs.NewMem()})
}

func openAt(tb testing.TB, opts Options) *Store {
	tb.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	s, err := Open(opts)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func ingest(tb testing.TB, s store.Store, events ...*eventpb.Event) store.IngestStats {
	tb.Helper()
	st, err := s.Ingest(context.Background(), events)
	if err != nil {
		tb.Fatalf("ingest: %v", err)
	}
	return st
}

// event makes an event at client time t (seconds); received_at is later, so
// a wrong choice of event time shows.
func event(id string, t int64, session, category, name string) *eventpb.Event {
	return &eventpb.Event{
		Id:         id,
		Source:     eventpb.Source_SOURCE_HAMUSTRO,
		ReceivedAt: t*1e9 + 7e9,
		ClientTime: t * 1e9,
		Session:    session,
		Category:   category,
		Name:       name,
		Data:       []byte(`{"k":"` + id + `"}`),
		Edge:       "edge-1",
	}
}

// dataset makes n events with few distinct sessions, categories, names and
// times, so that filters combine and times tie. Some events have no client
// time, some have empty filter values.
func dataset(n int, seed uint64) []*eventpb.Event {
	r := rand.New(rand.NewPCG(seed, seed))
	pick := func(vals ...string) string { return vals[r.IntN(len(vals))] }
	events := make([]*eventpb.Event, n)
	for i := range events {
		ev := event(fmt.Sprintf("id-%05d-%d", i, r.IntN(1000)), 1_700_000_000+int64(r.IntN(n/3+1)),
			pick("s0", "s1", "s2", "s3", "s4", "s5", ""),
			pick("view", "click", "buy", ""),
			pick("home", "cart", "search", "a", ""))
		if r.IntN(5) == 0 {
			ev.ClientTime = 0 // ordered by received_at
		}
		events[i] = ev
	}
	return events
}

// reference answers q over events the slow way: filter, then sort newest
// first with ties by id.
func reference(events []*eventpb.Event, q store.Query) []string {
	var ids []string
	var match []*eventpb.Event
	for _, ev := range events {
		if q.Matches(ev) {
			match = append(match, ev)
		}
	}
	slices.SortFunc(match, func(a, b *eventpb.Event) int {
		if c := cmp.Compare(store.EventTime(b), store.EventTime(a)); c != 0 {
			return c
		}
		return cmp.Compare(a.GetId(), b.GetId())
	})
	for _, ev := range match {
		ids = append(ids, ev.GetId())
	}
	return ids
}

// queryAll pages through q and returns the ids in order. It fails on an
// empty page that is not the first one: a cursor must only be handed out
// when there is more.
func queryAll(tb testing.TB, s store.Store, q store.Query) []string {
	tb.Helper()
	var ids []string
	for page := 0; ; page++ {
		res, err := s.Query(context.Background(), q)
		if err != nil {
			tb.Fatalf("query %+v page %d: %v", q, page, err)
		}
		if len(res.Events) == 0 && page > 0 {
			tb.Fatalf("query %+v: page %d is empty after a cursor", q, page)
		}
		if len(res.Events) > q.PageSize() {
			tb.Fatalf("query %+v: page %d has %d events, limit %d", q, page, len(res.Events), q.PageSize())
		}
		if res.Next != "" && len(res.Events) != q.PageSize() {
			tb.Fatalf("query %+v: short page %d (%d) with a cursor", q, page, len(res.Events))
		}
		for _, ev := range res.Events {
			ids = append(ids, ev.GetId())
		}
		if res.Next == "" {
			return ids
		}
		q.Cursor = res.Next
	}
}

// countKeys counts the keys in each keyspace of s.
func countKeys(tb testing.TB, s *Store) map[byte]int {
	tb.Helper()
	it, err := s.db.NewIter(nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer it.Close()
	n := map[byte]int{}
	for valid := it.First(); valid; valid = it.Next() {
		n[it.Key()[0]]++
	}
	if err := it.Error(); err != nil {
		tb.Fatal(err)
	}
	return n
}

// wantKeys is what countKeys must return for a store holding events.
func wantKeys(events []*eventpb.Event) map[byte]int {
	n := map[byte]int{ksMeta: 2} // layout version, store id
	cells := rollupDeltas{}
	for _, ev := range events {
		cells.add(ev)
		n[ksEvent]++
		n[ksFeed]++
		n[ksTime]++
		if ev.GetSession() != "" {
			n[ksSession]++
		}
		if ev.GetCategory() != "" && ev.GetName() != "" {
			n[ksCatName]++
		}
		if ev.GetCategory() != "" {
			n[ksCategory]++
		}
		if ev.GetName() != "" {
			n[ksName]++
		}
	}
	if len(cells) > 0 {
		n[ksRollup] = len(cells)
	}
	return n
}

func equalEvent(tb testing.TB, got, want *eventpb.Event) {
	tb.Helper()
	if !proto.Equal(got, want) {
		tb.Fatalf("event mismatch:\n got %v\nwant %v", got, want)
	}
}

// rawSet writes a key directly, to build states that Ingest never makes.
func rawSet(tb testing.TB, s *Store, key, value []byte) {
	tb.Helper()
	if err := s.db.Set(key, value, pebbledb.Sync); err != nil {
		tb.Fatal(err)
	}
}

var quiet = slog.New(slog.DiscardHandler)
