package pebble

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/aggregator/internal/store/storetest"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// TestExpireLeavesNoKeys: after a pass, every keyspace holds exactly the
// keys of the kept events (no index entry, rollup cell or event of a removed
// one), except the feed, which keeps the entries of removed events that
// come after the first kept one, and always its last entry.
func TestExpireLeavesNoKeys(t *testing.T) {
	s := openAt(t, Options{Dir: t.TempDir()})
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

	// Everything expires: the feed keeps its last entry, from which Open
	// reads the last sequence number given out (that the next event comes
	// after every cursor, storetest checks: RetentionAll).
	all := store.Retention{Default: time.Nanosecond}
	if _, err := s.Expire(context.Background(), all, now.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, s); n[ksFeed] != 1 || n[ksEvent] != 0 || n[ksTime] != 0 || n[ksRollup] != 0 {
		t.Fatalf("after everything expired: %v, want the last feed entry only", n)
	}
}

// TestExpireCrash takes crash images of the filesystem (only what was
// synced) while a pass runs: in every one, each event is stored whole or
// removed whole — its keys, its rollup counts and Count agree with the set
// of events still stored — no kept event is missing, and a pass on the
// image finishes the job.
func TestExpireCrash(t *testing.T) {
	fs := vfs.NewCrashableMem()
	s := openAt(t, Options{Dir: "db", FS: fs})
	base := time.Unix(1_700_000_000, 0)
	var events []*eventpb.Event
	for i := range 4000 {
		cat := []string{"view", "click", ""}[i%3]
		events = append(events, storetest.Event(fmt.Sprintf("ev%05d", i), base.Unix()+int64(i), []string{"s1", "s2"}[i%2], cat, "home"))
	}
	for i := 0; i < len(events); i += 500 {
		storetest.Ingest(t, s, events[i:i+500]...)
	}
	r := store.Retention{Default: time.Hour, Categories: map[string]time.Duration{"click": 0}}
	now := base.Add(time.Hour + 3000*time.Second) // keeps the newest 1000 and every click
	var kept []*eventpb.Event
	for _, ev := range events {
		if !r.Expired(ev, now) {
			kept = append(kept, ev)
		}
	}

	done := make(chan error, 1)
	go func() {
		_, err := s.Expire(context.Background(), r, now)
		done <- err
	}()
	// An image each time the number of events changes (a batch
	// committed), and one at the end.
	var images []vfs.FS
	last := -1
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			running = false
		default:
		}
		if n := countKeys(t, s)[ksEvent]; n != last || !running {
			last = n
			images = append(images, fs.CrashClone(vfs.CrashCloneCfg{}))
		}
	}
	t.Logf("%d crash images taken during the pass", len(images))
	for i, img := range images {
		c := openAt(t, Options{Dir: "db", FS: img})
		var stored []*eventpb.Event
		for _, ev := range events {
			if _, err := c.Get(context.Background(), ev.GetId()); err == nil {
				stored = append(stored, ev)
			} else if !r.Expired(ev, now) {
				t.Fatalf("image %d: kept event %s is missing: %v", i, ev.GetId(), err)
			}
		}
		got, want := countKeys(t, c), wantKeys(stored)
		delete(got, ksFeed)
		delete(want, ksFeed)
		if !maps.Equal(got, want) {
			t.Fatalf("image %d: keys %v, want those of the %d events stored %v", i, got, len(stored), want)
		}
		if n, err := c.Count(context.Background(), store.Query{}); err != nil || n != len(stored) {
			t.Fatalf("image %d: count %d, %v; want %d", i, n, err, len(stored))
		}
		storetest.CheckStats(t, c, stored, [][2]time.Time{{}})
		if _, err := c.Expire(context.Background(), r, now); err != nil {
			t.Fatal(err)
		}
		got, want = countKeys(t, c), wantKeys(kept)
		delete(got, ksFeed)
		delete(want, ksFeed)
		if !maps.Equal(got, want) {
			t.Fatalf("image %d after another pass: keys %v, want %v", i, got, want)
		}
		c.Close()
	}
}
