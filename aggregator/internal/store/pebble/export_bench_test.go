package pebble

import (
	"context"
	"flag"
	"fmt"
	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"testing"
)

var exportEvents = flag.Int("export.events", 200_000, "events in the store BenchmarkExport reads")

// BenchmarkExport reads the whole feed of a store, 1,000 events a page, as
// edgetrack sync does: with the default block cache and with a quarter of it.
// Each event is read by id, so once the store outgrows the cache this is
// bound by the cache.
func BenchmarkExport(b *testing.B) {
	n := *exportEvents
	batches := benchBatches(n / benchBatch)
	for _, c := range []struct {
		name  string
		cache int64
	}{
		{fmt.Sprintf("cache=%dMiB-default", DefaultCacheSize>>20), DefaultCacheSize},
		{fmt.Sprintf("cache=%dMiB", DefaultCacheSize>>22), DefaultCacheSize / 4},
	} {
		b.Run(c.name, func(b *testing.B) {
			// A store as an aggregator has it after taking the events in,
			// not reopened (and so compacted) before the read.
			s := openAt(b, Options{Dir: b.TempDir(), CacheSize: c.cache})
			for _, batch := range batches {
				if _, err := s.Ingest(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				got := 0
				for after := ""; ; {
					r, err := s.Export(context.Background(), store.ExportQuery{After: after, Limit: 1000})
					if err != nil {
						b.Fatal(err)
					}
					if len(r.Events) == 0 {
						break
					}
					got += len(r.Events)
					after = r.Next
				}
				if got != len(batches)*benchBatch {
					b.Fatalf("exported %d of %d", got, len(batches)*benchBatch)
				}
			}
			b.ReportMetric(float64(len(batches)*benchBatch*b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
