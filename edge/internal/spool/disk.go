package spool

import (
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"
)

// diskCheckInterval is how often at most the free space is read.
const diskCheckInterval = 100 * time.Millisecond

// diskGuard reports ErrFull when the filesystem holding dir has less than min
// bytes free. It reads the free space at most every diskCheckInterval, on the
// calling goroutine that wins the race for it; the others use the last value.
// A nil *diskGuard never reports full.
type diskGuard struct {
	dir    string
	min    int64
	now    func() time.Time
	base   time.Time
	log    *slog.Logger
	statfs func(dir string) (free uint64, err error)

	checked atomic.Int64 // time of the last read since base, +1; 0 = never
	free    atomic.Int64 // last free bytes read; -1 = unknown
	failing atomic.Bool  // the last read failed (logged once per failure run)
}

func newDiskGuard(dir string, minFree int64, now func() time.Time, log *slog.Logger) *diskGuard {
	g := &diskGuard{dir: dir, min: minFree, now: now, base: now(), log: log, statfs: freeBytes}
	g.free.Store(-1)
	return g
}

func (g *diskGuard) check(room int64) error {
	if g == nil {
		return nil
	}
	t := int64(g.now().Sub(g.base)) + 1
	if last := g.checked.Load(); last == 0 || t-last >= int64(diskCheckInterval) {
		if g.checked.CompareAndSwap(last, t) {
			g.read()
		}
	}
	if free := g.free.Load(); free >= 0 && free-room < g.min {
		if room == 0 {
			return fmt.Errorf("%w: %d bytes free on the disk of %s, need %d", ErrFull, free, g.dir, g.min)
		}
		return fmt.Errorf("%w: %d bytes free on the disk of %s, need %d and room for a request of %d", ErrFull, free, g.dir, g.min, room)
	}
	return nil
}

func (g *diskGuard) read() {
	free, err := g.statfs(g.dir)
	if err != nil {
		// Unknown free space does not block appends: the quota still holds.
		g.free.Store(-1)
		if !g.failing.Swap(true) {
			g.log.Warn("cannot read free disk space; only the quota limits the spool", "err", err)
		}
		return
	}
	g.failing.Store(false)
	g.free.Store(int64(min(free, math.MaxInt64)))
}
