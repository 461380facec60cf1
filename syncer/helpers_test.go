package syncer

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/internal/aggtest"
	"github.com/edgetrack/edgetrack/internal/dbtest"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

const queryToken = aggtest.QueryToken

var quiet = slog.New(slog.DiscardHandler)

// testAggregator is a real aggregator; allEvents reads it back.
type testAggregator struct {
	*aggtest.Aggregator
	t   *testing.T
	url string
}

func startAggregator(t *testing.T, dir string) *testAggregator {
	a := aggtest.Start(t, dir)
	return &testAggregator{Aggregator: a, t: t, url: a.URL}
}

func (a *testAggregator) ingest(events ...*eventpb.Event) { a.t.Helper(); a.Ingest(events...) }

func (a *testAggregator) restart() { a.Restart(); a.url = a.URL }

// allEvents reads every stored event through GET /events, by id.
func (a *testAggregator) allEvents() map[string]Event {
	a.t.Helper()
	out := map[string]Event{}
	next := a.url + "/events?cursor=&page_size=1000"
	for next != "" {
		req, _ := http.NewRequest("GET", next, nil)
		req.Header.Set("Authorization", "Bearer "+queryToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			a.t.Fatal(err)
		}
		var p struct {
			Next    *string
			Results []Event
		}
		err = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if err != nil {
			a.t.Fatal(err)
		}
		for _, e := range p.Results {
			out[e.ID] = e
		}
		next = ""
		if p.Next != nil {
			next = *p.Next
		}
	}
	return out
}

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// testEvent is an event of session at t0 + sec seconds, with a user_id.
func testEvent(id, session, category, name string, sec int) *eventpb.Event {
	return &eventpb.Event{
		Id: id, Source: eventpb.Source_SOURCE_HAMUSTRO, Session: session, Category: category, Name: name,
		ClientTime: t0.Add(time.Duration(sec) * time.Second).UnixNano(),
		ReceivedAt: t0.Add(time.Duration(sec)*time.Second + 1500*time.Microsecond).UnixNano(),
		Data:       []byte(fmt.Sprintf(`{"user_id":%d,"n":%d,"s":"é\"x"}`, sec%7, sec)),
		Ip:         "10.0.0.1", Edge: "edge-1", Rule: "hamustro@abc",
	}
}

// matchEvent is a cookie-sync match as the cookiesync rule emits it.
func matchEvent(partner, pi, uid string, sec int) *eventpb.Event {
	return &eventpb.Event{
		Id: "cs:" + partner + ":" + pi + ":" + uid, Source: eventpb.Source_SOURCE_COOKIESYNC,
		Session: uid, Category: "cookiesync", Name: "match",
		ReceivedAt: t0.Add(time.Duration(sec) * time.Second).UnixNano(),
		Data:       []byte(`{"partner":"` + partner + `"}`), Edge: "edge-1", Rule: "cookiesync@abc",
	}
}

type database = dbtest.Database

func newPostgres(t *testing.T) database  { return dbtest.Postgres(t) }
func newMariaDB(t *testing.T) database   { return dbtest.MariaDB(t) }
func newSQLServer(t *testing.T) database { return dbtest.SQLServer(t) }

// dbRow is a row of the events table, read back.
type dbRow struct {
	session, category, name, source, edge, ip string
	eventTime, receivedAt                     time.Time
	userID                                    sql.NullString
	data                                      sql.NullString
}

func readRows(t *testing.T, db *sql.DB) map[string]dbRow {
	t.Helper()
	rs, err := db.Query("SELECT event_id, session_id, category, name, source, edge_id, ip, event_time, received_at, user_id, data FROM events")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	out := map[string]dbRow{}
	for rs.Next() {
		var id string
		var r dbRow
		if err := rs.Scan(&id, &r.session, &r.category, &r.name, &r.source, &r.edge, &r.ip, &r.eventTime, &r.receivedAt, &r.userID, &r.data); err != nil {
			t.Fatal(err)
		}
		if _, dup := out[id]; dup {
			t.Fatalf("event %s is in the table twice", id)
		}
		out[id] = r
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameJSON reports whether two JSON texts are the same value.
func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

// checkRows compares the events table with what GET /events answers.
func checkRows(t *testing.T, db *sql.DB, want map[string]Event) {
	t.Helper()
	got := readRows(t, db)
	if len(got) != len(want) {
		t.Errorf("%d rows, want %d (the events GET /events answers)", len(got), len(want))
	}
	for id, e := range want {
		r, ok := got[id]
		if !ok {
			t.Errorf("event %s is missing", id)
			continue
		}
		et, _ := time.Parse(time.RFC3339Nano, e.Timestamp)
		rt, _ := time.Parse(time.RFC3339Nano, e.ReceivedAt)
		if r.session != e.SessionID || r.category != e.Category || r.name != e.Name || r.source != e.Source || r.edge != e.Edge || r.ip != e.IP ||
			!r.eventTime.Equal(et.Truncate(time.Microsecond)) || !r.receivedAt.Equal(rt.Truncate(time.Microsecond)) ||
			!r.data.Valid || !sameJSON(r.data.String, string(e.Data)) {
			t.Errorf("event %s: row %+v, want %+v", id, r, e)
		}
		var d map[string]any
		json.Unmarshal(e.Data, &d)
		if u, ok := d["user_id"]; ok && (!r.userID.Valid || r.userID.String != strings.TrimSuffix(fmt.Sprint(u), ".0")) {
			t.Errorf("event %s: user_id %v, want %v", id, r.userID, u)
		}
	}
}

// syncWith opens o's target and runs the sync, failing the test on error;
// adjust, if given, may change the target before it runs.
func syncWith(tb testing.TB, o Options, adjust func(Target)) Stats {
	tb.Helper()
	tg, err := Open(context.Background(), o)
	if err != nil {
		tb.Fatal(err)
	}
	defer tg.Close()
	if adjust != nil {
		adjust(tg)
	}
	st, err := Run(context.Background(), o, tg)
	if err != nil {
		tb.Fatal(err)
	}
	return st
}
