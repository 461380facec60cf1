package store

import (
	"context"
	"flag"
	"fmt"
	"testing"
)

var exportEvents = flag.Int("export.events", 200_000, "events in the store BenchmarkExport reads")

// BenchmarkExport reads the whole feed of a store, 1,000 events a page, as
// edgetrack sync does: with the default block cache and with a quarter of it.
// Each event is read by id, so once the store outgrows the cache this is
// bound by the cache.
func BenchmarkExport(b *testing.B) {
	dir := b.TempDir()
	n := *exportEvents
	s := openAt(b, Options{Dir: dir})
	for _, batch := range benchBatches(n / benchBatch) {
		if _, err := s.Ingest(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		cache int64
	}{
		{fmt.Sprintf("cache=%dMiB-default", DefaultCacheSize>>20), DefaultCacheSize},
		{fmt.Sprintf("cache=%dMiB", DefaultCacheSize>>22), DefaultCacheSize / 4},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := openAt(b, Options{Dir: dir, CacheSize: c.cache})
			defer s.Close()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				got := 0
				for after := ""; ; {
					r, err := s.Export(context.Background(), ExportQuery{After: after, Limit: 1000})
					if err != nil {
						b.Fatal(err)
					}
					if len(r.Events) == 0 {
						break
					}
					got += len(r.Events)
					after = r.Next
				}
				if got != n/benchBatch*benchBatch {
					b.Fatalf("exported %d of %d", got, n)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
