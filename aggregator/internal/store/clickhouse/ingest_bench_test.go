package clickhouse

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/aggregator/internal/store/pebble"
	"github.com/edgetrack/edgetrack/internal/dbtest"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// Run with e.g.
//
//	make clickhouse
//	go test -run '^$' -bench IngestBackends -benchtime 100x ./aggregator/internal/store/clickhouse/

// BenchmarkIngestBackends stores the same new events, b.N batches of each
// size, three ways in one run:
//
//   - store: Store.Ingest into ClickHouse (checks, the id look-up before
//     and after, one INSERT that the rollups' view counts);
//   - plain-insert: the least clickhouse-go allows for the same rows:
//     marshal, one batch INSERT of the same columns into a MergeTree
//     ordered by id, no view, no look-ups — so store / plain-insert is the
//     cost of the store's work, not of the server;
//   - pebble: the Pebble store's Ingest of the same batches, on disk.
func BenchmarkIngestBackends(b *testing.B) {
	addr := dbtest.ClickHouseAddr(b)
	for _, size := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("batch=%d/store", size), func(b *testing.B) {
			batches := benchBatches(b.N, size)
			s := openAt(b, dbtest.ClickHouse(b))
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				st, err := s.Ingest(ctx, batches[i])
				if err != nil {
					b.Fatal(err)
				}
				if st.Stored != size {
					b.Fatalf("stored %d of %d", st.Stored, size)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
		})
		b.Run(fmt.Sprintf("batch=%d/plain-insert", size), func(b *testing.B) {
			batches := benchBatches(b.N, size)
			conn, err := ch.Open(&ch.Options{Addr: []string{addr}})
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			ctx := context.Background()
			db := dbtest.ClickHouse(b)[len("clickhouse://"+addr+"/"):]
			for _, q := range []string{
				"CREATE DATABASE " + db,
				"CREATE TABLE " + db + ".events (id String, seq UInt64, writer UInt64, event_time Int64, " +
					"session String, category String, name String, body String) ENGINE = MergeTree ORDER BY id",
			} {
				if err := conn.Exec(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			var seq uint64
			for i := range b.N {
				batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".events (id, seq, writer, event_time, session, category, name, body)")
				if err != nil {
					b.Fatal(err)
				}
				for _, ev := range batches[i] {
					body, err := marshal.Marshal(ev)
					if err != nil {
						b.Fatal(err)
					}
					seq++
					if err := batch.Append(ev.GetId(), seq, uint64(1), store.EventTime(ev), ev.GetSession(), ev.GetCategory(), ev.GetName(), string(body)); err != nil {
						b.Fatal(err)
					}
				}
				if err := batch.Send(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
		})
		b.Run(fmt.Sprintf("batch=%d/pebble", size), func(b *testing.B) {
			batches := benchBatches(b.N, size)
			s, err := pebble.Open(pebble.Options{Dir: b.TempDir(), Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				st, err := s.Ingest(ctx, batches[i])
				if err != nil {
					b.Fatal(err)
				}
				if st.Stored != size {
					b.Fatalf("stored %d of %d", st.Stored, size)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// benchBatches makes n batches of size new events each: 300 sessions, a
// handful of categories and names, about 300 bytes of JSON data, client
// times a millisecond apart with jitter.
func benchBatches(n, size int) [][]*eventpb.Event {
	r := rand.New(rand.NewPCG(1, 2))
	categories := []string{"view", "click", "scroll", "purchase", "error"}
	names := []string{"home", "product", "cart", "checkout", "search", "login", "signup", "help"}
	const t0 = 1_760_000_000_000_000_000
	out := make([][]*eventpb.Event, n)
	for i := range out {
		out[i] = make([]*eventpb.Event, size)
		for j := range out[i] {
			nr := i*size + j
			session := fmt.Sprintf("%016x", uint64(nr%300)*0x9e3779b97f4a7c15)
			t := int64(t0 + nr*1e6 + r.IntN(5e6))
			name := names[r.IntN(len(names))]
			out[i][j] = &eventpb.Event{
				Id:         fmt.Sprintf("h:%s:%d", session, nr/300),
				Source:     eventpb.Source_SOURCE_HAMUSTRO,
				ReceivedAt: t + int64(50e6+r.IntN(200e6)),
				ClientTime: t,
				Session:    session,
				Category:   categories[r.IntN(len(categories))],
				Name:       name,
				Data: fmt.Appendf(nil, `{"url":"https://shop.example.com/%s/%d?utm_source=newsletter&utm_medium=email",`+
					`"referrer":"https://www.example.org/search?q=item+%d","title":"Item %d - Example Shop",`+
					`"viewport":"1280x720","lang":"en-US","tz":"Europe/Berlin","value":%d.%02d,"scroll_depth":%d}`,
					name, r.IntN(100000), r.IntN(1000), r.IntN(100000), r.IntN(500), r.IntN(100), r.IntN(101)),
				Ip:   fmt.Sprintf("203.0.113.%d", r.IntN(256)),
				Edge: "edge-fra-1",
				Rule: "hamustro@3f2a9c1b",
			}
		}
	}
	return out
}
