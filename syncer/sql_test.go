package syncer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// targets runs a test against every SQL server on this machine, and SQL
// Server when EDGETRACK_TEST_SQLSERVER names one.
func targets(t *testing.T, test func(t *testing.T, newDB func(*testing.T) database)) {
	t.Run("postgres", func(t *testing.T) { test(t, newPostgres) })
	t.Run("mariadb", func(t *testing.T) { test(t, newMariaDB) })
	t.Run("sqlserver", func(t *testing.T) { test(t, newSQLServer) })
}

func syncOnce(t *testing.T, agg *testAggregator, target string, f Filters, batch int) Stats {
	t.Helper()
	return syncWith(t, Options{From: agg.url, Token: queryToken, Target: target, Filters: f, Once: true, Batch: batch, Logger: quiet}, nil)
}

// TestSQLConformance syncs into each database: rows equal GET /events,
// exactly once across reruns, more events and an aggregator restart;
// cookie-sync matches keep the latest per partner id; the cursor is in the
// state table.
func TestSQLConformance(t *testing.T) {
	targets(t, func(t *testing.T, newDB func(*testing.T) database) {
		db := newDB(t)
		agg := startAggregator(t, t.TempDir())
		for b := 0; b < 5; b++ {
			batch := testEvents(b*40, 40)
			agg.ingest(batch...)
		}
		agg.ingest(matchEvent("adx", "p1", "u1", 10), matchEvent("adx", "p2", "u2", 11))
		if st := syncOnce(t, agg, db.URL, Filters{}, 7); st.Events != 202 {
			t.Fatalf("first sync wrote %d events, want 202", st.Events)
		}
		checkRows(t, db.DB, agg.allEvents())

		// A rerun writes nothing; new events and a restart are picked up.
		if st := syncOnce(t, agg, db.URL, Filters{}, 7); st.Events != 0 {
			t.Fatalf("a rerun wrote %d events, want 0", st.Events)
		}
		agg.ingest(testEvents(200, 30)...)
		agg.restart()
		agg.ingest(matchEvent("adx", "p1", "u9", 50), matchEvent("adx", "p2", "u7", 5)) // p1 moves on; p2's is older
		if st := syncOnce(t, agg, db.URL, Filters{}, 1000); st.Events != 32 {
			t.Fatalf("after a restart the sync wrote %d events, want 32", st.Events)
		}
		checkRows(t, db.DB, agg.allEvents())
		got := map[string]string{}
		rs, err := db.DB.Query("SELECT partner_id, uid FROM cookie_sync_matches WHERE partner = 'adx'")
		if err != nil {
			t.Fatal(err)
		}
		for rs.Next() {
			var pi, uid string
			rs.Scan(&pi, &uid)
			got[pi] = uid
		}
		rs.Close()
		if got["p1"] != "u9" || got["p2"] != "u2" || len(got) != 2 {
			t.Errorf("matches %v, want p1→u9 (the latest) and p2→u2 (the later one)", got)
		}
		var n int
		if err := db.DB.QueryRow("SELECT COUNT(*) FROM edgetrack_sync_state").Scan(&n); err != nil || n != 1 {
			t.Errorf("state rows %d, %v; want 1", n, err)
		}
	})
}

func testEvents(first, n int) []*eventpb.Event {
	out := make([]*eventpb.Event, n)
	for i := range out {
		k := first + i
		out[i] = testEvent(fmt.Sprintf("h:s%d:%d", k%5, k), fmt.Sprintf("s%d", k%5), []string{"app", "web"}[k%2], []string{"open", "fc_view", "qc_buy"}[k%3], k)
	}
	return out
}

// TestSQLFilters syncs selections into one database: each set of filters
// has its own cursor, and --start and name prefixes are honoured.
func TestSQLFilters(t *testing.T) {
	targets(t, func(t *testing.T, newDB func(*testing.T) database) {
		db := newDB(t)
		agg := startAggregator(t, t.TempDir())
		agg.ingest(testEvents(0, 60)...)
		all := agg.allEvents()
		want := func(keep func(Event) bool) map[string]Event {
			out := map[string]Event{}
			for id, e := range all {
				if keep(e) {
					out[id] = e
				}
			}
			return out
		}
		syncOnce(t, agg, db.URL, Filters{NamePrefixes: []string{"fc_", "qc_"}, Start: t0.Add(30 * time.Second)}, 5)
		checkRows(t, db.DB, want(func(e Event) bool {
			ts, _ := time.Parse(time.RFC3339Nano, e.Timestamp)
			return (strings.HasPrefix(e.Name, "fc_") || strings.HasPrefix(e.Name, "qc_")) && !ts.Before(t0.Add(30*time.Second))
		}))
		syncOnce(t, agg, db.URL, Filters{Session: "s1"}, 5) // its own cursor: from the start
		checkRows(t, db.DB, want(func(e Event) bool {
			ts, _ := time.Parse(time.RFC3339Nano, e.Timestamp)
			return e.SessionID == "s1" || (strings.HasPrefix(e.Name, "fc_") || strings.HasPrefix(e.Name, "qc_")) && !ts.Before(t0.Add(30*time.Second))
		}))
	})
}

// TestSQLTwoSyncsOfOneFeed: a second sync of the same feed into the same
// database stops instead of racing the first.
func TestSQLTwoSyncsOfOneFeed(t *testing.T) {
	db := newPostgres(t)
	agg := startAggregator(t, t.TempDir())
	agg.ingest(testEvents(0, 10)...)
	feed := FeedKey(agg.url, Filters{})
	a, err := OpenSQL(context.Background(), db.URL, feed)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenSQL(context.Background(), db.URL, feed)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	f := &Feed{From: agg.url, Token: queryToken}
	p, err := f.Read(context.Background(), "", 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Write(context.Background(), p.Events, p.Next); err != nil {
		t.Fatal(err)
	}
	if err := b.Write(context.Background(), p.Events, p.Next); !errors.Is(err, ErrCursorMoved) {
		t.Fatalf("the second writer: %v, want ErrCursorMoved", err)
	}
}

func TestOpenErrors(t *testing.T) {
	agg := startAggregator(t, t.TempDir())
	for _, tc := range []struct{ from, target, want string }{
		{agg.url, "redis://127.0.0.1:6379/0", `unknown scheme "redis"`},
		{agg.url, "ftp://example/hook", `unknown scheme "ftp"`},
		{agg.url, "mysql://root@127.0.0.1:3306/", "names no database"},
		{agg.url, "postgres://nobody:secret@127.0.0.1:5432/none?sslmode=disable", "PostgreSQL postgres://nobody:xxxxx@127.0.0.1:5432/none?sslmode=disable refuses the connection"},
		{"127.0.0.1:9090", "http://127.0.0.1:1/hook", "--from"},
	} {
		_, err := Open(context.Background(), Options{From: tc.from, Token: queryToken, Target: tc.target, StateDir: t.TempDir(), Logger: quiet})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%s): %v, want it to say %q", tc.target, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%s): the error shows the password: %v", tc.target, err)
		}
	}
	// A wrong token stops the sync before anything is written.
	o := Options{From: agg.url, Token: "wrong", Target: "http://127.0.0.1:1/hook", StateDir: t.TempDir(), Once: true, Logger: quiet}
	tg, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), o, tg); err == nil || !strings.Contains(err.Error(), "refuses the token") {
		t.Errorf("wrong token: %v", err)
	}
}
