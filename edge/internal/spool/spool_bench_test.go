package spool

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// BenchmarkAppend measures durable appends (each waits for its WAL sync) on
// a real directory, with 1, 16 and 64 concurrent writers of one ~200-byte
// value per Append, and 16 writers of 100 values per Append. b.N counts
// Appends. The quota is raised and acked entries are not removed: this
// measures the write path alone. appends/fsync is the group commit: how
// many Appends one WAL fsync covered (from Pebble's fsync count).
func BenchmarkAppend(b *testing.B) {
	value := bytes.Repeat([]byte("e"), 200)
	cases := []struct {
		writers, perAppend int
	}{
		{1, 1}, {16, 1}, {64, 1}, {16, 100},
	}
	for _, c := range cases {
		b.Run(fmt.Sprintf("writers=%d,values=%d", c.writers, c.perAppend), func(b *testing.B) {
			s := openSpool(b, Options{FS: vfs.Default, Dir: b.TempDir(), QuotaBytes: 1 << 40, MinFreeBytes: -1})
			batch := make([][]byte, c.perAppend)
			for i := range batch {
				batch[i] = value
			}
			b.SetBytes(int64(len(value) * c.perAppend))
			var next atomic.Int64
			var wg sync.WaitGroup
			fsyncs0 := s.Fsyncs()
			b.ResetTimer()
			start := time.Now()
			for range c.writers {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if _, err := s.Append(batch...); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
			if n := s.Fsyncs() - fsyncs0; n > 0 {
				b.ReportMetric(float64(b.N)/float64(n), "appends/fsync")
			}
			if c.perAppend > 1 {
				b.ReportMetric(float64(b.N*c.perAppend)/elapsed.Seconds(), "events/s")
			}
		})
	}
}
