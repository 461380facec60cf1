package aggregator_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/internal/dbtest"
	"github.com/edgetrack/edgetrack/internal/subject"
)

type eraseAnswer struct {
	Seq     uint64 `json:"seq"`
	Kind    string `json:"kind"`
	Subject string `json:"subject"`
	Erased  int    `json:"erased"`
}

func (r *running) erase(tb testing.TB, params url.Values) (response, eraseAnswer) {
	tb.Helper()
	resp := r.do("DELETE", r.admin+"/v1/subjects?"+params.Encode(), adminToken, nil)
	var a eraseAnswer
	if resp.status == 200 {
		if err := json.Unmarshal(resp.body, &a); err != nil {
			tb.Fatalf("erase answer: %v: %s", err, resp.body)
		}
	}
	return resp, a
}

// allIDs returns every stored id by GET /events, in pages.
func (r *running) allIDs(tb testing.TB) []string {
	tb.Helper()
	return r.cursorIDs(url.Values{"page_size": {"50"}})
}

// victimLoad is edges sending, through one aggregator from workers
// goroutines, batches of two events: one of another session and one of the
// victim's.
type victimLoad struct {
	mu      sync.Mutex
	sent    []string // ids of the others' events, acknowledged as stored or duplicate
	stop    atomic.Bool
	wg      sync.WaitGroup
	dropped atomic.Int64 // the victim's events answered as suppressed
}

func startLoad(t *testing.T, r *running, workers int, victim string) *victimLoad {
	l := &victimLoad{}
	for w := range workers {
		l.wg.Go(func() {
			for i := 0; !l.stop.Load(); i++ {
				other := event(fmt.Sprintf("w%d-%d", w, i), "s"+strconv.Itoa(i%3), i%600)
				mine := event(fmt.Sprintf("v%d-%d", w, i), victim, i%600)
				res := r.ingest(batch(other, mine))
				if res.GetStored()+res.GetDuplicates()+res.GetSuppressed() != 2 {
					t.Errorf("ingest result %v does not account for 2 events", res)
					return
				}
				l.dropped.Add(int64(res.GetSuppressed()))
				l.mu.Lock()
				l.sent = append(l.sent, other.GetId())
				l.mu.Unlock()
			}
		})
	}
	return l
}

// waitSent waits until n of the others' events were acknowledged.
func (l *victimLoad) waitSent(n int) {
	for {
		l.mu.Lock()
		got := len(l.sent)
		l.mu.Unlock()
		if got >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// finish stops the load and returns the others' ids, sorted.
func (l *victimLoad) finish() []string {
	l.stop.Store(true)
	l.wg.Wait()
	ids := slices.Clone(l.sent)
	slices.Sort(ids)
	return ids
}

// TestEraseUnderLoad erases a session while edges keep sending events of it
// and of others: the erasure removes the session's events from every
// answer (queries, stats, matches, the export feed), later events of it are
// dropped at ingest and counted as suppressed, nobody else's events are
// touched, and the audit log, the suppression list and the tombstones say
// what happened, also after a restart. It runs on each store backend.
func TestEraseUnderLoad(t *testing.T) { eachBackend(t, testEraseUnderLoad) }

func testEraseUnderLoad(t *testing.T, cfg config.Aggregator) {
	r := start(t, cfg)
	const victim = "victim"
	load := startLoad(t, r, 2, victim)
	load.waitSent(100)
	resp, ans := r.erase(t, url.Values{"session_id": {victim}})
	resp.wantStatus(t, 200)
	if ans.Erased < 100 || ans.Kind != "session_id" || ans.Subject != (subject.Subject{Kind: subject.Session, Value: victim}).Hash() {
		t.Fatalf("erase answer %+v: want the session's hash and at least the 100 events sent before", ans)
	}
	// More load after the erasure: the victim's events are dropped.
	for start := load.dropped.Load(); load.dropped.Load() < start+50; {
		time.Sleep(time.Millisecond)
	}
	want := load.finish()

	check := func(r *running) {
		t.Helper()
		if got := r.sessionIDs(victim, 50); len(got) != 0 {
			t.Fatalf("the erased session still has %d events", len(got))
		}
		got := r.allIDs(t)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("after the erasure GET /events has %d events, want exactly the %d of the others", len(got), len(want))
		}
		_, st := r.stats(url.Values{"bucket": {"day"}, "start_time": {t0.Add(-time.Hour).Format(time.RFC3339)}, "end_time": {t0.Add(time.Hour).Format(time.RFC3339)}})
		total := int64(0)
		for _, n := range st.flat() {
			total += n
		}
		if total != int64(len(want)) {
			t.Fatalf("stats count %d events, want %d", total, len(want))
		}
		var fed []string
		after := ""
		for {
			_, page := r.export(t, url.Values{"after": {after}, "limit": {"50"}})
			for _, ev := range page.Events {
				fed = append(fed, ev.ID)
			}
			if page.Next == after {
				break
			}
			after = page.Next
		}
		slices.Sort(fed)
		if !slices.Equal(fed, want) {
			t.Fatalf("the export feed has %d events, want the %d of the others", len(fed), len(want))
		}
	}
	check(r)

	var audit struct {
		Records []struct {
			Seq     uint64 `json:"seq"`
			Action  string `json:"action"`
			Kind    string `json:"kind"`
			Subject string `json:"subject"`
			Erased  int    `json:"erased"`
			Actor   string `json:"actor"`
		} `json:"records"`
	}
	resp = r.do("GET", r.admin+"/v1/erasures", adminToken, nil)
	resp.wantStatus(t, 200)
	if err := json.Unmarshal(resp.body, &audit); err != nil || len(audit.Records) != 2 ||
		audit.Records[0].Action != "suppress" || audit.Records[1].Action != "erase" ||
		audit.Records[1].Erased != ans.Erased || audit.Records[1].Actor == "" || audit.Records[0].Subject != ans.Subject {
		t.Fatalf("audit %+v (%v), want a suppress and an erase record of %d events", audit, err, ans.Erased)
	}
	if strings.Contains(string(resp.body), victim) {
		t.Fatal("the audit log names the subject's value")
	}

	var list subject.List
	resp = r.do("GET", r.base+"/v1/suppressions", edgeToken, nil)
	resp.wantStatus(t, 200)
	if err := json.Unmarshal(resp.body, &list); err != nil || list.Version != 1 || len(list.Subjects) != 1 || list.Subjects[0].Hash != ans.Subject {
		t.Fatalf("suppression list %+v (%v)", list, err)
	}
	resp = r.do("GET", r.base+"/v1/suppressions?after=1&wait=10ms", edgeToken, nil)
	resp.wantStatus(t, 304)

	r.wantOneTombstone(t, ans.Erased)

	// A restart keeps it all, and keeps suppressing.
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	r = start(t, cfg)
	check(r)
	if res := r.ingest(batch(event("late", victim, 1))); res.GetSuppressed() != 1 || res.GetStored() != 0 {
		t.Fatalf("a late event of the erased session after a restart: %v, want it suppressed", res)
	}
}

// wantOneTombstone checks that the export feed's tombstones are those of
// one erasure, of erased ids.
func (r *running) wantOneTombstone(tb testing.TB, erased int) {
	tb.Helper()
	var tomb struct {
		Erasures []struct {
			Seq uint64   `json:"seq"`
			IDs []string `json:"ids"`
		} `json:"erasures"`
		Next uint64 `json:"next"`
	}
	resp := r.do("GET", r.base+"/v1/export/erasures", queryToken, nil)
	resp.wantStatus(tb, 200)
	if err := json.Unmarshal(resp.body, &tomb); err != nil || len(tomb.Erasures) != 1 || len(tomb.Erasures[0].IDs) != erased || tomb.Next != 1 {
		tb.Fatalf("tombstones at %s %+v (%v), want one of %d ids", r.base, tomb, err, erased)
	}
}

// TestEraseRequests: the answers to requests that name no subject, two, an
// unknown parameter, a bad value, and the wrong token.
func TestEraseRequests(t *testing.T) {
	r := start(t, testConfig(t))
	for _, c := range []struct {
		query  string
		token  string
		status int
	}{
		{"", adminToken, 400},
		{"session_id=a&user_id=b", adminToken, 400},
		{"session_id=a&session_id=b", adminToken, 400},
		{"email=a", adminToken, 400},
		{"session_id=", adminToken, 400},
		{"user_id=a%00b", adminToken, 400},
		{"session_id=a", queryToken, 403},
		{"session_id=a", "", 401},
		{"user_id=nobody", adminToken, 200},
	} {
		resp := r.do("DELETE", r.admin+"/v1/subjects?"+c.query, c.token, nil)
		if resp.status != c.status {
			t.Errorf("DELETE /v1/subjects?%s: %d %s, want %d", c.query, resp.status, resp.body, c.status)
		}
		if c.status == 400 && resp.errorMessage(t) == "" {
			t.Errorf("DELETE /v1/subjects?%s: a 400 without a message", c.query)
		}
	}
	if resp := r.do("DELETE", r.base+"/v1/subjects?session_id=a", adminToken, nil); resp.status != 404 {
		t.Errorf("DELETE on the public listener: %d, want 404 (admin listener only)", resp.status)
	}
}

// TestEraseAcrossAggregators: two aggregators share one ClickHouse
// database, and edges send a session's events through the second while
// the session is erased through the first. The second suppresses it (its
// list and its ingest), neither answers with any of its events, and both
// list the erasure and its tombstone.
func TestEraseAcrossAggregators(t *testing.T) {
	dsn := dbtest.ClickHouse(t)
	cfgA, cfgB := testConfig(t), testConfig(t)
	for _, cfg := range []*config.Aggregator{&cfgA, &cfgB} {
		cfg.Store.Backend = config.BackendClickHouse
		cfg.Store.ClickHouse.DSN = dsn
	}
	a := start(t, cfgA)
	b := start(t, cfgB)
	const victim = "victim"
	load := startLoad(t, b, 1, victim)
	load.waitSent(20)
	resp, ans := a.erase(t, url.Values{"session_id": {victim}})
	resp.wantStatus(t, 200)
	if ans.Erased < 20 {
		t.Fatalf("erase answer %+v: want at least the 20 events sent through the other aggregator before", ans)
	}
	// The other aggregator drops the session's events from now on.
	deadline := time.Now().Add(time.Minute)
	for load.dropped.Load() < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("the other aggregator suppressed %d events of the erased session in a minute", load.dropped.Load())
		}
		time.Sleep(time.Millisecond)
	}
	want := load.finish()

	var list subject.List
	resp = b.do("GET", b.base+"/v1/suppressions", edgeToken, nil)
	resp.wantStatus(t, 200)
	if err := json.Unmarshal(resp.body, &list); err != nil || list.Version != 1 || len(list.Subjects) != 1 || list.Subjects[0].Hash != ans.Subject {
		t.Fatalf("the other aggregator's suppression list %+v (%v), want the erased session", list, err)
	}
	if res := b.ingest(batch(event("late", victim, 1))); res.GetSuppressed() != 1 || res.GetStored() != 0 {
		t.Fatalf("a late event of the erased session through the other aggregator: %v, want it suppressed", res)
	}
	for name, r := range map[string]*running{"first": a, "other": b} {
		if got := r.sessionIDs(victim, 50); len(got) != 0 {
			t.Fatalf("the %s aggregator answers with %d events of the erased session", name, len(got))
		}
		got := r.allIDs(t)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("the %s aggregator's GET /events has %d events, want exactly the %d of the others", name, len(got), len(want))
		}
		var audit struct {
			Records []struct {
				Seq     uint64 `json:"seq"`
				Action  string `json:"action"`
				Subject string `json:"subject"`
				Erased  int    `json:"erased"`
			} `json:"records"`
		}
		// The erase record reaches the other aggregator within its poll.
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
			resp = r.do("GET", r.admin+"/v1/erasures", adminToken, nil)
			resp.wantStatus(t, 200)
			err := json.Unmarshal(resp.body, &audit)
			if err == nil && len(audit.Records) == 2 &&
				audit.Records[0].Action == "suppress" && audit.Records[0].Seq == 1 && audit.Records[0].Subject == ans.Subject &&
				audit.Records[1].Action == "erase" && audit.Records[1].Erased == ans.Erased {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the %s aggregator's audit records %+v (%v), want the erasure's suppress and erase", name, audit, err)
			}
		}
		r.wantOneTombstone(t, ans.Erased)
	}
}
