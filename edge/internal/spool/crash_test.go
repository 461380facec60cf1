package spool

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestCrash appends from several goroutines on a filesystem that can drop
// unsynced writes, takes a crash image, and checks that the spool opened on
// the image holds every value whose Append returned nil exactly once, and
// nothing that was never appended.
func TestCrash(t *testing.T) {
	cases := []struct {
		name string
		// midway takes the image while the writers are still running, after
		// about 40% of the values were acknowledged; otherwise after all.
		midway   bool
		unsynced int // CrashCloneCfg.UnsyncedDataPercent
	}{
		{"after appends, synced data only", false, 0},
		{"after appends, half of unsynced data", false, 50},
		{"during appends, synced data only", true, 0},
		{"during appends, half of unsynced data", true, 50},
		{"during appends, all unsynced data", true, 100},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			const writers, perWriter = 8, 60
			fs := vfs.NewCrashableMem()
			s := openSpool(t, Options{FS: fs})

			cfg := vfs.CrashCloneCfg{UnsyncedDataPercent: c.unsynced}
			if c.unsynced > 0 {
				cfg.RNG = rand.New(rand.NewPCG(42, uint64(i)))
			}
			var (
				mu        sync.Mutex
				acked     = map[string]bool{} // Append returned nil
				attempted = map[string]bool{} // Append was called
				mustHave  map[string]bool     // acked when the image was taken
				image     *vfs.MemFS
				imageOnce sync.Once
				wg        sync.WaitGroup
			)
			// takeImage snapshots acked, then takes the crash image: every
			// value in the snapshot returned from Append before the image.
			takeImage := func() {
				imageOnce.Do(func() {
					mu.Lock()
					mustHave = make(map[string]bool, len(acked))
					for v := range acked {
						mustHave[v] = true
					}
					mu.Unlock()
					image = fs.CrashClone(cfg)
				})
			}
			for w := range writers {
				wg.Go(func() {
					for i := range perWriter {
						// Two Appends in three carry a batch of three values.
						var vals [][]byte
						for k := range 1 + 2*min(1, i%3) {
							v := fmt.Sprintf("w%d-%d-%d", w, i, k)
							vals = append(vals, []byte(v))
						}
						mu.Lock()
						for _, v := range vals {
							attempted[string(v)] = true
						}
						mu.Unlock()
						if _, err := s.Append(vals...); err != nil {
							t.Errorf("append: %v", err)
							return
						}
						mu.Lock()
						for _, v := range vals {
							acked[string(v)] = true
						}
						half := len(acked) >= writers*perWriter
						mu.Unlock()
						if c.midway && half {
							// Taken by this writer while the others are
							// still appending.
							takeImage()
						}
					}
				})
			}
			wg.Wait()
			takeImage() // unless a writer took it midway

			s2 := openSpool(t, Options{FS: image})
			if s2.Epoch() <= s.Epoch() {
				t.Fatalf("epoch after crash = %d, want > %d", s2.Epoch(), s.Epoch())
			}
			got := readAll(t, s2, Position{})
			seen := map[string]Position{}
			var last Position
			for _, e := range got {
				v := string(e.Value)
				if !attempted[v] {
					t.Fatalf("invented value %q at %s", v, e.Pos)
				}
				if p, dup := seen[v]; dup {
					t.Fatalf("value %q at %s and %s", v, p, e.Pos)
				}
				if !last.Less(e.Pos) {
					t.Fatalf("position %s after %s", e.Pos, last)
				}
				seen[v], last = e.Pos, e.Pos
			}
			for v := range mustHave {
				if _, ok := seen[v]; !ok {
					t.Fatalf("acknowledged value %q lost (%d of %d acknowledged values survived)", v, len(seen), len(mustHave))
				}
			}
			checkStats(t, s2, Stats{Depth: int64(len(got)), Bytes: sumLen(got)})

			// New appends after the crash never reuse a position.
			p := mustAppend(t, s2, "after crash")
			if !last.Less(p) {
				t.Fatalf("position %s after crash is not after %s", p, last)
			}
			t.Logf("%d acknowledged before the image, %d recovered", len(mustHave), len(got))
		})
	}
}

func sumLen(es []Entry) int64 {
	var n int64
	for _, e := range es {
		n += int64(len(e.Value))
	}
	return n
}
