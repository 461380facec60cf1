package edge_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/internal/config"
)

// TestEyeEndToEnd posts The Eye events (single and batched) to an edge and
// reads them back from the aggregator with The Eye's query API and /stats.
func TestEyeEndToEnd(t *testing.T) {
	dir := t.TempDir()
	agg := startAggregator(t, dir)

	cfg := edgeConfig(t)
	cfg.AggregatorURL = "http://" + agg.Addr()
	cfg.Token = "edge-token"
	cfg.Rules.Pull = false
	cfg.Forward.BatchMaxAge = config.Duration(20 * time.Millisecond)
	e, _ := runEdge(t, cfg)
	edgeURL, aggURL := "http://"+e.Addr(), "http://"+agg.Addr()

	day := time.Now().UTC().Add(-time.Hour).Truncate(time.Hour)
	ev := func(session, category, name, data string, at time.Time, layout string) string {
		return fmt.Sprintf(`{"session_id":%q,"category":%q,"name":%q,"data":%s,"timestamp":%q}`, session, category, name, data, at.Format(layout))
	}
	const iso, eye = "2006-01-02T15:04:05.000000", "2006-01-02 15:04:05.000000"
	view := `{"host":"www.example.com","path":"/"}`
	click := `{"host":"https://www.example.com","path":"/pricing","element":"chat bubble"}`
	form := `{"host":"www.example.com","path":"/signup","form":{"first_name":"John","last_name":"Doe"}}`
	batch := "[" + strings.Join([]string{
		ev("abc123", "page_interaction", "page_view", view, day.Add(1*time.Minute), iso),
		ev("abc123", "page_interaction", "cta_click", click, day.Add(2*time.Minute), eye),
		ev("abc123", "form_interaction", "submit", form, day.Add(3*time.Minute), iso),
		ev("other", "page_interaction", "page_view", view, day.Add(4*time.Minute), eye),
	}, ",") + "]"
	resp, body := do(t, "POST", edgeURL+"/events", batch, map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode != 201 || !strings.Contains(body, `"accepted":4`) {
		t.Fatalf("batch: %d %s", resp.StatusCode, body)
	}
	// The same content again is the same events: stored once.
	if resp, body := do(t, "POST", edgeURL+"/events", batch, map[string]string{"Content-Type": "application/json"}); resp.StatusCode != 201 {
		t.Fatalf("re-sent batch: %d %s", resp.StatusCode, body)
	}

	type page struct {
		Count   int
		Next    *string
		Results []struct {
			ID, Category, Name, Timestamp string
			SessionID                     string `json:"session_id"`
			Data                          map[string]any
		}
	}
	get := func(q string) page {
		resp, body := do(t, "GET", aggURL+"/events?"+q, "", map[string]string{"Authorization": "Bearer query-token"})
		var p page
		if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &p) != nil {
			t.Fatalf("GET /events?%s: %d %s", q, resp.StatusCode, body)
		}
		return p
	}
	deadline := time.Now().Add(30 * time.Second)
	for get("").Count < 4 {
		if time.Now().After(deadline) {
			t.Fatal("events never reached the aggregator")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if p := get(""); p.Count != 4 {
		t.Fatalf("%d events stored, want 4 (the re-sent batch deduplicated)", p.Count)
	}
	p := get("session_id=abc123")
	if p.Count != 3 || p.Results[0].Name != "submit" || p.Results[2].Name != "page_view" {
		t.Fatalf("session filter, newest first: %+v", p)
	}
	if f, _ := p.Results[0].Data["form"].(map[string]any); f["first_name"] != "John" {
		t.Fatalf("form data not kept as JSON: %+v", p.Results[0].Data)
	}
	if p := get("category=page_interaction&session_id=abc123"); p.Count != 2 {
		t.Fatalf("category+session: %d", p.Count)
	}
	start, end := day.Add(2*time.Minute).Format(eye), day.Add(4*time.Minute).Format(iso)
	if p := get("start_time=" + urlq(start) + "&end_time=" + urlq(end)); p.Count != 2 {
		t.Fatalf("time range [%s, %s): %d, want 2", start, end, p.Count)
	}
	if p := get("page_size=3"); len(p.Results) != 3 || p.Next == nil {
		t.Fatalf("page_size=3: %d results, next %v", len(p.Results), p.Next)
	}

	resp, body = do(t, "GET", aggURL+"/stats?bucket=hour&group_by=category&start_time="+urlq(day.Format(iso))+"&end_time="+urlq(day.Add(time.Hour).Format(iso)), "",
		map[string]string{"Authorization": "Bearer query-token"})
	if resp.StatusCode != 200 || !strings.Contains(body, `"count":3`) || !strings.Contains(body, `"count":1`) {
		t.Fatalf("stats: %d %s (want page_interaction 3, form_interaction 1)", resp.StatusCode, body)
	}
}

func urlq(s string) string { return strings.ReplaceAll(s, " ", "%20") }
