package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/internal/dbtest"
	"github.com/edgetrack/edgetrack/internal/freeport"
	"github.com/edgetrack/edgetrack/proto/hamustropb"
	"github.com/edgetrack/edgetrack/wasm/rules/hamustro/hamustrotest"
)

// TestEndToEndClickHouse runs two aggregators as processes, one on Pebble
// and one on ClickHouse, each fed by an edge process of its own, sends the
// same signed collections to both edges (some twice), and checks that every
// query answers the same on both: pages and counts of /events with every
// filter and both timestamp formats, cursors, /events/{id}, /stats, and the
// export feed. The ClickHouse aggregator is then restarted and answers the
// same again. Then `edgetrack erase` runs against both, for a session, a
// user (Hamustro's numeric user_id) and a device: each removes exactly the
// subject's events that are left, both answer the same without them, and
// the erased session's events sent again are dropped.
func TestEndToEndClickHouse(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dsn := dbtest.ClickHouse(t)
	dir := t.TempDir()
	type pair struct {
		agg, edge *proc
		aggURL    string
		adminURL  string
		edgeURL   string
		aggEnv    []string
	}
	run := func(name string, backend ...string) *pair {
		aggAddr, aggAdmin, edgeAddr, edgeAdmin := freeport.Addr(t), freeport.Addr(t), freeport.Addr(t), freeport.Addr(t)
		p := &pair{aggURL: "http://" + aggAddr, adminURL: "http://" + aggAdmin, edgeURL: "http://" + edgeAddr}
		p.aggEnv = append([]string{
			"EDGETRACK_AGGREGATOR_LISTEN=" + aggAddr, "EDGETRACK_AGGREGATOR_ADMIN_LISTEN=" + aggAdmin,
			"EDGETRACK_AGGREGATOR_DATA_DIR=" + filepath.Join(dir, name, "agg"),
			"EDGETRACK_AGGREGATOR_TOKENS_EDGE=" + e2eEdgeToken, "EDGETRACK_AGGREGATOR_TOKENS_QUERY=" + e2eQueryToken,
			"EDGETRACK_AGGREGATOR_TOKENS_ADMIN=" + e2eAdminToken,
		}, backend...)
		edgeEnv := []string{
			"EDGETRACK_EDGE_LISTEN=" + edgeAddr, "EDGETRACK_EDGE_ADMIN_LISTEN=" + edgeAdmin,
			"EDGETRACK_EDGE_DATA_DIR=" + filepath.Join(dir, name, "edge"), "EDGETRACK_EDGE_AGGREGATOR_URL=" + p.aggURL,
			"EDGETRACK_EDGE_TOKEN=" + e2eEdgeToken, "EDGETRACK_EDGE_HAMUSTRO_SECRETS=" + e2eSecret, "EDGETRACK_EDGE_ID=e2e-edge",
			"EDGETRACK_EDGE_FORWARD_BATCH_MAX_AGE=50ms", "EDGETRACK_EDGE_FORWARD_BACKOFF_MAX=300ms",
			"EDGETRACK_EDGE_SPOOL_MIN_FREE_BYTES=0",
		}
		p.agg = start(t, dir, p.aggEnv, "aggregator")
		waitReady(t, p.agg, p.aggURL)
		p.edge = start(t, dir, edgeEnv, "edge")
		waitReady(t, p.edge, p.edgeURL)
		return p
	}
	pb := run("pebble")
	chs := run("clickhouse", "EDGETRACK_AGGREGATOR_STORE_BACKEND=clickhouse", "EDGETRACK_AGGREGATOR_STORE_CLICKHOUSE_DSN="+dsn)

	// Collections of a few devices, clients and event names, at client
	// times spread over three hours, so that filters, ranges and buckets
	// select different sets.
	base := time.Now().Add(-6 * time.Hour).Truncate(time.Hour).Unix()
	var ids []string
	type owner struct{ session, device, user string }
	owners := map[string]owner{}  // each event's subjects
	bodies := map[string][]byte{} // each session's collection
	for i := range 24 {
		c := &hamustropb.Collection{
			DeviceId: proto.String(fmt.Sprintf("dev-%d", i%6)), ClientId: proto.String([]string{"web", "ios", "android"}[i%3]),
			SystemVersion: proto.String("1"), ProductVersion: proto.String("1"),
		}
		c.Session = proto.String(hamustrotest.SessionOf(c))
		for j := range 10 {
			p := &hamustropb.Payload{
				At:    proto.Uint64(uint64(base + int64(i*437+j*61)%(3*3600))),
				Event: proto.String([]string{"open", "view", "buy", "close"}[(i+j)%4]),
				Nr:    proto.Uint32(uint32(i*10 + j)),
			}
			if j%3 == 0 {
				p.UserId = proto.Uint32(uint32(100 + i%4))
			}
			c.Payloads = append(c.Payloads, p)
		}
		body, err := proto.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		for j, id := range hamustrotest.EventIDs(c) {
			o := owner{session: c.GetSession(), device: c.GetDeviceId()}
			if u := c.Payloads[j].UserId; u != nil {
				o.user = fmt.Sprint(*u)
			}
			owners[id] = o
			ids = append(ids, id)
		}
		bodies[c.GetSession()] = body
		for _, p := range []*pair{pb, chs} {
			for range 1 + i%2 { // every other collection is sent twice
				if code, err := track(p.edgeURL, body); err != nil || code != 200 {
					t.Fatalf("track: %d %v", code, err)
				}
			}
		}
	}
	for _, p := range []*pair{pb, chs} {
		waitCount(t, p.aggURL, len(ids))
	}

	ts := func(sec int64, iso bool) string {
		tm := time.Unix(sec, 0).UTC()
		if iso {
			return tm.Format(time.RFC3339)
		}
		return tm.Format("2006-01-02 15:04:05.000000")
	}
	queries := []string{
		"", "session_id=" + hamustrotest.SessionOf(&hamustropb.Collection{DeviceId: proto.String("dev-1"), ClientId: proto.String("ios"), SystemVersion: proto.String("1"), ProductVersion: proto.String("1")}),
		"category=web", "name=buy", "category=android&name=view",
		"start_time=" + url.QueryEscape(ts(base+1800, true)) + "&end_time=" + url.QueryEscape(ts(base+7200, true)),
		"start_time=" + url.QueryEscape(ts(base+3600, false)) + "&name=open",
		"end_time=" + url.QueryEscape(ts(base+900, false)),
		"category=nobody",
	}
	compare := func(what string, stored int) {
		t.Helper()
		// The answers compared are not empty ones.
		if got := pages(t, chs.aggURL, "/events?page_size=50"); !strings.HasPrefix(got, fmt.Sprintf("count=%d next=true", stored)) {
			t.Fatalf("%s: GET /events: %.200s, want a count of %d", what, got, stored)
		}
		if got := get(t, chs.aggURL, "/stats?bucket=day&start_time="+url.QueryEscape(ts(base, true))+"&end_time="+url.QueryEscape(ts(base+3600, true))); !strings.Contains(got, `"points":[{`) {
			t.Fatalf("%s: GET /stats: %s, want points", what, got)
		}
		for _, q := range queries {
			for _, paging := range []string{"page_size=7", "page_size=50", "page_size=7&page=3"} {
				path := "/events?" + paging + "&" + q
				if a, b := pages(t, pb.aggURL, path), pages(t, chs.aggURL, path); a != b {
					t.Fatalf("%s: GET %s differs:\npebble:     %.300s\nclickhouse: %.300s", what, path, a, b)
				}
			}
		}
		for _, id := range []string{ids[0], ids[len(ids)/2], "no-such-id"} {
			path := "/events/" + url.PathEscape(id)
			if a, b := withoutReceivedAt(t, get(t, pb.aggURL, path)), withoutReceivedAt(t, get(t, chs.aggURL, path)); a != b {
				t.Fatalf("%s: GET %s differs:\npebble:     %s\nclickhouse: %s", what, path, a, b)
			}
		}
		for _, q := range []string{"bucket=hour", "bucket=minute&group_by=category", "bucket=day&group_by=category,name", "bucket=hour&name=view&group_by=category"} {
			path := "/stats?" + q + "&start_time=" + url.QueryEscape(ts(base-3600, true)) + "&end_time=" + url.QueryEscape(ts(base+4*3600, true))
			if a, b := get(t, pb.aggURL, path), get(t, chs.aggURL, path); a != b {
				t.Fatalf("%s: GET %s differs:\npebble:     %s\nclickhouse: %s", what, path, a, b)
			}
		}
		// The feed holds each event once on both; the order of batches
		// from two edges may differ, so compare them sorted.
		if a, b := feed(t, pb.aggURL), feed(t, chs.aggURL); !slices.Equal(a, b) || len(a) != stored {
			t.Fatalf("%s: the export feeds differ: pebble %d events, clickhouse %d, want %d", what, len(a), len(b), stored)
		}
	}
	compare("first run", len(ids))

	chs.agg.stop()
	chs.agg = start(t, dir, chs.aggEnv, "aggregator")
	waitReady(t, chs.agg, chs.aggURL)
	compare("after a restart of the ClickHouse aggregator", len(ids))

	// Erasures, as an operator runs them. A later one finds only what the
	// earlier ones left of its subject.
	victim := hamustrotest.SessionOf(&hamustropb.Collection{DeviceId: proto.String("dev-1"), ClientId: proto.String("ios"), SystemVersion: proto.String("1"), ProductVersion: proto.String("1")})
	left := maps.Clone(owners)
	for _, tc := range []struct {
		flag, value string
		of          func(owner) bool
	}{
		{"--session-id", victim, func(o owner) bool { return o.session == victim }},
		{"--user-id", "101", func(o owner) bool { return o.user == "101" }},
		{"--device-id", "dev-2", func(o owner) bool { return o.device == "dev-2" }},
	} {
		want := 0
		for id, o := range left {
			if tc.of(o) {
				want++
				delete(left, id)
			}
		}
		if want == 0 {
			t.Fatalf("erase %s %s: no event left of it; the test proves nothing", tc.flag, tc.value)
		}
		for _, p := range []*pair{pb, chs} {
			out := runOnce(t, dir, []string{"EDGETRACK_ADMIN_URL=" + p.adminURL, "EDGETRACK_ADMIN_TOKEN=" + e2eAdminToken}, "erase", tc.flag, tc.value)
			if !strings.Contains(out, fmt.Sprintf(": %d events of ", want)) {
				t.Fatalf("edgetrack erase %s %s on %s: %q, want %d events removed", tc.flag, tc.value, p.aggURL, out, want)
			}
		}
	}
	compare("after the erasures", len(left))

	// The erased session's events sent again are dropped (by the edge once
	// it has the suppression list, else by the aggregator); a collection of
	// another device sent after them is stored.
	marker := &hamustropb.Collection{DeviceId: proto.String("dev-9"), ClientId: proto.String("web"), SystemVersion: proto.String("1"), ProductVersion: proto.String("1"),
		Payloads: []*hamustropb.Payload{{At: proto.Uint64(uint64(base)), Event: proto.String("open"), Nr: proto.Uint32(1)}}}
	marker.Session = proto.String(hamustrotest.SessionOf(marker))
	markerBody, err := proto.Marshal(marker)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*pair{pb, chs} {
		for _, body := range [][]byte{bodies[victim], markerBody} {
			if code, err := track(p.edgeURL, body); err != nil || code != 200 {
				t.Fatalf("track: %d %v", code, err)
			}
		}
		waitCount(t, p.aggURL, len(left)+1)
		if got := get(t, p.aggURL, "/events?session_id="+victim); !strings.Contains(got, `"count":0`) {
			t.Fatalf("%s: the erased session after its events were sent again: %.300s", p.aggURL, got)
		}
	}
	for _, p := range []*pair{pb, chs} {
		p.edge.stop()
		p.agg.stop()
	}
}

// runOnce runs an edgetrack command that ends by itself and returns its
// output; it fails the test when the command fails.
func runOnce(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	p := start(t, dir, env, args...)
	select {
	case <-p.done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("edgetrack %s did not finish:\n%s", strings.Join(args, " "), p.out)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("edgetrack %s: exit %d:\n%s", strings.Join(args, " "), code, p.out)
	}
	return p.out.String()
}

// get answers GET url+path with the query token, as status and body, with
// the aggregator's own address taken out of links.
func get(t *testing.T, base, path string) string {
	t.Helper()
	code, b := getWith(t, e2eQueryToken, base, path)
	return fmt.Sprintf("%d %s", code, strings.ReplaceAll(string(b), strings.TrimPrefix(base, "http://"), "AGG"))
}

// getWith answers GET url+path with token, as status and body.
func getWith(t *testing.T, token, base, path string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// withoutReceivedAt takes received_at (each edge stamps its own) out of an
// event answered by get.
func withoutReceivedAt(t *testing.T, answer string) string {
	t.Helper()
	status, body, _ := strings.Cut(answer, " ")
	var ev map[string]any
	if status != "200" || json.Unmarshal([]byte(body), &ev) != nil {
		return answer
	}
	if _, ok := ev["received_at"]; !ok {
		t.Fatalf("an event without received_at: %s", body)
	}
	delete(ev, "received_at")
	b, _ := json.Marshal(ev)
	return status + " " + string(b)
}

// pages follows the next links of GET /events from path to the end and
// returns every page's count, whether it links on and back, and its
// results without received_at (each edge stamps its own). Cursors are each
// backend's own, so links are followed, not compared.
func pages(t *testing.T, base, path string) string {
	t.Helper()
	var out []string
	for n := 0; ; n++ {
		status, body, _ := strings.Cut(get(t, base, path), " ")
		if status != "200" {
			return status + " " + body
		}
		var p struct {
			Count    int               `json:"count"`
			Next     *string           `json:"next"`
			Previous *string           `json:"previous"`
			Results  []json.RawMessage `json:"results"`
		}
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		out = append(out, fmt.Sprintf("count=%d next=%v previous=%v", p.Count, p.Next != nil, p.Previous != nil))
		for _, r := range p.Results {
			var ev map[string]any
			if err := json.Unmarshal(r, &ev); err != nil {
				t.Fatal(err)
			}
			delete(ev, "received_at")
			b, _ := json.Marshal(ev)
			out = append(out, string(b))
		}
		if p.Next == nil || n == 100 {
			return strings.Join(out, "\n")
		}
		u, err := url.Parse(*p.Next)
		if err != nil {
			t.Fatal(err)
		}
		path = u.RequestURI()
	}
}

// feed reads the whole export feed and returns its event ids, sorted.
func feed(t *testing.T, base string) []string {
	t.Helper()
	var ids []string
	after := ""
	for {
		status, body, _ := strings.Cut(get(t, base, "/v1/export?limit=37&after="+url.QueryEscape(after)), " ")
		if status != "200" {
			t.Fatalf("export: %s %s", status, body)
		}
		var r struct {
			Events []struct {
				ID string `json:"id"`
			} `json:"events"`
			Next string `json:"next"`
		}
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatal(err)
		}
		for _, e := range r.Events {
			ids = append(ids, e.ID)
		}
		// A page may hold no event and move on (its rows were copies that
		// lost a race); the feed ends where the cursor stays.
		if len(r.Events) == 0 && r.Next == after {
			slices.Sort(ids)
			return ids
		}
		after = r.Next
	}
}

// waitFeed waits until the export feed of base holds the events of ids
// (sorted), each once: it may lag behind the stored events by the mark of
// an aggregator (the store's doc: The feed with several aggregators).
func waitFeed(t *testing.T, base string, ids []string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := feed(t, base)
		if slices.Equal(got, ids) {
			return
		}
		if len(got) > len(ids) || len(slices.Compact(slices.Clone(got))) != len(got) || time.Now().After(deadline) {
			t.Fatalf("%s: the export feed holds %d events (%d distinct), want the %d stored, each once",
				base, len(got), len(slices.Compact(slices.Clone(got))), len(ids))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitCount waits until GET /events counts n events.
func waitCount(t *testing.T, base string, n int) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		_, body, _ := strings.Cut(get(t, base, "/events?page_size=1"), " ")
		var p struct {
			Count int `json:"count"`
		}
		json.Unmarshal([]byte(body), &p)
		if p.Count == n {
			return
		}
		if p.Count > n || time.Now().After(deadline) {
			t.Fatalf("%s counts %d events, want %d", base, p.Count, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestTwoAggregatorsOneClickHouse runs two aggregator processes on one
// ClickHouse database, each fed by an edge of its own, and sends every
// collection to both edges, so that both aggregators get every event, often
// at the same moment. One aggregator is killed (SIGKILL) under load and
// started again. Every event acknowledged by either edge is stored exactly
// once, and both aggregators answer the same.
func TestTwoAggregatorsOneClickHouse(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dsn := dbtest.ClickHouse(t)
	env := []string{"EDGETRACK_AGGREGATOR_STORE_BACKEND=clickhouse", "EDGETRACK_AGGREGATOR_STORE_CLICKHOUSE_DSN=" + dsn}
	raceTwoAggregators(t, race{
		env:  [2][]string{env, env},
		down: func(a, b *aggPair) { b.agg.kill() }, // mid-load; edge b keeps accepting and retries
		up: func(a, b *aggPair) {
			time.Sleep(300 * time.Millisecond)
			b.startAgg(t)
		},
	})
}

// aggPair is an aggregator process and the edge process that feeds it.
type aggPair struct {
	dir             string
	agg, edge       *proc
	aggURL, edgeURL string
	aggEnv          []string
}

// startAgg starts (again) the aggregator of p and waits until it is ready.
func (p *aggPair) startAgg(t *testing.T) {
	t.Helper()
	p.agg = start(t, p.dir, p.aggEnv, "aggregator")
	waitReady(t, p.agg, p.aggURL)
}

// agree waits until both answers of answer are the same, and returns it.
func agree(t *testing.T, what string, answer func() (string, string)) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		x, y := answer()
		if x == y {
			return x
		}
		if time.Now().After(deadline) {
			xs, ys := strings.Split(x, "\n"), strings.Split(y, "\n")
			n := 0
			for n < min(len(xs), len(ys)) && xs[n] == ys[n] {
				n++
			}
			t.Fatalf("%s differs between the aggregators from line %d of %d/%d:\n%.300s\n%.300s", what, n+1, len(xs), len(ys),
				strings.Join(xs[n:], "\n"), strings.Join(ys[n:], "\n"))
		}
	}
}

// race is what raceTwoAggregators runs.
type race struct {
	env      [2][]string // the store settings of each aggregator
	failover bool        // each edge lists both aggregators, its own first
	// down is called by a sender mid-load, then up while the load goes on.
	down, up func(a, b *aggPair)
	// serverKilled: down kills a ClickHouse server, which loses the rollup
	// rows of an INSERT it was in the middle of (the store's doc:
	// Durability), so the stats may count fewer events than are stored.
	serverKilled bool
}

// raceTwoAggregators runs two aggregator processes on one ClickHouse
// database, each fed by an edge of its own. Every collection goes to both
// edges at once, from 6 senders, so that both aggregators get every event,
// often at the same moment. At the end every event acknowledged by either
// edge is stored exactly once (and every event sent is stored: both edges
// retry until it is), the export feed of each holds no event twice, and
// both aggregators page, count and roll up the same, the stats counting
// every event once.
func raceTwoAggregators(t *testing.T, r race) {
	t.Helper()
	dir := t.TempDir()
	var pairs [2]*aggPair
	for i, name := range []string{"a", "b"} {
		aggAddr, aggAdmin, edgeAddr := freeport.Addr(t), freeport.Addr(t), freeport.Addr(t)
		p := &aggPair{dir: dir, aggURL: "http://" + aggAddr, edgeURL: "http://" + edgeAddr}
		p.aggEnv = append([]string{
			"EDGETRACK_AGGREGATOR_LISTEN=" + aggAddr, "EDGETRACK_AGGREGATOR_ADMIN_LISTEN=" + aggAdmin,
			"EDGETRACK_AGGREGATOR_DATA_DIR=" + filepath.Join(dir, name, "agg"),
			"EDGETRACK_AGGREGATOR_TOKENS_EDGE=" + e2eEdgeToken, "EDGETRACK_AGGREGATOR_TOKENS_QUERY=" + e2eQueryToken,
			// The feed waits this long for the writes of a killed aggregator.
			"EDGETRACK_AGGREGATOR_STORE_CLICKHOUSE_WRITER_TIMEOUT=5s",
		}, r.env[i]...)
		p.startAgg(t)
		pairs[i] = p
	}
	for i, p := range pairs {
		urls := p.aggURL
		if r.failover {
			urls += "," + pairs[1-i].aggURL
		}
		edgeAddr, edgeAdmin := strings.TrimPrefix(p.edgeURL, "http://"), freeport.Addr(t)
		p.edge = start(t, dir, []string{
			"EDGETRACK_EDGE_LISTEN=" + edgeAddr, "EDGETRACK_EDGE_ADMIN_LISTEN=" + edgeAdmin,
			"EDGETRACK_EDGE_DATA_DIR=" + filepath.Join(dir, []string{"a", "b"}[i], "edge"), "EDGETRACK_EDGE_AGGREGATOR_URL=" + urls,
			"EDGETRACK_EDGE_TOKEN=" + e2eEdgeToken, "EDGETRACK_EDGE_HAMUSTRO_SECRETS=" + e2eSecret, "EDGETRACK_EDGE_ID=e2e-edge",
			"EDGETRACK_EDGE_FORWARD_BATCH_MAX_AGE=20ms", "EDGETRACK_EDGE_FORWARD_BACKOFF_MAX=300ms",
			"EDGETRACK_EDGE_FORWARD_REQUEST_TIMEOUT=5s", "EDGETRACK_EDGE_SPOOL_MIN_FREE_BYTES=0",
		}, "edge")
		waitReady(t, p.edge, p.edgeURL)
	}
	a, b := pairs[0], pairs[1]
	l := &ledger{sent: map[string]bool{}, acked: map[string]bool{}, sess: map[string]bool{}}

	// Each collection goes to both edges at once, from 6 senders.
	send := func(g, i int) {
		body, session, ids := collection(t, fmt.Sprintf("dev-%d", g), 1+i*4, 4)
		l.mu.Lock()
		l.sess[session] = true
		for _, id := range ids {
			l.sent[id] = true
		}
		l.mu.Unlock()
		done := make(chan int, 2)
		for _, p := range pairs {
			go func() {
				code, err := track(p.edgeURL, body)
				if err != nil {
					code = 0
				}
				done <- code
			}()
		}
		if c1, c2 := <-done, <-done; c1 == 200 || c2 == 200 {
			l.mu.Lock()
			for _, id := range ids {
				l.acked[id] = true
			}
			l.mu.Unlock()
		} else {
			t.Errorf("collection %d/%d: no edge answered 200 (%d, %d)", g, i, c1, c2)
		}
	}
	var wg sync.WaitGroup
	downed := make(chan struct{})
	for g := range 6 {
		wg.Go(func() {
			for i := range 60 {
				send(g, i)
				if g == 0 && i == 25 {
					r.down(a, b)
					close(downed)
				}
			}
		})
	}
	<-downed
	r.up(a, b)
	wg.Wait()

	for _, p := range pairs {
		got := waitStored(t, p.aggURL, l)
		for id, n := range got {
			if n != 1 {
				t.Errorf("%s: event %s returned %d times", p.aggURL, id, n)
			}
			if !l.sent[id] {
				t.Errorf("%s: event %s was never sent", p.aggURL, id)
			}
		}
		if len(got) != len(l.sent) { // both edges got every collection and retry until stored
			t.Errorf("%s: %d events stored, %d sent", p.aggURL, len(got), len(l.sent))
		}
		waitFeed(t, p.aggURL, slices.Sorted(maps.Keys(got)))
	}
	// Both edges deliver everything they accepted; then both aggregators
	// count, page and roll up the same (once the servers they read have
	// caught up with each other: the rollups and the record of racing
	// copies may reach one after the events do).
	waitCount(t, a.aggURL, len(l.sent))
	waitCount(t, b.aggURL, len(l.sent))
	for _, path := range []string{"/events?page_size=50", "/events?page_size=13&category=e2e"} {
		agree(t, "GET "+path, func() (string, string) { return pages(t, a.aggURL, path), pages(t, b.aggURL, path) })
	}
	now := time.Now().UTC()
	stats := "/stats?bucket=minute&start_time=" + url.QueryEscape(now.Add(-time.Hour).Format(time.RFC3339)) + "&end_time=" + url.QueryEscape(now.Add(time.Hour).Format(time.RFC3339))
	sa := agree(t, "GET /stats", func() (string, string) { return get(t, a.aggURL, stats), get(t, b.aggURL, stats) })
	if !strings.Contains(sa, `"count"`) {
		t.Fatalf("GET /stats is empty: %s", sa)
	}
	var st struct {
		Series []struct {
			Points []struct {
				Count int `json:"count"`
			} `json:"points"`
		} `json:"series"`
	}
	_, body, _ := strings.Cut(sa, " ")
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, se := range st.Series {
		for _, p := range se.Points {
			total += p.Count
		}
	}
	switch {
	case total > len(l.sent) || total < len(l.sent) && !r.serverKilled:
		t.Fatalf("stats count %d events, %d are stored", total, len(l.sent))
	case total < len(l.sent):
		t.Logf("stats count %d events of %d: the server was killed inside an INSERT, after its events and before their rollups", total, len(l.sent))
	}
	races := 0
	for _, p := range pairs {
		races += strings.Count(p.agg.out.String(), "inserted by two aggregators at once")
	}
	t.Logf("sent %d events to both edges; %d acknowledged; %d inserts found racing copies", len(l.sent), len(l.acked), races)
	for _, p := range pairs {
		p.edge.stop()
		p.agg.stop()
	}
}

// startClickHouseAggregator starts an aggregator process on the ClickHouse
// database of dsn, with data_dir dir/name and the settings in env besides,
// and returns it with the URLs of its public and admin listeners once it
// is ready.
func startClickHouseAggregator(t *testing.T, dir, name, dsn string, env ...string) (p *proc, url, adminURL string) {
	t.Helper()
	addr, admin := freeport.Addr(t), freeport.Addr(t)
	p = start(t, dir, append([]string{
		"EDGETRACK_AGGREGATOR_LISTEN=" + addr, "EDGETRACK_AGGREGATOR_ADMIN_LISTEN=" + admin,
		"EDGETRACK_AGGREGATOR_DATA_DIR=" + filepath.Join(dir, name),
		"EDGETRACK_AGGREGATOR_TOKENS_EDGE=" + e2eEdgeToken, "EDGETRACK_AGGREGATOR_TOKENS_QUERY=" + e2eQueryToken,
		"EDGETRACK_AGGREGATOR_STORE_BACKEND=clickhouse", "EDGETRACK_AGGREGATOR_STORE_CLICKHOUSE_DSN=" + dsn,
	}, env...), "aggregator")
	waitReady(t, p, "http://"+addr)
	return p, "http://" + addr, "http://" + admin
}

// TestEdgeFailsOver runs one edge with two aggregator URLs, both
// aggregators on one ClickHouse database. The aggregator the edge sends to
// is killed (SIGKILL) under load: the edge goes on with the other one, and
// every event it acknowledged is stored exactly once.
func TestEdgeFailsOver(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dsn := dbtest.ClickHouse(t)
	dir := t.TempDir()
	var aggs []*proc
	var urls []string
	for _, name := range []string{"a", "b"} {
		p, url, _ := startClickHouseAggregator(t, dir, name, dsn)
		aggs, urls = append(aggs, p), append(urls, url)
	}
	edgeAddr, edgeAdmin := freeport.Addr(t), freeport.Addr(t)
	edge := start(t, dir, []string{
		"EDGETRACK_EDGE_LISTEN=" + edgeAddr, "EDGETRACK_EDGE_ADMIN_LISTEN=" + edgeAdmin,
		"EDGETRACK_EDGE_DATA_DIR=" + filepath.Join(dir, "edge"), "EDGETRACK_EDGE_AGGREGATOR_URL=" + strings.Join(urls, ","),
		"EDGETRACK_EDGE_TOKEN=" + e2eEdgeToken, "EDGETRACK_EDGE_HAMUSTRO_SECRETS=" + e2eSecret, "EDGETRACK_EDGE_ID=e2e-edge",
		"EDGETRACK_EDGE_FORWARD_BATCH_MAX_AGE=20ms", "EDGETRACK_EDGE_FORWARD_BACKOFF_MAX=300ms",
		"EDGETRACK_EDGE_FORWARD_REQUEST_TIMEOUT=2s", "EDGETRACK_EDGE_SPOOL_MIN_FREE_BYTES=0",
	}, "edge")
	edgeURL := "http://" + edgeAddr
	waitReady(t, edge, edgeURL)
	l := &ledger{sent: map[string]bool{}, acked: map[string]bool{}, sess: map[string]bool{}}

	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				if code, err := l.send(t, edgeURL, fmt.Sprintf("dev-%d", g), 1+i*4, 4); err != nil || code != 200 {
					t.Errorf("send: %d %v", code, err)
					return
				}
				if g == 0 && i == 20 {
					aggs[0].kill() // the first URL: where the edge sends
				}
			}
		})
	}
	wg.Wait()
	got := waitStored(t, urls[1], l)
	for id, n := range got {
		if n != 1 {
			t.Errorf("event %s returned %d times", id, n)
		}
	}
	if len(got) != len(l.acked) {
		t.Fatalf("%d events stored, %d acknowledged", len(got), len(l.acked))
	}
	if !strings.Contains(edge.out.String(), "switching to the next aggregator") {
		t.Fatalf("the edge did not fail over:\n%s", edge.out)
	}
	t.Logf("%d events acknowledged and stored once", len(l.acked))
	edge.stop()
	aggs[1].stop()
}

// TestRegistrySharedOnClickHouse runs two aggregator processes on one
// ClickHouse database and an edge that knows only the second. A rule
// version uploaded to and activated on the first reaches the edge: the
// second aggregator's manifest serves it and wakes the edge's long-poll,
// the edge downloads the module from it, and its status report, made to
// the second, is what `rules activate --wait` on the first waits for.
func TestRegistrySharedOnClickHouse(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const adminToken = "e2e-admin-token"
	dsn := dbtest.ClickHouse(t)
	dir := t.TempDir()
	var aggURLs, adminURLs []string
	for _, name := range []string{"a", "b"} {
		_, url, admin := startClickHouseAggregator(t, dir, name, dsn, "EDGETRACK_AGGREGATOR_TOKENS_ADMIN="+adminToken)
		aggURLs, adminURLs = append(aggURLs, url), append(adminURLs, admin)
	}
	// The longest long-poll there is: an edge that learned of the
	// activation only when its poll ran out would miss activate's --wait.
	edgeAddr, edgeAdmin := freeport.Addr(t), freeport.Addr(t)
	edge := start(t, dir, []string{
		"EDGETRACK_EDGE_LISTEN=" + edgeAddr, "EDGETRACK_EDGE_ADMIN_LISTEN=" + edgeAdmin,
		"EDGETRACK_EDGE_DATA_DIR=" + filepath.Join(dir, "edge"), "EDGETRACK_EDGE_AGGREGATOR_URL=" + aggURLs[1],
		"EDGETRACK_EDGE_TOKEN=" + e2eEdgeToken, "EDGETRACK_EDGE_HAMUSTRO_SECRETS=" + e2eSecret, "EDGETRACK_EDGE_ID=e2e-edge",
		"EDGETRACK_EDGE_RULES_POLL_WAIT=60s", "EDGETRACK_EDGE_SPOOL_MIN_FREE_BYTES=0",
	}, "edge")
	waitReady(t, edge, "http://"+edgeAddr)

	t.Setenv(envRulesURL, adminURLs[0])
	t.Setenv(envRulesToken, adminToken)
	// The edge reports what it runs to b when it starts; a lists it.
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := runRules(t, "list", "hamustro")
		if err == nil && strings.Contains(out, "e2e-edge") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("aggregator a does not list the edge that reports to b: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}

	wasm, h := hamustroVersion(t)
	if out, err := runRules(t, "push", wasm, "--rule", "hamustro"); err != nil || !strings.Contains(out, h) {
		t.Fatalf("push to a: %v\n%s", err, out)
	}
	out, err := runRules(t, "activate", "hamustro", h[:12], "--wait", "30s")
	if err != nil || !strings.Contains(out, "all 1 edge(s) run "+h[:12]) {
		t.Fatalf("activate on a, waiting for the edge of b: %v\n%s\nedge:\n%s", err, out, edge.out)
	}
	// The edge says so itself.
	resp, err := http.Get("http://" + edgeAdmin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `edgetrack_rule_active_info{rule="hamustro",version="` + h[:12] + `"} 1`; !strings.Contains(string(metrics), want) {
		t.Fatalf("the edge's metrics lack %s", want)
	}
	// b serves the same manifest as a.
	if ma, mb := manifest(t, aggURLs[0]), manifest(t, aggURLs[1]); ma != mb || !strings.Contains(mb, h) {
		t.Fatalf("manifests differ or lack %s:\na: %s\nb: %s", h[:12], ma, mb)
	}
	edge.stop()
}

// manifest returns an aggregator's rule manifest as an edge gets it.
func manifest(t *testing.T, base string) string {
	t.Helper()
	code, b := getWith(t, e2eEdgeToken, base, "/v1/rules/manifest")
	if code != 200 {
		t.Fatalf("GET %s/v1/rules/manifest: %d %s", base, code, b)
	}
	return string(b)
}
