package syncer

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/edgetrack/edgetrack/internal/aggtest"
	"github.com/edgetrack/edgetrack/internal/dbtest"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

var benchEvents = flag.Int("sync.events", 100_000, "events in the store BenchmarkSync syncs from")

// The webhook rows sync a store of a fiftieth as many events: one event per
// request is slow.
const webhookShare = 50

// benchData is a store of events and the same events as rows.
type benchData struct {
	agg  *testAggregator
	rows []row
}

// newBenchData fills an aggregator, which lives until b ends, and reads
// the events back as rows for the bulk-load baselines.
func newBenchData(b *testing.B, events int) *benchData {
	a := aggtest.Start(b, b.TempDir())
	d := &benchData{agg: &testAggregator{Aggregator: a, url: a.URL}}
	batch := make([]*eventpb.Event, 0, 1000)
	for i := 0; i < events; i++ {
		batch = append(batch, testEvent(fmt.Sprintf("h:bench:%d", i), fmt.Sprintf("s%d", i%50), "app", []string{"open", "fc_view", "qc_buy"}[i%3], i))
		if len(batch) == cap(batch) || i == events-1 {
			a.Ingest(batch...)
			batch = batch[:0]
		}
	}
	f := &Feed{From: a.URL, Token: queryToken}
	for after := ""; ; {
		p, err := f.Read(context.Background(), after, 1000, 0)
		if err != nil {
			b.Fatal(err)
		}
		if len(p.Events) == 0 {
			return d
		}
		for _, e := range p.Events {
			r, err := toRow(e)
			if err != nil {
				b.Fatal(err)
			}
			d.rows = append(d.rows, r)
		}
		after = p.Next
	}
}

// BenchmarkSync syncs the whole store into each target (one sync per
// iteration, into a fresh database), beside the fastest plain bulk load of
// the same rows into the same table: PostgreSQL COPY (pgx CopyFrom) and
// MariaDB multi-row INSERTs of 1,000 rows. Webhook rows deliver a store of
// -sync.events/50 events to a loopback receiver answering 204, with 1,000
// events per request and with one.
func BenchmarkSync(b *testing.B) {
	bench := newBenchData(b, *benchEvents)
	hooks := newBenchData(b, *benchEvents/webhookShare)
	b.Run("postgres/sync", func(b *testing.B) { benchSQLSync(b, bench, dbtest.Postgres) })
	b.Run("postgres/copyfrom-baseline", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			db := dbtest.Postgres(b)
			createTables(b, db.URL)
			conn, err := pgx.Connect(context.Background(), db.URL)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			src := pgx.CopyFromSlice(len(bench.rows), func(i int) ([]any, error) { return bench.rows[i].args(), nil })
			if _, err := conn.CopyFrom(context.Background(), pgx.Identifier{"events"}, eventCols, src); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			conn.Close(context.Background())
		}
		reportRate(b, len(bench.rows))
	})
	b.Run("mariadb/sync", func(b *testing.B) { benchSQLSync(b, bench, dbtest.MariaDB) })
	b.Run("mariadb/multirow-insert-baseline", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			db := dbtest.MariaDB(b)
			createTables(b, db.URL)
			b.StartTimer()
			for rows := bench.rows; len(rows) > 0; {
				n := min(len(rows), 1000)
				args := make([]any, 0, n*len(eventCols))
				for _, r := range rows[:n] {
					args = append(args, r.args()...)
				}
				if _, err := db.DB.Exec("INSERT INTO events ("+cols(eventCols)+") VALUES "+placeholderList(n, len(eventCols), question), args...); err != nil {
					b.Fatal(err)
				}
				rows = rows[n:]
			}
			b.StopTimer()
		}
		reportRate(b, len(bench.rows))
	})
	for _, batch := range []int{1000, 1} {
		b.Run(fmt.Sprintf("webhook/batch=%d", batch), func(b *testing.B) {
			var got atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				got.Add(1)
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			var synced int
			for i := 0; i < b.N; i++ {
				synced = syncWith(b, Options{From: hooks.agg.url, Token: queryToken, Target: srv.URL, StateDir: b.TempDir(), Once: true, Batch: batch, Logger: quiet}, nil).Events
			}
			reportRate(b, synced)
		})
	}
}

func benchSQLSync(b *testing.B, bench *benchData, newDB func(testing.TB) dbtest.Database) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db := newDB(b)
		b.StartTimer()
		st := syncWith(b, Options{From: bench.agg.url, Token: queryToken, Target: db.URL, Once: true, Batch: 1000, Logger: quiet}, nil)
		if st.Events != len(bench.rows) {
			b.Fatalf("synced %d events, want %d", st.Events, len(bench.rows))
		}
	}
	reportRate(b, len(bench.rows))
}

func createTables(b *testing.B, url string) {
	t, err := OpenSQL(context.Background(), url, "bench")
	if err != nil {
		b.Fatal(err)
	}
	t.Close()
}

// reportRate reports events per second of the timed part.
func reportRate(b *testing.B, events int) {
	b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
}
