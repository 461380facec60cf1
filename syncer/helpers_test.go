package syncer

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/aggregator"
	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

const (
	edgeToken  = "sync-edge-token"
	queryToken = "sync-query-token"
)

var quiet = slog.New(slog.DiscardHandler)

// testAggregator is an aggregator on loopback with its data dir.
type testAggregator struct {
	t    *testing.T
	cfg  config.Aggregator
	url  string
	stop func()
	seq  uint64
}

func startAggregator(t *testing.T, dir string) *testAggregator {
	t.Helper()
	cfg := config.Default().Aggregator
	cfg.Listen, cfg.AdminListen, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", dir
	cfg.Tokens = config.Tokens{Edge: []string{edgeToken}, Query: []string{queryToken}}
	a := &testAggregator{t: t, cfg: cfg}
	a.start()
	t.Cleanup(func() { a.stop() })
	return a
}

func (a *testAggregator) start() {
	a.t.Helper()
	agg, err := aggregator.New(aggregator.Options{Config: a.cfg, Logger: quiet})
	if err != nil {
		a.t.Fatal(err)
	}
	a.cfg.Listen = agg.Addr() // the same port after a restart
	a.url = "http://" + agg.Addr()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { agg.Run(ctx); close(done) }()
	stopped := false
	a.stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
}

func (a *testAggregator) restart() { a.stop(); a.start() }

// ingest posts events as an edge does.
func (a *testAggregator) ingest(events ...*eventpb.Event) {
	a.t.Helper()
	a.seq++
	raw, err := proto.Marshal(&eventpb.Batch{Edge: "edge-1", BootEpoch: 1, FirstSeq: a.seq, LastSeq: a.seq, Events: events})
	if err != nil {
		a.t.Fatal(err)
	}
	enc, _ := zstd.NewWriter(nil)
	body := enc.EncodeAll(raw, nil)
	enc.Close()
	req, _ := http.NewRequest("POST", a.url+"/v1/ingest", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+edgeToken)
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "zstd")
	req.Header.Set("X-Edgetrack-Edge", "edge-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		a.t.Fatalf("ingest: %d %s", resp.StatusCode, b)
	}
}

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

// database is a fresh database on a local server, dropped at the end.
type database struct {
	url string // target URL for sync
	db  *sql.DB
}

func requireServers() bool {
	return os.Getenv("CI") != "" || os.Getenv("EDGETRACK_REQUIRE_SERVERS") != ""
}

func randomName() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "edgetrack_sync_" + hex.EncodeToString(b)
}

// newPostgres creates a database on 127.0.0.1:5432 (user postgres).
func newPostgres(t *testing.T) database {
	t.Helper()
	admin, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	if err == nil {
		err = admin.Ping()
	}
	if err != nil {
		if requireServers() {
			t.Fatalf("PostgreSQL on 127.0.0.1:5432 is required in CI: %v", err)
		}
		t.Skipf("no PostgreSQL on 127.0.0.1:5432 (user postgres): %v", err)
	}
	name := randomName()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	u := "postgres://postgres@127.0.0.1:5432/" + name + "?sslmode=disable"
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		admin.Close()
	})
	return database{url: u, db: db}
}

// newMariaDB creates a database on 127.0.0.1:3306 (user root).
func newMariaDB(t *testing.T) database {
	t.Helper()
	admin, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/")
	if err == nil {
		err = admin.Ping()
	}
	if err != nil {
		if requireServers() {
			t.Fatalf("MariaDB on 127.0.0.1:3306 is required in CI: %v", err)
		}
		t.Skipf("no MariaDB/MySQL on 127.0.0.1:3306 (user root): %v", err)
	}
	name := randomName()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	u := "mysql://root@127.0.0.1:3306/" + name
	db, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/"+name+"?parseTime=true&loc=UTC")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		admin.Exec("DROP DATABASE IF EXISTS " + name)
		admin.Close()
	})
	return database{url: u, db: db}
}

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
