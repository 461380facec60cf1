package erasure

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/aggregator/internal/store/pebble"
	"github.com/edgetrack/edgetrack/internal/dbtest"
	"github.com/edgetrack/edgetrack/internal/subject"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// TestClickHouseState: the state in ClickHouse takes in the suppressions
// of an audit log left in the directory (once), numbers erasures through
// two instances alike, and removes tombstones past their retention for
// both.
func TestClickHouseState(t *testing.T) {
	dsn := dbtest.ClickHouse(t)
	dir := t.TempDir()
	st, err := pebble.Open(pebble.Options{Dir: filepath.Join(dir, "store"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	open := func(dsn string) *Erasures {
		t.Helper()
		e, err := Open(Options{Dir: filepath.Join(dir, "erasure"), Store: st, ClickHouseDSN: dsn, PollInterval: 10 * time.Millisecond,
			Now: func() time.Time { return now }, TombstoneRetention: 24 * time.Hour, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	ctx := context.Background()
	local := open("")
	if _, err := local.Erase(ctx, subject.Subject{Kind: subject.UID, Value: "old"}, "op"); err != nil {
		t.Fatal(err)
	}
	local.Close()

	a := open(dsn)
	b := open(dsn) // the suppression is in the database now: not added again
	for _, e := range []*Erasures{a, b} {
		if l := e.List(ctx, 0, 0); l.Version != 1 || len(l.Subjects) != 1 {
			t.Fatalf("suppression list %+v, want the subject of the local audit log, once", l)
		}
	}
	if _, err := st.Ingest(ctx, []*eventpb.Event{{Id: "n1", Session: "new", ReceivedAt: now.UnixNano()}}); err != nil {
		t.Fatal(err)
	}
	res, err := a.Erase(ctx, subject.Subject{Kind: subject.Session, Value: "new"}, "op")
	if err != nil || res.Seq != 2 || res.Erased != 1 {
		t.Fatalf("erase through a: %+v, %v; want seq 2, one event", res, err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if page, err := b.Tombstones(0, 10); err == nil && len(page.Erasures) == 1 && page.Erasures[0].IDs[0] == "n1" && page.Next == 2 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("b's tombstones %+v, %v; want a's", page, err)
		}
	}
	now = now.Add(25 * time.Hour)
	// Each sweeps what its audit log says is old; b may not have followed
	// a's erase record yet (it follows the log once a poll), so each sweeps
	// until its readers are told the tombstone is gone.
	for _, e := range []*Erasures{a, b, open(dsn)} {
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
			if err := e.Sweep(); err != nil {
				t.Fatal(err)
			}
			_, err := e.Tombstones(0, 10)
			if errors.Is(err, ErrTombstonesGone) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a reader before a removed tombstone: %v, want ErrTombstonesGone", err)
			}
		}
		if page, err := e.Tombstones(2, 10); err != nil || len(page.Erasures) != 0 || page.Next != 2 {
			t.Fatalf("a reader past it: %+v, %v", page, err)
		}
	}
}
