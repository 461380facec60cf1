package syncer

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
)

// TestSQLErasures: erasures at the aggregator reach each database: the
// erased session's rows and the erased uid's cookie-sync match are deleted
// whether the sync wrote them before the erasure or not, everyone else's
// rows stay, and the erasure cursor makes a rerun do nothing.
func TestSQLErasures(t *testing.T) {
	targets(t, func(t *testing.T, newDB func(*testing.T) database) {
		db := newDB(t)
		agg := startAggregator(t, t.TempDir())
		agg.ingest(testEvents(0, 50)...) // sessions s0..s4
		agg.ingest(matchEvent("adx", "p1", "u1", 10), matchEvent("adx", "p2", "u2", 11))
		syncOnce(t, agg, db.URL, Filters{}, 7)
		checkRows(t, db.DB, agg.allEvents())

		// Erased after the first sync: deleted from the target by the next.
		agg.Erase("session_id", "s1")
		agg.Erase("uid", "u1")
		agg.Erase("user_id", "nobody") // removes nothing; the cursor passes it
		// Stored and erased between two syncs: never written.
		agg.ingest(testEvents(50, 10)...)
		agg.Erase("session_id", "s2")
		st := syncOnce(t, agg, db.URL, Filters{}, 7)
		if st.Erasures != 3 || st.Erased != 10+1+12 {
			t.Errorf("the sync applied %d erasures of %d events, want 3 of 23 (s1's 10, u1's match, s2's 12)", st.Erasures, st.Erased)
		}
		checkRows(t, db.DB, agg.allEvents())
		var uids []string
		rs, err := db.DB.Query("SELECT uid FROM cookie_sync_matches")
		if err != nil {
			t.Fatal(err)
		}
		for rs.Next() {
			var u string
			rs.Scan(&u)
			uids = append(uids, u)
		}
		rs.Close()
		if !slices.Equal(uids, []string{"u2"}) {
			t.Errorf("matches of %v, want only u2's", uids)
		}
		if st := syncOnce(t, agg, db.URL, Filters{}, 7); st.Erasures != 0 || st.Events != 0 {
			t.Errorf("a rerun: %+v, want nothing", st)
		}
	})
}

// TestWebhookErasures: a webhook target receives each erasure as
// {"erasures": [{"seq", "event_ids"}]}, signed and retried like events, and
// keeps its erasure cursor in the state directory.
func TestWebhookErasures(t *testing.T) {
	agg := startAggregator(t, t.TempDir())
	agg.ingest(testEvents(0, 10)...)
	var (
		mu     sync.Mutex
		erased [][]string
		events int
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body struct {
			Events   []Event
			Erasures []struct {
				Seq      uint64   `json:"seq"`
				EventIDs []string `json:"event_ids"`
			}
		}
		if err := json.Unmarshal(b, &body); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		events += len(body.Events)
		for _, e := range body.Erasures {
			erased = append(erased, e.EventIDs)
		}
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	state := t.TempDir()
	o := Options{From: agg.url, Token: queryToken, Target: hook.URL, StateDir: state, Once: true, Logger: quiet}
	syncWith(t, o, nil)
	agg.Erase("session_id", "s3")
	if st := syncWith(t, o, nil); st.Erasures != 1 || st.Erased != 2 {
		t.Fatalf("second sync: %+v, want one erasure of 2 events", st)
	}
	if st := syncWith(t, o, nil); st.Erasures != 0 {
		t.Fatalf("a rerun applied %d erasures again", st.Erasures)
	}
	mu.Lock()
	defer mu.Unlock()
	if events != 10 || len(erased) != 1 || len(erased[0]) != 2 {
		t.Fatalf("the webhook got %d events and erasures %v, want 10 and one of s3's 2 ids", events, erased)
	}
	for _, id := range erased[0] {
		if id != "h:s3:3" && id != "h:s3:8" {
			t.Errorf("erased id %s is not one of s3's", id)
		}
	}
}
