package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/internal/subject"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// eraser returns s as a store.Eraser, or skips the test.
func eraser(t *testing.T, s store.Store) store.Eraser {
	t.Helper()
	e, ok := s.(store.Eraser)
	if !ok {
		t.Skip("this backend does not implement store.Eraser")
	}
	return e
}

// subjectDataset is Dataset with users and devices in the events' data,
// some of them numbers, as Hamustro's user_id is.
func subjectDataset(n int, seed uint64) []*eventpb.Event {
	events := Dataset(n, seed)
	for i, ev := range events {
		switch i % 4 {
		case 0:
			ev.Data = fmt.Appendf(nil, `{"user_id":"u%d","device_id":"d%d","k":%d}`, i%5, i%3, i)
		case 1:
			ev.Data = fmt.Appendf(nil, `{"user_id":%d,"k":%d}`, i%5, i)
		case 2:
			ev.Data = fmt.Appendf(nil, `{"nested":{"user_id":"u1"},"k":%d}`, i)
		}
	}
	return events
}

// CheckErased checks that s holds exactly kept and nothing of gone, by
// every way of reading: Get, queries by session, category and name and of
// everything, Count, Stats, IDPrefix and the feed from its start.
func CheckErased(tb testing.TB, s store.Store, kept, gone []*eventpb.Event) {
	tb.Helper()
	for _, ev := range gone {
		if _, err := s.Get(context.Background(), ev.GetId()); err != store.ErrNotFound {
			tb.Fatalf("get of erased %q: %v, want ErrNotFound", ev.GetId(), err)
		}
	}
	queries := []store.Query{{Limit: 50}, {Category: "view", Limit: 7}, {Name: "cart", Limit: 9}, {Category: "click", Name: "home"}}
	for _, sess := range []string{"s0", "s1", "s2", "s3", "s4", "s5"} {
		queries = append(queries, store.Query{Session: sess, Limit: 11}, store.Query{Session: sess, Category: "buy"})
	}
	for _, q := range queries {
		if got, want := QueryAll(tb, s, q), Reference(kept, q); !slices.Equal(got, want) {
			tb.Fatalf("query %+v after the erasure: %d ids, want %d", q, len(got), len(want))
		}
		n, err := s.Count(context.Background(), q)
		if want := len(Reference(kept, q)); err != nil || n != want {
			tb.Fatalf("count %+v after the erasure = %d, %v; want %d", q, n, err, want)
		}
	}
	CheckStats(tb, s, kept, [][2]time.Time{{}, {time.Unix(1_700_000_000, 0), time.Unix(1_700_000_090, 0)}})
	got, err := s.IDPrefix(context.Background(), "id-", store.MaxLimit)
	if err != nil {
		tb.Fatal(err)
	}
	want := IDs(kept)
	slices.Sort(want)
	if len(want) > store.MaxLimit {
		want = want[:store.MaxLimit]
	}
	if !slices.Equal(IDs(got), want) {
		tb.Fatalf("IDPrefix after the erasure: %d ids, want %d", len(got), len(want))
	}
	var fed []string
	fed, _ = ExportAll(tb, s, store.ExportQuery{Limit: 64})
	if want := IDs(kept); !slices.Equal(fed, want) {
		tb.Fatalf("the feed after the erasure: %d ids, want %d in the order stored", len(fed), len(want))
	}
}

// Split returns the events of sub and the others, each in the order
// given.
func Split(events []*eventpb.Event, sub store.Subject) (others, of []*eventpb.Event) {
	for _, ev := range events {
		if store.SubjectMatches(sub, ev) {
			of = append(of, ev)
		} else {
			others = append(others, ev)
		}
	}
	return others, of
}

// testErase erases one subject of each kind in turn, and checks after each
// that exactly its events are gone from every answer, that Erase returned
// each of their ids once, and that nothing comes back after a restart.
func testErase(t *testing.T, open Open) {
	s, reopen := open(t)
	e := eraser(t, s)
	kept := subjectDataset(900, 41)
	Ingest(t, s, kept[:500]...)
	before, err := s.Export(context.Background(), store.ExportQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	Ingest(t, s, kept[500:]...)

	for _, sub := range []store.Subject{
		{Kind: subject.Session, Value: "s2"},
		{Kind: subject.User, Value: "u3"},
		{Kind: subject.User, Value: "4"}, // a number in the data
		{Kind: subject.Device, Value: "d1"},
		{Kind: subject.UID, Value: "s4"},
		{Kind: subject.User, Value: "nobody"},
	} {
		var gone []*eventpb.Event
		kept, gone = Split(kept, sub)
		got, err := e.Erase(context.Background(), sub)
		if err != nil {
			t.Fatalf("erase %s: %v", sub, err)
		}
		slices.Sort(got)
		want := IDs(gone)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("erase %s returned %d ids, want %d", sub, len(got), len(want))
		}
		CheckErased(t, s, kept, gone)
		if again, err := e.Erase(context.Background(), sub); err != nil || len(again) != 0 {
			t.Fatalf("erasing %s again: %d ids, %v; want none", sub, len(again), err)
		}
	}
	// A cursor taken before the erasures continues with what is left.
	rest, _ := ExportAll(t, s, store.ExportQuery{After: before.Next, Limit: 64})
	var want []string
	for _, id := range IDs(kept) {
		if !slices.Contains(IDs(before.Events), id) {
			want = append(want, id)
		}
	}
	if !slices.Equal(rest, want) {
		t.Fatalf("the feed after a cursor of before the erasures: %d ids, want %d", len(rest), len(want))
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = reopen()
	CheckErased(t, s, kept, nil)
	CheckStored(t, s, kept)

	for _, bad := range []store.Subject{{Kind: subject.Kind("email"), Value: "x"}, {Kind: subject.Session}, {Kind: subject.User, Value: "a\x00b"}} {
		if _, err := eraser(t, s).Erase(context.Background(), bad); err == nil {
			t.Errorf("erase of %q accepted", bad)
		}
	}
}

// testEraseConcurrent runs erasures of the same subject at the same time,
// beside ingest of other subjects' events: each erased id is returned by
// exactly one of them, and every event of the others is stored.
func testEraseConcurrent(t *testing.T, open Open) {
	s := openEmpty(t, open)
	e := eraser(t, s)
	events := subjectDataset(1200, 43)
	sub := store.Subject{Kind: subject.Session, Value: "s1"}
	others, of := Split(events, sub)
	Ingest(t, s, events[:600]...)

	// Later events of the subject are not sent any more (the aggregator
	// stops them before it erases); the others keep arriving.
	var late []*eventpb.Event
	for _, ev := range events[600:] {
		if !store.SubjectMatches(sub, ev) {
			late = append(late, ev)
		}
	}
	got := EraseAtOnce(t, sub, func() error {
		for i := 0; i < len(late); i += 50 {
			if _, err := s.Ingest(context.Background(), late[i:min(i+50, len(late))]); err != nil {
				return err
			}
		}
		return nil
	}, e, e, e)
	var want []string
	for _, ev := range of {
		if slices.Contains(IDs(events[:600]), ev.GetId()) {
			want = append(want, ev.GetId())
		}
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("concurrent erasures returned %d ids in all, want each of the %d once", len(got), len(want))
	}
	CheckErased(t, s, others, of)
}

// EraseAtOnce runs an erasure of sub by each of erasers at the same time,
// and also beside them when it is not nil, and returns the ids the
// erasures returned, all together and sorted. It fails the test on an
// error of any.
func EraseAtOnce(tb testing.TB, sub store.Subject, also func() error, erasers ...store.Eraser) []string {
	tb.Helper()
	var wg sync.WaitGroup
	results := make([][]string, len(erasers))
	errs := make([]error, len(erasers)+1)
	for i, e := range erasers {
		wg.Go(func() { results[i], errs[i] = e.Erase(context.Background(), sub) })
	}
	if also != nil {
		wg.Go(func() { errs[len(erasers)] = also() })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			tb.Fatal(err)
		}
	}
	got := slices.Concat(results...)
	slices.Sort(got)
	return got
}

// testEraseFeedEnd erases the subject of the last events stored, so that
// the feed's end is an erased event's: a reader at the end gets nothing of
// them, and after a restart the next event stored comes after every cursor
// given out before.
func testEraseFeedEnd(t *testing.T, open Open) {
	s, reopen := open(t)
	e := eraser(t, s)
	other := Event("id-a-other", 1_700_000_000, "other", "view", "home")
	Ingest(t, s, other, Event("id-b-victim", 1_700_000_001, "victim", "view", "home"))
	_, mid := ExportAll(t, s, store.ExportQuery{})
	Ingest(t, s, Event("id-c-victim", 1_700_000_002, "victim", "click", "home"))
	_, end := ExportAll(t, s, store.ExportQuery{})
	got, err := e.Erase(context.Background(), store.Subject{Kind: subject.Session, Value: "victim"})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Sort(got); !slices.Equal(got, []string{"id-b-victim", "id-c-victim"}) {
		t.Fatalf("erased %q, want the victim's two events", got)
	}
	if ids, _ := ExportAll(t, s, store.ExportQuery{After: mid}); len(ids) != 0 {
		t.Fatalf("the feed after a cursor before the last, erased event: %q, want nothing", ids)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = reopen()
	CheckErased(t, s, []*eventpb.Event{other}, nil)
	late := Event("id-d-other", 1_700_000_003, "other", "view", "home")
	Ingest(t, s, late)
	for _, c := range []string{mid, end} {
		if ids, _ := ExportAll(t, s, store.ExportQuery{After: c}); !slices.Equal(ids, []string{"id-d-other"}) {
			t.Fatalf("the feed after a cursor of before the erasure, across a restart: %q, want the new event only", ids)
		}
	}
	CheckErased(t, s, []*eventpb.Event{other, late}, nil)
}
