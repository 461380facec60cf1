package erasure

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/aggregator/internal/store/pebble"
	"github.com/edgetrack/edgetrack/internal/subject"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

var quiet = slog.New(slog.DiscardHandler)

// TestTombstoneRetention: tombstones older than the retention are removed;
// a reader that had not seen them gets ErrTombstonesGone, also after a
// reopen, and a reader past them goes on.
func TestTombstoneRetention(t *testing.T) {
	dir := t.TempDir()
	st, err := pebble.Open(pebble.Options{Dir: filepath.Join(dir, "store"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	open := func() *Erasures {
		e, err := Open(Options{Dir: filepath.Join(dir, "erasure"), Store: st, Now: func() time.Time { return now }, TombstoneRetention: 24 * time.Hour, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	e := open()
	ingest := func(id, session string) {
		if _, err := st.Ingest(context.Background(), []*eventpb.Event{{Id: id, Session: session, ReceivedAt: now.UnixNano()}}); err != nil {
			t.Fatal(err)
		}
	}
	ingest("a1", "a")
	ingest("b1", "b")
	if _, err := e.Erase(context.Background(), subject.Subject{Kind: subject.Session, Value: "a"}, "op"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(23 * time.Hour)
	if _, err := e.Erase(context.Background(), subject.Subject{Kind: subject.UID, Value: "b"}, "op"); err != nil {
		t.Fatal(err)
	}
	page, err := e.Tombstones(0, 10)
	if err != nil || len(page.Erasures) != 2 || page.Next != 2 || page.Erasures[0].IDs[0] != "a1" {
		t.Fatalf("tombstones: %+v, %v", page, err)
	}
	now = now.Add(2 * time.Hour) // the first is 25h old, the second 2h
	if err := e.Sweep(); err != nil {
		t.Fatal(err)
	}
	for _, e := range []*Erasures{e, func() *Erasures { e.Close(); return open() }()} {
		if _, err := e.Tombstones(0, 10); !errors.Is(err, ErrTombstonesGone) {
			t.Fatalf("a reader before a removed tombstone: %v, want ErrTombstonesGone", err)
		}
		page, err := e.Tombstones(1, 10)
		if err != nil || len(page.Erasures) != 1 || page.Erasures[0].IDs[0] != "b1" {
			t.Fatalf("a reader past the removed tombstone: %+v, %v", page, err)
		}
		if _, err := e.Tombstones(3, 10); err == nil || errors.Is(err, ErrTombstonesGone) {
			t.Fatalf("a cursor past the last erasure: %v, want an error", err)
		}
		if l := e.List(context.Background(), 0, 0); l.Version != 2 || len(l.Subjects) != 2 {
			t.Fatalf("suppression list %+v, want both subjects", l)
		}
	}
	if _, err := st.Get(context.Background(), "b1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("b1 after erasing uid b: %v", err)
	}
}

// TestIngestMapsRejections: with a subject suppressed, the events of others
// reach the store and rejections keep their index in the batch given.
func TestIngestMapsRejections(t *testing.T) {
	st, err := pebble.Open(pebble.Options{Dir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e, err := Open(Options{Dir: t.TempDir(), Store: st, TombstoneRetention: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.Erase(context.Background(), subject.Subject{Kind: subject.User, Value: "7"}, "op"); err != nil {
		t.Fatal(err)
	}
	events := []*eventpb.Event{
		{Id: "x", Data: []byte(`{"user_id":7}`)},
		{Id: "", Session: "s"},
		{Id: "y", Data: []byte(`{"user_id":8}`)},
		{Id: "z", Data: []byte(`{"user_id":"7"}`)},
		{Id: "w\x00"},
	}
	st2, dropped, err := e.Ingest(events, func(evs []*eventpb.Event) (store.IngestStats, error) { return st.Ingest(context.Background(), evs) })
	if err != nil {
		t.Fatal(err)
	}
	if dropped != 2 || st2.Stored != 1 || len(st2.Rejected) != 2 || st2.Rejected[0].Index != 1 || st2.Rejected[1].Index != 4 {
		t.Fatalf("dropped %d, stats %+v: want 2 dropped, y stored, rejections at 1 and 4", dropped, st2)
	}
}
