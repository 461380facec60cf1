package spool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// ErrFull is returned by Append when the spool is over its quota or the disk
// holding it is low on space. Callers answer 503 with Retry-After.
var ErrFull = errors.New("spool: full")

// ErrClosed is returned by every operation on a closed spool.
var ErrClosed = errors.New("spool: closed")

// Defaults for zero Options fields.
const (
	DefaultQuotaBytes   = 1 << 30
	DefaultMinFreeBytes = 64 << 20
	DefaultReopenAfter  = time.Second
)

// maxReopenWait caps the backoff between attempts to reopen Pebble.
const maxReopenWait = time.Minute

// Options configure Open.
type Options struct {
	// Dir is the data directory; it is created if missing.
	Dir string
	// FS is the filesystem Dir lives on; nil means vfs.Default. Tests pass
	// vfs.NewCrashableMem() to simulate crashes.
	FS vfs.FS
	// QuotaBytes bounds the live value bytes (queue and dead letters
	// together): when they are at QuotaBytes, or an Append would take them
	// above it, Append returns ErrFull and stores nothing. 0 means
	// DefaultQuotaBytes. Keys, dead-letter reasons and Pebble's own overhead
	// (WAL, memtables, sstables awaiting compaction) come on top, so leave the
	// disk room beyond the quota; MinFreeBytes is the backstop.
	QuotaBytes int64
	// MinFreeBytes makes Append return ErrFull when the filesystem holding Dir
	// has less free space than this, so Pebble never runs into a full disk.
	// 0 means DefaultMinFreeBytes; negative disables the check. Free space is
	// read with statfs at most every 100ms, and only when FS is vfs.Default.
	MinFreeBytes int64
	// Registerer receives the edgetrack_spool_* metrics; nil means none.
	// Close unregisters them, so a spool can be reopened on the same registry.
	Registerer prometheus.Registerer
	// Logger receives Pebble's errors and the spool's own rare messages; nil
	// means slog.Default().
	Logger *slog.Logger
	// Now is the clock used for dead-letter timestamps and the free-space
	// check interval; nil means time.Now.
	Now func() time.Time
	// ReopenAfter is how long after a failed write the spool first reopens
	// Pebble (see Spool.reopen); later attempts back off to a minute. 0
	// means DefaultReopenAfter.
	ReopenAfter time.Duration
}

// Entry is one queue entry as returned by Read.
type Entry struct {
	Pos   Position
	Value []byte
}

// Stats are the spool's exact counters.
type Stats struct {
	Epoch           uint64
	Depth           int64 // queue entries
	Bytes           int64 // queue value bytes
	DeadLetters     int64 // dead letters
	DeadLetterBytes int64 // dead letter value bytes
}

// Spool is a durable FIFO on Pebble. All methods are safe for concurrent use.
// See the package documentation for the invariants it keeps.
type Spool struct {
	// db is nil after a reopen failed; epoch is that of the last Open or
	// reopen. Both change only with closeMu held exclusively (reopen).
	db    *pebble.DB
	epoch uint64
	dir   string
	fs    vfs.FS
	log   *slog.Logger
	now   func() time.Time
	quota int64
	disk  *diskGuard
	m     *metrics // nil without a Registerer

	fsyncsBefore uint64 // WAL fsyncs of the Pebble instances closed by reopens
	reopenAfter  time.Duration
	reopening    atomic.Bool   // a reopen goroutine runs
	stop         chan struct{} // closed by Close: the reopen goroutine ends
	bg           sync.WaitGroup

	// closeMu is held shared by every operation that touches db and
	// exclusively by Close, so Close waits for them and Pebble never sees a
	// use after close. Lock order: closeMu, then adminMu, then mu.
	closeMu sync.RWMutex
	closed  bool // guarded by closeMu

	// mu orders the commit pipeline. Sequence numbers are allocated and the
	// batch carrying them is handed to Pebble (ApplyNoSyncWait, which writes
	// it to the WAL buffer, applies it to the memtable and publishes it)
	// without releasing mu, so Pebble's commit order is the sequence order,
	// and because Pebble publishes batches for reading in commit order a
	// reader never sees seq N+1 before seq N. The WAL fsync is waited for
	// after mu is released, which is what lets concurrent Appends share one
	// fsync. Append's quota check and counter increments also happen under mu
	// (see invariant 5 in the package documentation).
	mu       sync.Mutex
	nextSeq  uint64        // guarded by mu
	notify   chan struct{} // closed and replaced when entries appear; guarded by mu
	notified bool          // a Wait holds notify; guarded by mu
	// lastSeq is the last sequence number allocated in this epoch. It is
	// stored under mu after the batch was published, so every queue entry is
	// at or before Position{epoch, lastSeq}.
	lastSeq atomic.Uint64

	// adminMu serialises the operations that remove or move entries (Ack,
	// DeadLetter, Replay, Purge), so each can count what it removes and then
	// remove exactly that.
	adminMu sync.Mutex
	head    Position // no live queue entry is before head; guarded by adminMu

	depth, bytes, dead, deadBytes atomic.Int64

	ioErr atomic.Pointer[ioFailure] // last failed write, cleared by a good Append or a reopen
}

type ioFailure struct {
	at  time.Time
	err error
}

// Open opens (or creates) the spool in opts.Dir, starts a new epoch with a
// synced write, and counts what is stored.
func Open(opts Options) (*Spool, error) {
	if opts.Dir == "" {
		return nil, errors.New("spool: open: Options.Dir is empty")
	}
	switch {
	case opts.QuotaBytes == 0:
		opts.QuotaBytes = DefaultQuotaBytes
	case opts.QuotaBytes < 0:
		return nil, fmt.Errorf("spool: open: Options.QuotaBytes is negative (%d)", opts.QuotaBytes)
	}
	if opts.MinFreeBytes == 0 {
		opts.MinFreeBytes = DefaultMinFreeBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ReopenAfter <= 0 {
		opts.ReopenAfter = DefaultReopenAfter
	}
	fs := opts.FS
	if fs == nil {
		fs = vfs.Default
	}
	log := opts.Logger.With("dir", opts.Dir) // the caller names the component

	if err := fs.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("spool: open: create %s: %w", opts.Dir, err)
	}
	db, err := pebble.Open(opts.Dir, pebbleOptions(fs, log))
	if err != nil {
		return nil, fmt.Errorf("spool: open %s: %w", opts.Dir, err)
	}
	s := &Spool{
		db:          db,
		dir:         opts.Dir,
		fs:          fs,
		log:         log,
		now:         opts.Now,
		quota:       opts.QuotaBytes,
		notify:      make(chan struct{}),
		reopenAfter: opts.ReopenAfter,
		stop:        make(chan struct{}),
	}
	if fs == vfs.Default && opts.MinFreeBytes > 0 {
		s.disk = newDiskGuard(opts.Dir, opts.MinFreeBytes, opts.Now, log)
	}
	if err := s.recover(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("spool: open %s: %w", opts.Dir, err)
	}
	if opts.Registerer != nil {
		if s.m, err = newMetrics(opts.Registerer, s); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("spool: open %s: register metrics: %w", opts.Dir, err)
		}
	}
	s.disk.check(0) // read the free space once now, not on the first request
	st := s.Stats()
	log.Info("spool opened", "epoch", st.Epoch, "depth", st.Depth, "bytes", st.Bytes,
		"dead_letters", st.DeadLetters, "dead_letter_bytes", st.DeadLetterBytes)
	return s, nil
}

// recover counts the stored entries, finds the head of the queue, and starts
// a new epoch above every epoch seen (invariant 1).
func (s *Spool) recover() error {
	var epoch uint64
	v, closer, err := s.db.Get(metaEpochKey)
	switch {
	case err == nil:
		if len(v) != 8 {
			_ = closer.Close()
			return fmt.Errorf("read epoch: malformed value of %d bytes", len(v))
		}
		epoch = binary.BigEndian.Uint64(v)
		_ = closer.Close()
	case !errors.Is(err, pebble.ErrNotFound):
		return fmt.Errorf("read epoch: %w", err)
	}

	first, last, n, size, err := s.scan(prefixQueue, nil, nil, func(v []byte) int64 { return int64(len(v)) })
	if err != nil {
		return fmt.Errorf("count queue: %w", err)
	}
	s.depth.Store(n)
	s.bytes.Store(size)
	epoch = max(epoch, last.Epoch)
	if n > 0 {
		s.head = first
	}

	_, last, n, size, err = s.scan(prefixDead, nil, nil, deadValueLen)
	if err != nil {
		return fmt.Errorf("count dead letters: %w", err)
	}
	s.dead.Store(n)
	s.deadBytes.Store(size)
	epoch = max(epoch, last.Epoch)

	epoch++
	if epoch == 0 {
		return errors.New("epoch overflow")
	}
	if err := s.db.Set(metaEpochKey, binary.BigEndian.AppendUint64(nil, epoch), pebble.Sync); err != nil {
		return fmt.Errorf("write epoch: %w", err)
	}
	s.epoch = epoch
	s.nextSeq = 1
	if s.depth.Load() == 0 {
		s.head = Position{Epoch: epoch, Seq: 1}
	}
	return nil
}

// scan walks the keys under prefix in [lower, upper) (nil = whole prefix) and
// returns the first and last position, the number of keys and the sum of
// size(value).
func (s *Spool) scan(prefix byte, lower, upper []byte, size func([]byte) int64) (first, last Position, n, total int64, err error) {
	lo, hi := prefixBounds(prefix)
	if lower == nil {
		lower = lo
	}
	if upper == nil {
		upper = hi
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return first, last, 0, 0, err
	}
	for ok := it.First(); ok; ok = it.Next() {
		pos, err := decodeKey(it.Key(), prefix)
		if err != nil {
			_ = it.Close()
			return first, last, 0, 0, err
		}
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return first, last, 0, 0, err
		}
		if n == 0 {
			first = pos
		}
		last = pos
		n++
		total += size(v)
	}
	return first, last, n, total, errors.Join(it.Error(), it.Close())
}

// Epoch returns the spool's epoch: the Epoch of every position Append hands
// out. It changes only when the spool reopens Pebble after a failed write.
func (s *Spool) Epoch() uint64 {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	return s.epoch
}

// Tail returns the last position this epoch has handed out (to Append or
// Replay), or {Epoch(), 0} before the first. The entry there may have been
// acked or dead-lettered since, or never stored (a failed write spends its
// positions too). Under concurrency the tail separates what came before from
// what comes after: every entry whose Append or Replay returned before Tail
// was called is at or before it, entries of older epochs included, and every
// entry whose Append starts after Tail returned is after it. An Append
// running at the same time may fall on either side. Tail reads one counter;
// it never touches Pebble and never fails.
func (s *Spool) Tail() Position {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	return s.tail()
}

// tail is Tail with closeMu held.
func (s *Spool) tail() Position { return Position{Epoch: s.epoch, Seq: s.lastSeq.Load()} }

// Append stores values as consecutive entries and returns the position of the
// first. On nil error every value is in a synced WAL (the client may be told
// its events are stored); concurrent Appends share fsyncs. On ErrFull or
// ErrClosed nothing was stored. Append with no values stores nothing and
// returns the zero Position.
//
// Any other error means the write failed: the entries may or may not survive,
// the client must send them again, and Ready reports the failure until an
// Append succeeds or the spool has reopened Pebble (see reopen).
func (s *Spool) Append(values ...[]byte) (Position, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if err := s.usable(); err != nil {
		if errors.Is(err, ErrClosed) {
			s.m.failed(reasonClosed)
		}
		return Position{}, err
	}
	if len(values) == 0 {
		return Position{}, nil
	}
	var size int64
	repr := 12 // batch header
	for _, v := range values {
		size += int64(len(v))
		repr += 1 + 2*binaryMaxVarint32 + keyLen + len(v)
	}
	if err := s.disk.check(0); err != nil {
		s.m.failed(reasonFull)
		return Position{}, err
	}

	b := s.db.NewBatchWithSize(repr)
	var key [keyLen]byte
	s.mu.Lock()
	if used := s.bytes.Load() + s.deadBytes.Load(); used >= s.quota || used+size > s.quota {
		s.mu.Unlock()
		_ = b.Close()
		s.m.failed(reasonFull)
		return Position{}, fmt.Errorf("%w: %d bytes stored, %d more would exceed the quota of %d", ErrFull, used, size, s.quota)
	}
	first := Position{Epoch: s.epoch, Seq: s.nextSeq}
	for i, v := range values {
		putKey(key[:], prefixQueue, Position{Epoch: s.epoch, Seq: first.Seq + uint64(i)})
		if err := b.Set(key[:], v, nil); err != nil {
			s.mu.Unlock()
			_ = b.Close()
			s.m.failed(reasonIO)
			return Position{}, fmt.Errorf("spool: append: %w", err)
		}
	}
	err := s.db.ApplyNoSyncWait(b, pebble.Sync)
	// The sequence numbers are spent even on error: the batch may have
	// reached the WAL, and a position must never be reused.
	s.nextSeq += uint64(len(values))
	s.lastSeq.Store(s.nextSeq - 1)
	if err == nil {
		s.bytes.Add(size)
		s.depth.Add(int64(len(values)))
		s.wakeLocked()
	}
	s.mu.Unlock()
	if err != nil {
		_ = b.Close()
		return Position{}, s.writeFailed("append", err)
	}

	start := time.Now()
	err = b.SyncWait()
	s.m.synced(time.Since(start))
	_ = b.Close()
	if err != nil {
		// The entries are visible and counted (they are in the memtable) but
		// may not survive a crash; the client is told to send them again.
		return Position{}, s.writeFailed("append: sync", err)
	}
	s.m.appended(len(values))
	if s.ioErr.Load() != nil {
		s.ioErr.Store(nil)
	}
	return first, nil
}

// binaryMaxVarint32 is the most bytes a uvarint length takes in a batch.
const binaryMaxVarint32 = 5

func (s *Spool) writeFailed(op string, err error) error {
	s.m.failed(reasonIO)
	s.ioErr.Store(&ioFailure{at: s.now(), err: err})
	s.log.Error("spool write failed", "op", op, "err", err)
	s.startReopen()
	return fmt.Errorf("spool: %s: %w", op, err)
}

// usable returns nil when the spool can be used, ErrClosed after Close, or
// the failure that a reopen has not repaired yet. closeMu must be held.
func (s *Spool) usable() error {
	if s.closed {
		return ErrClosed
	}
	if s.db == nil {
		err := errors.New("reopen pending")
		if f := s.ioErr.Load(); f != nil {
			err = f.err
		}
		return fmt.Errorf("spool: not open after a failed write: %w", err)
	}
	return nil
}

// startReopen starts the goroutine that reopens Pebble after a failed write,
// unless one runs. Pebble's WAL writer keeps its first error: once a write or
// an fsync of the WAL failed, every later commit fails with it, so without a
// reopen the spool would refuse events until the process restarts. Reopening
// is what a restart does, without the restart: Pebble replays the WAL from
// disk (what reached it survives, the failed tail did not, and its clients
// were told to send again), and recover counts what is stored and starts a
// new epoch above every position handed out (invariant 1). The first attempt
// comes ReopenAfter after the failure; while the disk keeps failing the wait
// doubles, up to maxReopenWait.
func (s *Spool) startReopen() {
	if !s.reopening.CompareAndSwap(false, true) {
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		wait := s.reopenAfter
		for {
			t := time.NewTimer(wait)
			select {
			case <-s.stop:
				t.Stop()
				s.reopening.Store(false)
				return
			case <-t.C:
			}
			err := s.reopen()
			if errors.Is(err, ErrClosed) {
				s.reopening.Store(false)
				return
			}
			if err != nil {
				wait = min(2*wait, maxReopenWait)
				s.log.Error("spool reopen failed; trying again", "err", err, "in", wait)
				continue
			}
			// A write that failed after the reopen found this goroutine
			// still running and left the reopen to it.
			s.reopening.Store(false)
			if s.ioErr.Load() == nil || !s.reopening.CompareAndSwap(false, true) {
				return
			}
			wait = s.reopenAfter
		}
	}()
}

// reopen closes Pebble and opens it again, with every other operation shut
// out (closeMu held exclusively), then recounts the spool and starts a new
// epoch. When it fails, db stays nil and operations return the failure until
// a later attempt succeeds.
func (s *Spool) reopen() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return ErrClosed
	}
	old := s.epoch
	if s.db != nil {
		var m dto.Metric
		if err := s.db.Metrics().LogWriter.FsyncLatency.Write(&m); err == nil {
			s.fsyncsBefore += m.GetHistogram().GetSampleCount()
		}
		// Close reports the WAL's sticky error; the data on disk is what
		// the reopen reads.
		_ = s.db.Close()
		s.db = nil
	}
	fail := func(err error) error {
		s.ioErr.Store(&ioFailure{at: s.now(), err: err})
		s.m.reopened(false)
		return fmt.Errorf("spool: reopen %s: %w", s.dir, err)
	}
	db, err := pebble.Open(s.dir, pebbleOptions(s.fs, s.log))
	if err != nil {
		return fail(err)
	}
	s.db = db
	s.mu.Lock()
	err = s.recover()
	if err == nil {
		s.lastSeq.Store(0)
		s.wakeLocked() // readers look again: what survived may differ
	}
	s.mu.Unlock()
	if err != nil {
		_ = db.Close()
		s.db = nil
		return fail(err)
	}
	s.ioErr.Store(nil)
	s.m.reopened(true)
	s.log.Warn("spool reopened after a failed write", "old_epoch", old, "epoch", s.epoch,
		"depth", s.depth.Load(), "dead_letters", s.dead.Load())
	return nil
}

// wakeLocked wakes every Wait. s.mu must be held.
func (s *Spool) wakeLocked() {
	if s.notified {
		close(s.notify)
		s.notify = make(chan struct{})
		s.notified = false
	}
}

// Read returns up to maxEntries entries after position after, in order, with
// about maxBytes of values: it stops before an entry that would take the total
// over maxBytes, but always returns at least one entry if there is any. One
// call never returns entries of two different epochs. maxEntries <= 0 or
// maxBytes <= 0 means no limit of that kind. The entries own their values.
func (s *Spool) Read(after Position, maxEntries, maxBytes int) ([]Entry, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if err := s.usable(); err != nil {
		return nil, err
	}
	_, upper := prefixBounds(prefixQueue)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: keyAfter(prefixQueue, after), UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("spool: read after %s: %w", after, err)
	}
	defer func() { _ = it.Close() }()

	const slabSize = 64 << 10
	var (
		entries []Entry
		total   int
		slab    []byte
	)
	for ok := it.First(); ok; ok = it.Next() {
		pos, err := decodeKey(it.Key(), prefixQueue)
		if err != nil {
			return nil, fmt.Errorf("spool: read after %s: %w", after, err)
		}
		if len(entries) > 0 && pos.Epoch != entries[0].Pos.Epoch {
			break
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("spool: read %s: %w", pos, err)
		}
		if len(entries) > 0 && maxBytes > 0 && total+len(v) > maxBytes {
			break
		}
		// Copy values into shared slabs: one allocation per ~64 KiB instead
		// of one per entry.
		if cap(slab)-len(slab) < len(v) {
			slab = make([]byte, 0, max(len(v), slabSize))
		}
		n := len(slab)
		slab = append(slab, v...)
		entries = append(entries, Entry{Pos: pos, Value: slab[n:len(slab):len(slab)]})
		total += len(v)
		if maxEntries > 0 && len(entries) >= maxEntries {
			break
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("spool: read after %s: %w", after, err)
	}
	return entries, nil
}

// Wait blocks until an entry after position after exists, ctx is done
// (returning ctx.Err()), or the spool is closed (returning ErrClosed).
func (s *Spool) Wait(ctx context.Context, after Position) error {
	for {
		s.mu.Lock()
		ch := s.notify
		s.notified = true
		s.mu.Unlock()

		ok, err := s.hasAfter(after)
		if err != nil || ok {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *Spool) hasAfter(after Position) (bool, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if err := s.usable(); err != nil {
		return false, err
	}
	if !after.Less(s.tail()) {
		return false, nil // every entry is at or before the tail
	}
	_, upper := prefixBounds(prefixQueue)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: keyAfter(prefixQueue, after), UpperBound: upper})
	if err != nil {
		return false, fmt.Errorf("spool: wait after %s: %w", after, err)
	}
	ok := it.First()
	return ok, errors.Join(it.Error(), it.Close())
}

// Ack removes every queue entry at or before through, with one DeleteRange.
// The delete is not synced: a lost Ack only means the entries are sent again,
// and the aggregator de-duplicates. through may be past the tail; entries
// appended after the Ack started are never removed by it.
func (s *Spool) Ack(through Position) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if err := s.usable(); err != nil {
		return err
	}
	s.adminMu.Lock()
	defer s.adminMu.Unlock()

	// Everything at or before the tail is published, so the count below
	// sees every entry the DeleteRange removes (invariant 5).
	if t := s.tail(); t.Less(through) {
		through = t
	}
	if through.Less(s.head) {
		return nil
	}
	start := appendKey(make([]byte, 0, keyLen), prefixQueue, s.head)
	end := keyAfter(prefixQueue, through)
	_, _, n, size, err := s.scan(prefixQueue, start, end, func(v []byte) int64 { return int64(len(v)) })
	if err != nil {
		return fmt.Errorf("spool: ack through %s: count: %w", through, err)
	}
	if n > 0 {
		if err := s.db.DeleteRange(start, end, pebble.NoSync); err != nil {
			return fmt.Errorf("spool: ack through %s: %w", through, err)
		}
		s.depth.Add(-n)
		s.bytes.Add(-size)
	}
	s.head = through.next()
	return nil
}

// Stats returns the spool's counters.
func (s *Spool) Stats() Stats {
	return Stats{
		Epoch:           s.Epoch(),
		Depth:           s.depth.Load(),
		Bytes:           s.bytes.Load(),
		DeadLetters:     s.dead.Load(),
		DeadLetterBytes: s.deadBytes.Load(),
	}
}

// Ready returns nil when the spool is open, its last write did not fail, and
// it is under its quota with enough free disk; otherwise an error saying why
// (wrapping ErrClosed or ErrFull where those apply).
func (s *Spool) Ready() error { return s.ReadyFor(0) }

// ReadyFor is Ready for a caller that needs room for room more bytes: it
// also fails when fewer are left under the quota, or above the disk's
// minimum free space. A readiness probe asks with the size of a typical
// request, so that a load balancer stops sending before every request is
// refused. Room beyond an eighth of the quota is not asked for, so that a
// small spool is ready when empty.
func (s *Spool) ReadyFor(room int64) error {
	room = min(room, s.quota/8)
	s.closeMu.RLock()
	err := s.usable()
	s.closeMu.RUnlock()
	if errors.Is(err, ErrClosed) {
		return err
	}
	if f := s.ioErr.Load(); f != nil {
		return fmt.Errorf("spool: not writable: last write at %s failed (reopening): %w", f.at.Format(time.RFC3339), f.err)
	}
	if used := s.bytes.Load() + s.deadBytes.Load(); used >= s.quota {
		return fmt.Errorf("%w: %d bytes stored, quota is %d", ErrFull, used, s.quota)
	} else if used+room > s.quota {
		return fmt.Errorf("%w: %d bytes stored, quota is %d: no room for a request of %d bytes", ErrFull, used, s.quota, room)
	}
	return s.disk.check(room)
}

// Fsyncs is the number of WAL fsyncs Pebble has done since the spool was
// opened (reopens included): Appends per fsync is the group commit.
func (s *Spool) Fsyncs() uint64 {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	n := s.fsyncsBefore
	if s.db != nil && !s.closed {
		var m dto.Metric
		if err := s.db.Metrics().LogWriter.FsyncLatency.Write(&m); err == nil {
			n += m.GetHistogram().GetSampleCount()
		}
	}
	return n
}

// Sync flushes and syncs the WAL, making earlier Acks durable. Appends are
// durable without it; it is meant for shutdown.
func (s *Spool) Sync() error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if err := s.usable(); err != nil {
		return err
	}
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		return s.writeFailed("sync", err)
	}
	return nil
}

// Close waits for running operations, wakes every Wait (which returns
// ErrClosed), closes Pebble and unregisters the metrics. Calling it again
// returns nil.
func (s *Spool) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
	s.mu.Lock()
	close(s.notify) // never replaced again: Append cannot run any more
	s.mu.Unlock()
	var err error
	if s.db != nil { // nil when a reopen failed
		err = s.db.Close()
	}
	s.closeMu.Unlock()
	s.bg.Wait()
	s.m.unregister()
	if err != nil {
		return fmt.Errorf("spool: close: %w", err)
	}
	return nil
}

// pebbleOptions tunes Pebble for a FIFO: small memtables (most entries are
// acked while still in one and never reach an sstable), no background WAL
// syncing (Append syncs explicitly), and a quiet logger.
func pebbleOptions(fs vfs.FS, log *slog.Logger) *pebble.Options {
	l := pebbleLogger{log: log}
	return &pebble.Options{
		FS:                          fs,
		FormatMajorVersion:          pebble.FormatNewest,
		MemTableSize:                16 << 20,
		MemTableStopWritesThreshold: 4,
		WALBytesPerSync:             0,
		Logger:                      l,
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) { log.Error("pebble background error", "err", err) },
			DataCorruption: func(info pebble.DataCorruptionInfo) {
				log.Error("pebble data corruption", "path", info.Path, "err", info.Details)
			},
			DiskSlow: func(info pebble.DiskSlowInfo) {
				log.Warn("disk slow", "path", info.Path, "op", info.OpType.String(), "duration", info.Duration)
			},
			WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
				log.Warn("pebble write stall", "reason", info.Reason)
			},
		},
	}
}

// pebbleLogger routes Pebble's errors to slog and drops its chatter.
type pebbleLogger struct{ log *slog.Logger }

func (pebbleLogger) Infof(string, ...any) {}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error("pebble: " + fmt.Sprintf(format, args...))
}

// Fatalf must not return (Pebble's default exits the process); panicking
// keeps the stack trace.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := "pebble: " + fmt.Sprintf(format, args...)
	l.log.Error(msg)
	panic(msg)
}
