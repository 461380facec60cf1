package clickhouse

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/aggregator/internal/store/storetest"
	"github.com/edgetrack/edgetrack/internal/dbtest"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// TestFeedOfSeveralWriters: aggregators whose clocks disagree write to one
// database, and a reader follows the feed through one of them. The feed
// passes no event while another writer may still store events before it:
// the events of the aggregator whose clock is an hour ahead wait for the
// other's; the other, killed, holds the feed back for WriterTimeout; an
// aggregator that starts later stores after everything the feed passed.
// Every event stored reaches the reader once.
func TestFeedOfSeveralWriters(t *testing.T) {
	dsn := dbtest.ClickHouse(t)
	opts := Options{DSN: dsn, Logger: quiet, PollInterval: 50 * time.Millisecond, WriterTimeout: 2 * time.Second}
	ahead := openWith(t, opts)
	ahead.clockSkew.Store(int64(time.Hour))
	behind := openWith(t, opts)

	batch := func(name string) []*eventpb.Event {
		evs := make([]*eventpb.Event, 20)
		for i := range evs {
			evs[i] = storetest.Event(fmt.Sprintf("%s-%02d", name, i), int64(i), "s", "c", name)
		}
		return evs
	}
	var feed []string
	cursor := ""
	read := func() []string {
		got, next := storetest.ExportAll(t, ahead, store.ExportQuery{After: cursor, Limit: 7})
		feed, cursor = append(feed, got...), next
		return got
	}
	// awaitFeed reads until the feed holds want more ids, and fails if it
	// holds others.
	awaitFeed := func(what string, want []*eventpb.Event) {
		t.Helper()
		var got []string
		for deadline := time.Now().Add(30 * time.Second); len(got) < len(want) && time.Now().Before(deadline); {
			got = append(got, read()...)
			time.Sleep(20 * time.Millisecond)
		}
		if !slices.Equal(got, storetest.IDs(want)) {
			t.Fatalf("%s: the feed brought %v, want %v", what, got, storetest.IDs(want))
		}
	}

	early := batch("ahead")
	storetest.Ingest(t, ahead, early...)
	// behind's mark is an hour below early's seqs.
	for range 5 {
		if got := read(); len(got) != 0 {
			t.Fatalf("the feed passed %v while the aggregator whose clock is behind could store before them", got)
		}
		time.Sleep(2 * opts.PollInterval)
	}
	late := batch("behind")
	storetest.Ingest(t, behind, late...)
	awaitFeed("events of the aggregator whose clock is behind", late)

	// Killed: it records nothing more, not even that it is closed.
	behind.marks.stop()
	behind.marks.wg.Wait()
	behind.closeConns()
	awaitFeed("after the other writer's timeout", early)

	// A writer that starts now gives out seqs above all the feed passed,
	// though its clock is an hour behind them.
	joined := openWith(t, opts)
	third := batch("joined")
	storetest.Ingest(t, joined, third...)
	awaitFeed("events of a writer that started after the feed passed others", third)

	// Through the newest writer, with ahead closed, the whole feed at once,
	// in the order it was read.
	if err := ahead.Close(); err != nil {
		t.Fatal(err)
	}
	var whole []string
	for deadline := time.Now().Add(30 * time.Second); len(whole) < len(feed) && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		whole, _ = storetest.ExportAll(t, joined, store.ExportQuery{})
	}
	if !slices.Equal(whole, feed) {
		t.Fatalf("the feed from its start: %v, want %v", whole, feed)
	}
}

func openWith(tb testing.TB, opts Options) *Store {
	tb.Helper()
	s, err := Open(context.Background(), opts)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}
