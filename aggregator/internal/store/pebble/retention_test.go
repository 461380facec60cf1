package pebble

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/aggregator/internal/store/storetest"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// TestExpireLeavesNoKeys: after a pass, every keyspace holds exactly the
// keys of the kept events (no index entry, rollup cell or event of a removed
// one), except the feed, which keeps the entries of removed events that
// come after the first kept one, and always its last entry.
func TestExpireLeavesNoKeys(t *testing.T) {
	dir := t.TempDir()
	s := openAt(t, Options{Dir: dir})
	base := time.Unix(1_700_000_000, 0)
	var events []*eventpb.Event
	for i := range 300 {
		// Oldest first, so the removed ones lead the feed; the last
		// ingested is old again, and of a category kept forever.
		cat := []string{"view", "click", ""}[i%3]
		events = append(events, storetest.Event(string(rune('a'+i%26))+string(rune('a'+i/26)), base.Unix()+int64(i)*60, "s1", cat, "home"))
	}
	events = append(events, storetest.Event("zz-old-buy", base.Unix(), "s2", "buy", "cart"))
	storetest.Ingest(t, s, events...)
	r := store.Retention{Default: time.Hour, Categories: map[string]time.Duration{"buy": 0}}
	now := base.Add(300*time.Minute + 30*time.Minute) // before minute 270 expires
	var kept []*eventpb.Event
	for _, ev := range events {
		if !r.Expired(ev, now) {
			kept = append(kept, ev)
		}
	}
	st, err := s.Expire(context.Background(), r, now)
	if err != nil {
		t.Fatal(err)
	}
	if st.Removed != len(events)-len(kept) {
		t.Fatalf("removed %d, want %d", st.Removed, len(events)-len(kept))
	}
	got, want := countKeys(t, s), wantKeys(kept)
	// The feed: entries after the first kept event stay (here the kept
	// events are 270..299 and the last one), so 30 + 1.
	if got[ksFeed] != len(kept) {
		t.Errorf("feed has %d entries, want %d (its head of removed events trimmed)", got[ksFeed], len(kept))
	}
	delete(got, ksFeed)
	delete(want, ksFeed)
	if !maps.Equal(got, want) {
		t.Fatalf("keys per keyspace after expiry %v, want %v", got, want)
	}

	// Everything expires: the feed keeps its last entry, so that after a
	// restart the next event gets a new sequence number and a reader with
	// an old cursor sees it.
	_, end := storetest.ExportAll(t, s, store.ExportQuery{})
	all := store.Retention{Default: time.Nanosecond}
	if _, err := s.Expire(context.Background(), all, now.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, s); n[ksFeed] != 1 || n[ksEvent] != 0 || n[ksTime] != 0 || n[ksRollup] != 0 {
		t.Fatalf("after everything expired: %v, want the last feed entry only", n)
	}
	s.Close()
	s = openAt(t, Options{Dir: dir})
	storetest.Ingest(t, s, storetest.Event("after", now.Unix(), "s1", "view", "home"))
	if ids, _ := storetest.ExportAll(t, s, store.ExportQuery{After: end}); len(ids) != 1 || ids[0] != "after" {
		t.Fatalf("feed after the old cursor: %v, want [after]", ids)
	}
}
