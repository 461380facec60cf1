package pebble

import (
	"context"
	"slices"
	"strings"
	"testing"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/aggregator/internal/store/storetest"
)

// TestLayoutVersion: a database of an unknown layout is refused.
func TestLayoutVersion(t *testing.T) {
	fs := vfs.NewMem()
	s := openAt(t, Options{Dir: "db", FS: fs})
	rawSet(t, s, []byte(layoutKey), []byte("99"))
	s.Close()
	if _, err := Open(Options{Dir: "db", FS: fs, Logger: quiet}); err == nil || !strings.Contains(err.Error(), "layout") {
		t.Fatalf("open with unknown layout: err = %v", err)
	}
}

// TestMigrateRollups opens a database of layout 1 (events and indexes, no
// rollups) and checks that Open builds the rollups.
func TestMigrateRollups(t *testing.T) {
	events := storetest.Spread(500, 41)
	for _, interrupted := range []bool{false, true} {
		fs := vfs.NewMem()
		s := openAt(t, Options{Dir: "db", FS: fs})
		storetest.Ingest(t, s, events...)
		// Back to layout 1: no rollups. An interrupted migration left some
		// wrong counts behind.
		if err := s.db.DeleteRange([]byte{ksRollup}, []byte{ksRollup + 1}, pebbledb.Sync); err != nil {
			t.Fatal(err)
		}
		if interrupted {
			rawSet(t, s, rollupKey(nil, store.Hour, 5, "view", "home"), []byte{0, 0, 0, 0, 0, 0, 0, 9})
		}
		rawSet(t, s, []byte(layoutKey), []byte("1"))
		s.Close()

		s = openAt(t, Options{Dir: "db", FS: fs})
		v, closer, err := s.db.Get([]byte(layoutKey))
		if err != nil {
			t.Fatal(err)
		}
		if string(v) != layoutVersion {
			t.Fatalf("layout after migration = %q", v)
		}
		closer.Close()
		storetest.CheckStored(t, s, events)
		if n, err := s.Count(context.Background(), store.Query{Category: "view"}); err != nil || n != len(storetest.Reference(events, store.Query{Category: "view"})) {
			t.Fatalf("count after migration = %d, %v", n, err)
		}
		s.Close()
	}
}

// TestMigrateFeed opens a database of layout 2 (no feed, no store id): Open
// builds the feed, oldest event first, and later ingests follow it.
func TestMigrateFeed(t *testing.T) {
	fs := vfs.NewMem()
	s := openAt(t, Options{Dir: "db", FS: fs})
	storetest.Ingest(t, s, storetest.Event("late", 50, "s", "c", "n"), storetest.Event("early", 10, "s", "c", "n"), storetest.Event("mid", 30, "s", "c", "n"))
	if err := s.db.DeleteRange([]byte{ksFeed}, []byte{ksFeed + 1}, pebbledb.Sync); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Delete([]byte(storeIDKey), pebbledb.Sync); err != nil {
		t.Fatal(err)
	}
	rawSet(t, s, []byte(layoutKey), []byte("2"))
	s.Close()

	s = openAt(t, Options{Dir: "db", FS: fs})
	storetest.Ingest(t, s, storetest.Event("new", 1, "s", "c", "n"))
	if got, _ := storetest.ExportAll(t, s, store.ExportQuery{}); !slices.Equal(got, []string{"early", "mid", "late", "new"}) {
		t.Fatalf("feed after migration: %v", got)
	}
}
