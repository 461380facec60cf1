package storetest

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// Ingest ingests events into s and fails the test on an error.
func Ingest(tb testing.TB, s store.Store, events ...*eventpb.Event) store.IngestStats {
	tb.Helper()
	st, err := s.Ingest(context.Background(), events)
	if err != nil {
		tb.Fatalf("ingest: %v", err)
	}
	return st
}

// Event makes an event at client time t (seconds); received_at is later, so
// a wrong choice of event time shows.
func Event(id string, t int64, session, category, name string) *eventpb.Event {
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

// Dataset makes n events with few distinct sessions, categories, names and
// times, so that filters combine and times tie. Some events have no client
// time, some have empty filter values.
func Dataset(n int, seed uint64) []*eventpb.Event {
	r := rand.New(rand.NewPCG(seed, seed))
	pick := func(vals ...string) string { return vals[r.IntN(len(vals))] }
	events := make([]*eventpb.Event, n)
	for i := range events {
		ev := Event(fmt.Sprintf("id-%05d-%d", i, r.IntN(1000)), 1_700_000_000+int64(r.IntN(n/3+1)),
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

// Reference answers q over events the slow way: filter, then sort newest
// first with ties by id.
func Reference(events []*eventpb.Event, q store.Query) []string {
	var match []*eventpb.Event
	for _, ev := range events {
		if q.Matches(ev) {
			match = append(match, ev)
		}
	}
	slices.SortFunc(match, func(a, b *eventpb.Event) int {
		return cmp.Or(cmp.Compare(store.EventTime(b), store.EventTime(a)), cmp.Compare(a.GetId(), b.GetId()))
	})
	return IDs(match)
}

// QueryAll pages through q and returns the ids in order. It fails on an
// empty page that is not the first one (a cursor must only be handed out
// when there is more) and on pages of the wrong size.
func QueryAll(tb testing.TB, s store.Store, q store.Query) []string {
	tb.Helper()
	var all []string
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
		all = append(all, IDs(res.Events)...)
		if res.Next == "" {
			return all
		}
		q.Cursor = res.Next
	}
}

// CheckStored checks that s holds exactly events, stored once each: every
// one by Get, the queries of a session and of everything, Count, the Stats
// of all time, and Ingest, which finds each of them a duplicate and changes
// nothing.
func CheckStored(tb testing.TB, s store.Store, events []*eventpb.Event) {
	tb.Helper()
	for _, want := range events {
		got, err := s.Get(context.Background(), want.GetId())
		if err != nil {
			tb.Fatalf("get %q: %v", want.GetId(), err)
		}
		equalEvent(tb, got, want)
	}
	for _, q := range []store.Query{{Session: "s1", Limit: 9}, {Limit: 97}} {
		if got, want := QueryAll(tb, s, q), Reference(events, q); !slices.Equal(got, want) {
			tb.Fatalf("query %+v: %d ids, want %d", q, len(got), len(want))
		}
	}
	if n, err := s.Count(context.Background(), store.Query{}); err != nil || n != len(events) {
		tb.Fatalf("count = %d, %v; want %d", n, err, len(events))
	}
	CheckStats(tb, s, events, [][2]time.Time{{}})
	if st := Ingest(tb, s, events...); st.Stored != 0 || st.Duplicates != len(events) {
		tb.Fatalf("ingesting the stored events again: %+v, want all duplicates", st)
	}
	CheckStats(tb, s, events, [][2]time.Time{{}})
}

func equalEvent(tb testing.TB, got, want *eventpb.Event) {
	tb.Helper()
	if !proto.Equal(got, want) {
		tb.Fatalf("event mismatch:\n got %v\nwant %v", got, want)
	}
}

// IDs returns the events' ids, in order.
func IDs(events []*eventpb.Event) []string {
	out := make([]string, len(events))
	for i, ev := range events {
		out[i] = ev.GetId()
	}
	return out
}
