package aggregator_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/proto/eventpb"
)

func TestQueryAuth(t *testing.T) {
	r := start(t, testConfig(t))
	for _, path := range []string{"/events?session_id=s", "/events", "/events/a", "/stats?start_time=2022-01-01&end_time=2022-01-02"} {
		for _, tc := range []struct {
			token  string
			status int
		}{
			{"", http.StatusUnauthorized},
			{edgeToken, http.StatusForbidden},
			{adminToken, http.StatusForbidden},
			{"nope", http.StatusForbidden},
		} {
			resp := r.do(http.MethodGet, r.base+path, tc.token, nil)
			if resp.status != tc.status {
				t.Errorf("GET %s with %q: status %d, want %d", path, tc.token, resp.status, tc.status)
			}
			if tc.status == http.StatusUnauthorized && !strings.HasPrefix(resp.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("GET %s: WWW-Authenticate = %q", path, resp.header.Get("WWW-Authenticate"))
			}
		}
	}
}

func TestQuerySession(t *testing.T) {
	r := start(t, testConfig(t))
	// Two sessions interleaved in time, sent in one batch in no order.
	var events []*eventpb.Event
	var wantS, wantT []string
	for i := range 12 {
		sess := "s"
		if i%3 == 0 {
			sess = "t"
		}
		id := "ev" + strconv.Itoa(i)
		events = append(events, event(id, sess, i))
		if sess == "s" {
			wantS = append([]string{id}, wantS...) // newest first
		} else {
			wantT = append([]string{id}, wantT...)
		}
	}
	slices.Reverse(events[4:])
	r.ingest(batch(events...))

	resp, p := r.events(url.Values{"session_id": {"s"}})
	resp.wantStatus(t, http.StatusOK)
	if got := p.ids(); !slices.Equal(got, wantS) || p.Next != nil || p.Previous != nil || p.Count != len(wantS) {
		t.Errorf("session s (default page size) = %v count %d, want %v, %d and no links", got, p.Count, wantS, len(wantS))
	}
	for _, limit := range []int{1, 2, 3, 7, 50} {
		if got := r.sessionIDs("s", limit); !slices.Equal(got, wantS) {
			t.Errorf("session s, paging by %d = %v, want %v", limit, got, wantS)
		}
		if got := r.sessionIDs("t", limit); !slices.Equal(got, wantT) {
			t.Errorf("session t, paging by %d = %v, want %v", limit, got, wantT)
		}
	}
	if got := r.sessionIDs("nobody", 5); len(got) != 0 {
		t.Errorf("unknown session = %v", got)
	}
	resp, _ = r.events(url.Values{"session_id": {"nobody"}})
	if resp.status != http.StatusOK || string(resp.body) != "{\"count\":0,\"next\":null,\"previous\":null,\"results\":[]}\n" {
		t.Errorf("empty page: %d %s", resp.status, resp.body)
	}
}

func TestQueryDefaultPageSize(t *testing.T) {
	r := start(t, testConfig(t))
	var events []*eventpb.Event
	for i := range 15 {
		events = append(events, event("ev"+strconv.Itoa(i), "s", i))
	}
	r.ingest(batch(events...))
	resp, p := r.events(url.Values{"session_id": {"s"}})
	resp.wantStatus(t, http.StatusOK)
	if len(p.Results) != 10 || p.Next == nil || *p.Next != r.base+"/events?page=2&session_id=s" || p.Count != 15 {
		t.Errorf("default page has %d events, count %d, next %v; want 10, 15 and page 2", len(p.Results), p.Count, p.Next)
	}
}

func TestQueryBadRequests(t *testing.T) {
	r := start(t, testConfig(t))
	r.ingest(batch(event("a", "s", 1), event("b", "s", 2), event("c", "t", 3), event("d", "t", 4)))
	_, p := r.events(url.Values{"session_id": {"s"}, "limit": {"1"}, "cursor": {""}})
	if p.Next == nil {
		t.Fatal("no next link on a partial page")
	}
	next, err := url.Parse(*p.Next)
	if err != nil {
		t.Fatal(err)
	}
	cursor := next.Query().Get("cursor")

	for _, tc := range []struct {
		name  string
		query string
		msg   string // the start of the error message
	}{
		{"page size zero", "page_size=0", "page_size must be an integer from 1 to 50"},
		{"page size over max", "page_size=51", "page_size must be an integer from 1 to 50"},
		{"limit over max", "session_id=s&limit=51", "limit must be an integer from 1 to 50"},
		{"limit not a number", "session_id=s&limit=ten", "limit must be an integer from 1 to 50"},
		{"limit and page size differ", "limit=5&page_size=6", "limit is another name of page_size"},
		{"page zero", "page=0", "page must be a positive integer"},
		{"page not a number", "page=two", "page must be a positive integer"},
		{"page and cursor", "page=2&cursor=", "cursor cannot be combined with page"},
		{"bad start", "start_time=yesterday", "start_time must be a time like"},
		{"bad end", "end_time=2022-04-11T01:08:01.407119Q", "end_time must be a time like"},
		{"end out of range", "end_time=2022-02-29", `end_time must be a time like 2022-04-11T01:08:01.407119 or 2022-04-11 01:08:01.407119 (UTC unless followed by Z or an offset like +02:00), or a date like 2022-04-11; got "2022-02-29" (day out of range)`},
		{"garbage cursor", "session_id=s&cursor=%21%21", "bad cursor"},
		{"cursor of another session", "session_id=t&cursor=" + url.QueryEscape(cursor), "bad cursor"},
		{"cursor of another range", "session_id=s&start_time=2022-01-01&cursor=" + url.QueryEscape(cursor), "bad cursor"},
		{"malformed query string", "session_id=%zz", "malformed query string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := r.do(http.MethodGet, r.base+"/events?"+tc.query, queryToken, nil)
			resp.wantStatus(t, http.StatusBadRequest)
			if msg := resp.errorMessage(t); !strings.HasPrefix(msg, tc.msg) {
				t.Errorf("error %q does not start with %q", msg, tc.msg)
			}
		})
	}
	resp, _ := r.events(url.Values{"session_id": {"s"}, "limit": {"50"}})
	resp.wantStatus(t, http.StatusOK)
	resp, _ = r.events(url.Values{"page": {"2"}, "page_size": {"4"}})
	resp.wantStatus(t, http.StatusNotFound)
	if msg := resp.errorMessage(t); !strings.HasPrefix(msg, "invalid page") {
		t.Errorf("page past the end: %q", msg)
	}
}

func TestGetEvent(t *testing.T) {
	r := start(t, testConfig(t))
	withSlash := event("h:s/1:7", "s", 5)
	noClientTime := event("late", "s", 0)
	noClientTime.ClientTime = 0
	noClientTime.Data = []byte("not json")
	noClientTime.Source = eventpb.Source_SOURCE_COOKIESYNC
	r.ingest(batch(event("a", "s", 1), withSlash, noClientTime))

	get := func(id string) response {
		return r.do(http.MethodGet, r.base+"/events/"+id, queryToken, nil)
	}
	resp := get("a")
	resp.wantStatus(t, http.StatusOK)
	if ct := resp.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var ev map[string]json.RawMessage
	if err := json.Unmarshal(resp.body, &ev); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"id": `"a"`, "source": `"hamustro"`, "session_id": `"s"`, "category": `"cat"`, "name": `"name"`,
		"timestamp":   `"2025-06-01T12:00:01.000000000Z"`,
		"client_time": `"2025-06-01T12:00:01.000000000Z"`,
		"received_at": `"2025-06-01T13:00:00.000000000Z"`,
		"data":        `{"n":1}`, // embedded as an object, not a string
		"ip":          `"10.0.0.1"`, "edge": `"edge-1"`, "rule": `"hamustro@abc"`,
	}
	for k, v := range want {
		if string(ev[k]) != v {
			t.Errorf("%s = %s, want %s", k, ev[k], v)
		}
	}
	if len(ev) != len(want) {
		t.Errorf("event has fields %v, want exactly %v", keys(ev), keys(want))
	}
	if ts, err := time.Parse(time.RFC3339Nano, strings.Trim(string(ev["timestamp"]), `"`)); err != nil || !ts.Equal(t0.Add(time.Second)) {
		t.Errorf("timestamp parses to %v, %v", ts, err)
	}

	// An id with a slash, escaped or not.
	for _, path := range []string{"h:s/1:7", url.PathEscape("h:s/1:7")} {
		resp := get(path)
		resp.wantStatus(t, http.StatusOK)
		if !strings.Contains(string(resp.body), `"id":"h:s/1:7"`) {
			t.Errorf("GET /events/%s = %s", path, resp.body)
		}
	}

	// No client time: the timestamp is the receive time, client_time is
	// omitted; data that is not JSON is a string.
	resp = get("late")
	resp.wantStatus(t, http.StatusOK)
	ev = nil
	if err := json.Unmarshal(resp.body, &ev); err != nil {
		t.Fatal(err)
	}
	if string(ev["timestamp"]) != `"2025-06-01T13:00:00.000000000Z"` || ev["client_time"] != nil ||
		string(ev["data"]) != `"not json"` || string(ev["source"]) != `"cookiesync"` {
		t.Errorf("event without client time = %s", resp.body)
	}

	for _, id := range []string{"nope", "", "a/b"} {
		resp := get(id)
		resp.wantStatus(t, http.StatusNotFound)
		if msg := resp.errorMessage(t); msg != "event not found" {
			t.Errorf("GET /events/%s: error %q", id, msg)
		}
	}
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
