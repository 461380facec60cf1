package syncer

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// receiver is a loopback webhook that verifies signatures, fails the
// attempts fail says to, and counts deliveries per event.
type receiver struct {
	mu        sync.Mutex
	calls     int
	delivered map[string]int    // event id → deliveries answered 2xx
	ids       map[string]string // webhook-id → first body seen
	states    map[string]string // event id → state
	badSig    int
	fail      func(call int, w http.ResponseWriter) bool
}

func newReceiver(t *testing.T, fail func(call int, w http.ResponseWriter) bool) (*receiver, string) {
	r := &receiver{delivered: map[string]int{}, ids: map[string]string{}, states: map[string]string{}, fail: fail}
	wh, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.calls++
		if err := wh.Verify(body, req.Header); err != nil {
			r.badSig++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		id := req.Header.Get("webhook-id")
		if first, seen := r.ids[id]; seen && first != string(body) {
			t.Errorf("webhook-id %s came with another body", id)
		}
		r.ids[id] = string(body)
		if r.fail != nil && r.fail(r.calls, w) {
			return
		}
		var b struct {
			Events []struct {
				ID    string `json:"id"`
				State string `json:"state"`
			}
		}
		if err := json.Unmarshal(body, &b); err != nil {
			t.Errorf("body: %v", err)
		}
		for _, e := range b.Events {
			r.delivered[e.ID]++
			r.states[e.ID] = e.State
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return r, srv.URL + "/hook"
}

func webhookSync(t *testing.T, agg *testAggregator, url, state string, batch, attempts int) Stats {
	t.Helper()
	return syncWith(t, Options{From: agg.url, Token: queryToken, Target: url, WebhookSecret: testSecret, StateDir: state,
		Once: true, Batch: batch, MaxAttempts: attempts, Logger: quiet}, func(tg Target) {
		wt := tg.(*WebhookTarget)
		wt.o.BackoffMin, wt.o.BackoffMax = time.Millisecond, 5*time.Millisecond
	})
}

// TestWebhookRetries delivers through 500s, a timeout and a 429 with
// Retry-After: every event once, signed, the same webhook-id on retries.
func TestWebhookRetries(t *testing.T) {
	agg := startAggregator(t, t.TempDir())
	agg.ingest(testEvents(0, 25)...)
	agg.ingest(matchEvent("adx", "p1", "u1", 1))
	agg.ingest(matchEvent("adx", "p1", "u2", 2))
	rcv, url := newReceiver(t, func(call int, w http.ResponseWriter) bool {
		switch call {
		case 1, 2:
			http.Error(w, "down", http.StatusInternalServerError)
			return true
		case 4:
			w.Header().Set("Retry-After", "0")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return true
		}
		return false
	})
	state := t.TempDir()
	if st := webhookSync(t, agg, url, state, 10, 10); st.Events != 27 {
		t.Fatalf("sync: %+v; want 27 events", st)
	}
	if len(rcv.delivered) != 27 {
		t.Errorf("%d events delivered, want 27", len(rcv.delivered))
	}
	for id, n := range rcv.delivered {
		if n != 1 {
			t.Errorf("event %s delivered %d times", id, n)
		}
	}
	if rcv.badSig != 0 {
		t.Errorf("%d requests with a bad signature", rcv.badSig)
	}
	if s1, s2 := rcv.states["cs:adx:p1:u1"], rcv.states["cs:adx:p1:u2"]; s1 != "new" || s2 != "updated" {
		t.Errorf("match states %q, %q; want new, updated", s1, s2)
	}
	// The cursor is in the state dir: a rerun sends nothing.
	calls := rcv.calls
	if st := webhookSync(t, agg, url, state, 10, 10); st.Events != 0 || rcv.calls != calls {
		t.Errorf("rerun: %+v, %d more calls; want nothing sent", st, rcv.calls-calls)
	}
}

// TestWebhookDeadLetters: a batch refused every attempt is kept, the sync
// goes on, and Replay delivers it once the receiver accepts.
func TestWebhookDeadLetters(t *testing.T) {
	agg := startAggregator(t, t.TempDir())
	agg.ingest(testEvents(0, 6)...)
	rcv, url := newReceiver(t, func(call int, w http.ResponseWriter) bool {
		if call <= 3 { // the first batch's three attempts
			http.Error(w, "broken", http.StatusBadGateway)
			return true
		}
		return false
	})
	state := t.TempDir()
	if st := webhookSync(t, agg, url, state, 3, 3); st.Events != 6 {
		t.Fatalf("sync: %+v", st)
	}
	if len(rcv.delivered) != 3 {
		t.Fatalf("%d events delivered, want the second batch's 3", len(rcv.delivered))
	}
	dead, _ := filepath.Glob(filepath.Join(state, "deadletters", "*.json"))
	if len(dead) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dead))
	}
	wt, err := OpenWebhook(WebhookOptions{URL: url, Secret: testSecret, StateDir: state, MaxAttempts: 2, Logger: quiet}, "replay")
	if err != nil {
		t.Fatal(err)
	}
	delivered, remaining, err := wt.Replay(context.Background())
	if err != nil || delivered != 1 || remaining != 0 {
		t.Fatalf("replay: %d delivered, %d remain, %v", delivered, remaining, err)
	}
	if len(rcv.delivered) != 6 {
		t.Errorf("%d events delivered after replay, want 6", len(rcv.delivered))
	}
	if _, err := os.Stat(dead[0]); !os.IsNotExist(err) {
		t.Errorf("the replayed dead letter is still there: %v", err)
	}
}

// TestWebhookFollowsTheFeed: without Once the sync long-polls and delivers
// events as they are stored, until its context ends.
func TestWebhookFollowsTheFeed(t *testing.T) {
	agg := startAggregator(t, t.TempDir())
	rcv, url := newReceiver(t, nil)
	o := Options{From: agg.url, Token: queryToken, Target: url, WebhookSecret: testSecret, StateDir: t.TempDir(), Batch: 1, Wait: 50 * time.Millisecond, Logger: quiet}
	tg, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := Run(ctx, o, tg); done <- err }()
	agg.ingest(testEvents(0, 3)...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		rcv.mu.Lock()
		n := len(rcv.delivered)
		rcv.mu.Unlock()
		if n == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 3 events delivered while following the feed", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.calls != 3 {
		t.Errorf("%d requests, want 3 (--batch 1: one event per request)", rcv.calls)
	}
}
