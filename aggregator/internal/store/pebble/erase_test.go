package pebble

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/edgetrack/edgetrack/aggregator/internal/store/storetest"
	"github.com/edgetrack/edgetrack/internal/subject"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// TestEraseLeavesNoTrace: after an erasure no live key or value of the
// database holds the subject's session or its events' ids — not the
// primary keys, not an index, not the feed, also when the subject's is the
// feed's last entry. (That the feed's numbering goes on after it, across
// a restart, storetest checks: EraseFeedEnd.)
func TestEraseLeavesNoTrace(t *testing.T) {
	s := openAt(t, Options{Dir: t.TempDir()})
	var events []*eventpb.Event
	for i := range 20 {
		sess := "victim-7f3c"
		if i%2 == 1 {
			sess = "other"
		}
		events = append(events, storetest.Event(fmt.Sprintf("h:%s:%d", sess, i), int64(1_700_000_000+i), sess, "view", "home"))
	}
	storetest.Ingest(t, s, events...)
	// The last event stored is the victim's: its feed entry is the last.
	storetest.Ingest(t, s, storetest.Event("h:victim-7f3c:last", 1_700_000_100, "victim-7f3c", "view", "home"))
	if _, err := s.Erase(context.Background(), subject.Subject{Kind: subject.Session, Value: "victim-7f3c"}); err != nil {
		t.Fatal(err)
	}
	it, err := s.db.NewIter(&pebbledb.IterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		if bytes.Contains(it.Key(), []byte("victim")) || bytes.Contains(it.Value(), []byte("victim")) {
			t.Errorf("key %q (value %q) still holds the erased session", it.Key(), it.Value())
		}
	}
	it.Close()
}
