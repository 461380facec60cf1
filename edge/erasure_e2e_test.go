package edge_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/internal/subject"
)

// TestErasureReachesTheEdge: an erasure at the aggregator reaches the edge's
// suppression list, after which the edge answers the subject's events as
// the rule says (201) but never spools or forwards them, while everyone
// else's events arrive; a restarted edge keeps suppressing without the
// aggregator.
func TestErasureReachesTheEdge(t *testing.T) {
	dir := t.TempDir()
	agg := startAggregator(t, dir)
	cfg := edgeConfig(t)
	cfg.AggregatorURL = "http://" + agg.Addr()
	cfg.Rules.Pull = false
	cfg.Forward.BatchMaxAge = config.Duration(20 * time.Millisecond)
	e, stop := runEdge(t, cfg)
	edgeURL, aggURL, adminURL := "http://"+e.Addr(), "http://"+agg.Addr(), "http://"+agg.AdminAddr()

	at := time.Now().UTC().Add(-time.Minute).Format("2006-01-02T15:04:05.000000")
	post := func(session, name string) {
		t.Helper()
		body := fmt.Sprintf(`{"session_id":%q,"category":"page_interaction","name":"page_view","data":{"host":"www.example.com","path":"/%s"},"timestamp":%q}`, session, name, at)
		resp, b := do(t, "POST", edgeURL+"/events", body, map[string]string{"Content-Type": "application/json"})
		if resp.StatusCode != 201 {
			t.Fatalf("POST /events for %s: %d %s", session, resp.StatusCode, b)
		}
	}
	count := func(session string) int {
		t.Helper()
		resp, b := do(t, "GET", aggURL+"/events?session_id="+session, "", map[string]string{"Authorization": "Bearer query-token"})
		var p struct{ Count int }
		if resp.StatusCode != 200 || json.Unmarshal([]byte(b), &p) != nil {
			t.Fatalf("GET /events: %d %s", resp.StatusCode, b)
		}
		return p.Count
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	post("victim", "a")
	post("other", "a")
	waitFor("the first events", func() bool { return count("victim") == 1 && count("other") == 1 })

	resp, b := do(t, "DELETE", adminURL+"/v1/subjects?session_id=victim", "", map[string]string{"Authorization": "Bearer registry-admin"})
	if resp.StatusCode != 200 || !strings.Contains(b, `"erased":1`) {
		t.Fatalf("erase: %d %s", resp.StatusCode, b)
	}
	if count("victim") != 0 {
		t.Fatal("the erased session still has events")
	}
	kept := filepath.Join(cfg.DataDir, "suppressions.json")
	waitFor("the edge's suppression list", func() bool {
		b, err := os.ReadFile(kept)
		var l subject.List
		return err == nil && json.Unmarshal(b, &l) == nil && l.Version == 1 && len(l.Subjects) == 1
	})

	post("victim", "b")
	post("other", "b")
	waitFor("the other's second event", func() bool { return count("other") == 2 })
	if n := count("victim"); n != 0 {
		t.Fatalf("the erased session got %d events after the erasure", n)
	}
	// The edge dropped it: the aggregator never saw it.
	resp, b = do(t, "GET", aggURL+"/metrics", "", nil)
	if resp.StatusCode != 200 || strings.Contains(b, `edgetrack_ingest_events_total{result="suppressed"} 1`) {
		t.Fatalf("aggregator metrics: %d; the aggregator saw the suppressed event", resp.StatusCode)
	}

	// Restarted without an aggregator, the edge still suppresses.
	stop()
	cfg.AggregatorURL = "http://127.0.0.1:1"
	e, stop = runEdge(t, cfg)
	edgeURL = "http://" + e.Addr()
	post("victim", "c")
	post("other", "c")
	var sessions []string
	for _, ev := range stop() {
		sessions = append(sessions, ev.GetSession())
	}
	if strings.Join(sessions, ",") != "other" {
		t.Fatalf("spooled after the restart: sessions %v, want only other's event", sessions)
	}
}
