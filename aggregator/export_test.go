package aggregator_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
)

type exportAnswer struct {
	Events []struct {
		ID        string `json:"id"`
		SessionID string `json:"session_id"`
		Data      json.RawMessage
	}
	Next string
}

func (r *running) export(tb testing.TB, params url.Values) (response, exportAnswer) {
	tb.Helper()
	resp := r.do("GET", r.base+"/v1/export?"+params.Encode(), queryToken, nil)
	var a exportAnswer
	if resp.status == 200 {
		if err := json.Unmarshal(resp.body, &a); err != nil {
			tb.Fatalf("export answer: %v: %s", err, resp.body)
		}
	}
	return resp, a
}

// TestExportFeed reads GET /v1/export over HTTP: stored order, each event
// once, in pages by cursor that survive a restart, long-poll woken by an
// ingest, filters, and clear 400s.
func TestExportFeed(t *testing.T) {
	cfg := testConfig(t)
	r := start(t, cfg)
	r.ingest(batch(event("e3", "s1", 3), event("e1", "s1", 1), event("e2", "s2", 2)))
	r.ingest(batch(event("e1", "s1", 1), event("e4", "s2", 4))) // e1 again: a duplicate

	read := func(r *running, after string, extra url.Values) ([]string, string) {
		var ids []string
		for {
			p := url.Values{"after": {after}, "limit": {"2"}}
			for k, v := range extra {
				p[k] = v
			}
			resp, a := r.export(t, p)
			resp.wantStatus(t, 200)
			for _, ev := range a.Events {
				ids = append(ids, ev.ID)
			}
			if len(a.Events) == 0 {
				return ids, a.Next
			}
			after = a.Next
		}
	}
	ids, next := read(r, "", nil)
	if want := []string{"e3", "e1", "e2", "e4"}; !slices.Equal(ids, want) {
		t.Fatalf("feed %v, want %v", ids, want)
	}
	if ids, _ := read(r, "", url.Values{"session_id": {"s2"}}); !slices.Equal(ids, []string{"e2", "e4"}) {
		t.Errorf("session filter: %v", ids)
	}

	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	r = start(t, cfg)
	got := make(chan []string, 1)
	go func() {
		resp := r.do("GET", r.base+"/v1/export?wait=60s&after="+url.QueryEscape(next), queryToken, nil)
		var a exportAnswer
		json.Unmarshal(resp.body, &a)
		var ids []string
		for _, ev := range a.Events {
			ids = append(ids, ev.ID)
		}
		got <- ids
	}()
	r.ingest(batch(event("e5", "s1", 5)))
	if ids := <-got; !slices.Equal(ids, []string{"e5"}) {
		t.Fatalf("long-poll after a restart: %v, want [e5]", ids)
	}

	for _, tc := range []struct{ query, want string }{
		{"after=garbage", "after: bad cursor"},
		{"wait=forever", "wait"},
		{"wait=2m", "wait 2m0s is longer than the most, 1m0s"},
		{"limit=0", "limit"},
		{"sesion_id=s1", "did you mean session_id?"},
		{"start_time=2025-06-03&end_time=2025-06-01", "start_time"},
	} {
		resp := r.do("GET", r.base+"/v1/export?"+tc.query, queryToken, nil)
		if resp.status != 400 {
			t.Errorf("%s: %d %s, want 400", tc.query, resp.status, resp.body)
			continue
		}
		if msg := resp.errorMessage(t); !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %q, want it to say %q", tc.query, msg, tc.want)
		}
	}
	if resp := r.do("GET", r.base+"/v1/export", "", nil); resp.status != 401 {
		t.Errorf("without a token: %d, want 401", resp.status)
	}
}
