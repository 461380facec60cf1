package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The feed's horizon (package doc: The feed with several aggregators).
// Every store is a writer of the database and records in the writers table
// its mark: a promise that each row it inserts from then on has a seq of
// at least the mark, and that each row it inserted below the mark is
// visible. A feed read passes no seq at or above its horizon: the least of
// this store's own part (marks.done) and the marks of the other live
// writers, read after it (horizon).
//
// A writer's rows in the table have a version, and the one of the highest
// version is its state: live (reads wait for its mark), pending (it is
// registering: reads wait for it entirely) or closed (reads do not wait for
// it). The mark of every row is the writer's highest seq so far, plus one,
// so that the highest mark of the table bounds every horizon a read has
// used, also after merges keep only each writer's last row.

// DefaultWriterTimeout: see Options.WriterTimeout.
const DefaultWriterTimeout = 30 * time.Second

// The states of a writer.
const (
	writerLive    = 0
	writerPending = 1
	writerClosed  = 2
)

// marks is a store's state of the feed's horizon.
type marks struct {
	timeout time.Duration // Options.WriterTimeout

	// Under Store.ingestMu:
	version   uint64    // of the store's last mark row
	published time.Time // when the last live mark that was recorded began to be sent; zero: not registered

	// done is this store's own part of the horizon: every row it inserted
	// with a lower seq is visible (or was never stored). 0 while the store
	// is not registered. It is recorded (as a mark, or as the row done-1)
	// before it is set.
	done atomic.Uint64

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// horizon is the seq no feed read may reach now: below it every row of
// every writer that may still insert is visible. It reads the marks of the
// other writers after it takes its own part: a writer that registered too
// late for that read to see it read the record of that part when it
// registered, and gives out seqs above it.
func (s *Store) horizon(ctx context.Context) (uint64, error) {
	own := s.marks.done.Load()
	if own == 0 {
		return 0, nil
	}
	others, err := s.otherMarks(ctx)
	return min(own, others), err
}

// startMarks registers the store and starts recording its mark: every
// PollInterval while another writer is live (pending or live: its feed
// reads wait for the mark), else every quarter of WriterTimeout, which
// keeps it fresh (a writer that appears is seen within a PollInterval). A store whose registration fails (a server of its cluster
// down) starts all the same: it registers at its first Ingest or mark, and
// until then its feed reads pass nothing.
func (s *Store) startMarks(ctx context.Context) {
	s.ingestMu.Lock()
	err := s.advanceMark(ctx)
	s.ingestMu.Unlock()
	if err != nil {
		s.log.Warn("the store could not record its feed mark; it tries again", "error", err)
	}
	loop, stop := context.WithCancel(context.Background())
	s.marks.stop = stop
	s.marks.wg.Go(func() {
		Follow(loop, s.poll, s.log, "the feed marks", func(ctx context.Context) error {
			others, err := s.otherMarks(ctx)
			if err != nil {
				return err
			}
			s.ingestMu.Lock()
			defer s.ingestMu.Unlock()
			if others == math.MaxUint64 && time.Since(s.marks.published) < s.marks.timeout/4 {
				return nil
			}
			return s.advanceMark(ctx)
		})
	})
}

// stopMarks stops recording the store's mark and records that it is
// closed, so that feed reads of other stores do not wait for it.
func (s *Store) stopMarks() {
	s.marks.stop()
	s.marks.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.ingestMu.Lock()
	defer s.ingestMu.Unlock()
	if s.marks.version == 0 { // it recorded nothing
		return
	}
	if err := s.recordMark(ctx, writerClosed, s.lastSeq.Load()+1); err != nil {
		s.log.Warn("recording that the store is closed failed; other aggregators' feeds wait WriterTimeout for it", "error", err)
	}
}

// advanceMark records a mark at the next seq, under ingestMu: no insert is
// in flight, so every row of the store below it is visible.
//
// A store that is not registered, or whose last live mark is older than
// half of WriterTimeout (other writers may take it for gone and have
// passed its mark), registers first: it records that it is pending, which
// holds every feed read back, then reads the highest mark any writer
// recorded and the highest seq stored, and goes on above both. A read that
// did not see it pending used marks that were at most those it read, so
// passed no seq it will give out.
func (s *Store) advanceMark(ctx context.Context) error {
	if time.Since(s.marks.published) > s.marks.timeout/2 {
		if !s.marks.published.IsZero() {
			s.log.Warn("the store's feed mark is stale; registering again", "since", s.marks.published)
		}
		s.marks.published = time.Time{}
		s.marks.done.Store(0)
		if err := s.recordMark(ctx, writerPending, s.lastSeq.Load()+1); err != nil {
			return fmt.Errorf("record the feed mark: %w", err)
		}
		highest, err := s.highestSeq(ctx)
		if err != nil {
			return fmt.Errorf("read the feed's end: %w", err)
		}
		if highest > s.lastSeq.Load() {
			s.lastSeq.Store(highest)
		}
	}
	mark := s.nextSeq()
	s.lastSeq.Store(mark - 1)
	began := time.Now()
	if err := s.recordMark(ctx, writerLive, mark); err != nil {
		return fmt.Errorf("record the feed mark: %w", err)
	}
	s.marks.published = began
	s.marks.done.Store(mark)
	return nil
}

// freshMark, under ingestMu before an insert, registers the store again
// when its mark is stale (see advanceMark).
func (s *Store) freshMark(ctx context.Context) error {
	if time.Since(s.marks.published) <= s.marks.timeout/2 {
		return nil
	}
	return s.advanceMark(ctx)
}

// inserted records, under ingestMu, that an insert of n rows from seq
// returned: their seqs are not given out again, also after an error (the
// server may have stored the rows); done moves past them only when the
// insert succeeded, as nothing else records it (the row seq+n-1 does; after
// an error the next mark will).
func (s *Store) inserted(seq uint64, n int, err error) {
	s.lastSeq.Store(seq + uint64(n) - 1)
	if err == nil && s.marks.done.Load() != 0 {
		s.marks.done.Store(seq + uint64(n))
	}
}

// recordMark records the store's state and mark, under ingestMu.
func (s *Store) recordMark(ctx context.Context, state uint8, mark uint64) error {
	s.marks.version++
	return s.send(ctx, "INSERT INTO "+s.table("writers")+" (writer, mark, version, state)", func(b batch) error {
		return b.Append(s.writer, mark, s.marks.version, state)
	})
}

// highestSeq is the highest seq any writer may have given out: of the
// rows stored, the feed ends removals recorded, and the marks recorded.
// With a cluster it reads every server's own tables, as a row or mark an
// INSERT wrote may not have reached the others; a server that does not
// answer fails it.
func (s *Store) highestSeq(ctx context.Context) (uint64, error) {
	end, err := s.feedEnd(ctx)
	if err != nil {
		return 0, err
	}
	const q = "SELECT (SELECT max(seq) FROM %[1]s.events%[2]s), (SELECT max(mark) FROM %[1]s.writers%[2]s)"
	read := func(conn driver.Conn, local string) (uint64, error) {
		var seq, mark uint64
		if err := conn.QueryRow(ctx, fmt.Sprintf(q, s.db, local)).Scan(&seq, &mark); err != nil {
			return 0, err
		}
		if mark > 0 {
			mark-- // a mark is a seq not given out yet
		}
		return max(seq, mark), nil
	}
	if s.cluster == nil {
		h, err := read(s.conn, "")
		return max(end, h), err
	}
	highest := make([]uint64, len(s.cluster.replicas))
	errs := make([]error, len(s.cluster.replicas))
	var wg sync.WaitGroup
	for i, r := range s.cluster.replicas {
		wg.Go(func() {
			highest[i], errs[i] = read(r.conn, "_local")
			if errs[i] != nil {
				errs[i] = fmt.Errorf("server %s of cluster %s: %w", r.addr, s.cluster.name, errs[i])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	for _, h := range highest {
		end = max(end, h)
	}
	return end, nil
}

// otherMarks is the least mark of the other writers that recorded one
// within WriterTimeout (by the server's clock): 0 when one is pending;
// math.MaxUint64 when there are none.
func (s *Store) otherMarks(ctx context.Context) (uint64, error) {
	var least uint64
	err := s.conn.QueryRow(ctx, "SELECT min(m) FROM ("+
		"SELECT multiIf(argMax(state, version) = ?, toUInt64(0), argMax(state, version) = ?, toUInt64(?), argMax(mark, version)) AS m"+
		" FROM "+s.table("writers")+" WHERE writer != ? GROUP BY writer HAVING max(at) >= now() - ?"+
		" UNION ALL SELECT toUInt64(?) AS m)",
		uint8(writerPending), uint8(writerClosed), uint64(math.MaxUint64),
		s.writer, uint32((s.marks.timeout+time.Second-1)/time.Second), uint64(math.MaxUint64)).Scan(&least)
	if err != nil {
		return 0, fmt.Errorf("read the feed marks of other aggregators: %w", err)
	}
	return least, nil
}
