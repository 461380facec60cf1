package pebble

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// Options configure a Pebble store.
type Options struct {
	// Dir is the database directory; it is created when missing.
	Dir string
	// FS is the filesystem; nil means the operating system's. Tests use
	// vfs.NewMem, or vfs.NewCrashableMem to drop unsynced writes.
	FS vfs.FS
	// Registerer receives the store's metrics (edgetrack_store_*); nil
	// registers nothing.
	Registerer prometheus.Registerer
	// Logger receives the store's and Pebble's messages; nil means
	// slog.Default().
	Logger *slog.Logger
	// CacheSize is Pebble's block cache in bytes; <= 0 means
	// DefaultCacheSize. The process holds up to this much more memory as
	// the cache fills.
	CacheSize int64
}

// DefaultCacheSize is the block cache of a store whose Options do not name
// one. Reads of events by id (GET /events pages, the export feed) land all
// over the id key space; once the store is larger than the cache they evict
// the filter and index blocks every lookup needs, and each read goes to the
// disk for them: with 64 MiB, reading the feed of a 1M-event store as
// ingest left it ran at 0.66× the rate it had with 256 MiB
// (BenchmarkExport, bench/results/2026-12-06-ecc9fe4.md).
const DefaultCacheSize = 256 << 20

// Store is a store.Store on an embedded Pebble database; see the package doc
// for its key layout.
//
// Idempotent ingest rests on one invariant: between reading which ids exist
// and committing the batch that adds the missing ones, no other batch adds
// events. Pebble has no conditional writes, so ingestMu holds that window
// shut, and the synced commit happens inside it. Concurrent Ingest calls
// therefore run one at a time, each paying its own fsync.
//
// Two ways to let concurrent calls overlap, alone or together:
//
//   - Commit under the lock with DB.ApplyNoSyncWait (it returns once the
//     batch is applied and visible, before the WAL fsync), release the lock,
//     then Batch.SyncWait, so that concurrent calls share fsyncs through
//     Pebble's group commit. The next call's lookups then see events that
//     are not durable yet, so a call that reports an id as a duplicate must
//     itself wait for a sync covering that id (its own synced commit, or a
//     synced empty LogData) before returning; otherwise a crash could lose an
//     event whose sender was told it was stored.
//   - Stripe the lock by id hash, each call taking the stripes of its ids in
//     order, so that calls with disjoint ids do not wait for one another.
//     Batches whose ids span every stripe gain little from this.
//
// Queries and Get do not take ingestMu; they rely on events never changing
// and on each event and its index entries being committed, and removed by
// Expire, in one batch. A query whose iterator still sees the index entry
// of an event Expire removed since skips it.
// Pebble makes a batch visible before its fsync completes, so a reader can
// see an event shortly before the Ingest that stores it returns.
type Store struct {
	db      *pebbledb.DB
	log     *slog.Logger
	metrics *metrics

	ingestMu sync.Mutex

	// The export feed: this database's id, the last sequence number given
	// to a stored event (advanced under ingestMu after each commit), and a
	// channel closed and replaced after each commit that stored events.
	storeID  [8]byte
	lastSeq  atomic.Uint64
	signalMu sync.Mutex
	signal   chan struct{}
	closing  chan struct{} // closed by Close: long-polls end

	// closeMu is held shared by every call and exclusively by Close, so Close
	// waits for calls in flight and later calls see closed.
	closeMu sync.RWMutex
	closed  bool
}

var _ store.Store = (*Store)(nil)

// Open opens or creates the Pebble store in opts.Dir, migrating a database
// of an earlier key layout (see the package doc). An open store holds up to
// its block cache (opts.CacheSize) and two 64 MiB memtables of memory (see
// pebbleOptions).
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("store: open: no directory")
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	cache := opts.CacheSize
	if cache <= 0 {
		cache = DefaultCacheSize
	}
	po := pebbleOptions(opts.FS, log, cache)
	db, err := pebbledb.Open(opts.Dir, po)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", opts.Dir, err)
	}
	if err := checkLayout(db, log); err != nil {
		return nil, errors.Join(fmt.Errorf("store: open %s: %w", opts.Dir, err), db.Close())
	}
	id, last, err := loadFeed(db)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("store: open %s: %w", opts.Dir, err), db.Close())
	}
	log.Info("store opened", "dir", opts.Dir)
	p := &Store{db: db, log: log, metrics: m, storeID: id, signal: make(chan struct{}), closing: make(chan struct{})}
	p.lastSeq.Store(last)
	return p, nil
}

// pebbleOptions is how the store configures Pebble.
func pebbleOptions(fs vfs.FS, log *slog.Logger, cacheSize int64) *pebbledb.Options {
	po := &pebbledb.Options{
		FS:                 fs,
		Logger:             pebbleLogger{log.With("engine", "pebble")},
		FormatMajorVersion: pebbledb.FormatNewest,
		// Every event writes up to six keys, and the duplicate check reads
		// the filter and index blocks of every file holding ids: Pebble's
		// defaults (8 MiB cache, 4 MiB memtables) are sized for embedding
		// in small programs, and with them ingest spends its time on block
		// reads, flushes and L0 compactions. The cache: see DefaultCacheSize.
		CacheSize:    cacheSize,
		MemTableSize: 64 << 20,
		// Compactions may run on every core when they fall behind (Pebble
		// starts at one and adds more as compaction debt grows): building
		// a 10-million-event store on 2 cores took 1m55s this way against
		// 2m12s with Pebble's default of one.
		CompactionConcurrencyRange: func() (int, int) { return 1, max(1, runtime.GOMAXPROCS(0)) },
	}
	// Bloom filters spare most disk reads of the duplicate check, which looks
	// up ids that mostly do not exist yet.
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	return po
}

// checkLayout records the key layout version (and a store id) in a new
// database, migrates databases of an earlier layout one step at a time (1
// had no rollups, 2 no export feed), and refuses any other one.
func checkLayout(db *pebbledb.DB, log *slog.Logger) error {
	v, closer, err := db.Get([]byte(layoutKey))
	switch {
	case errors.Is(err, pebbledb.ErrNotFound):
		b := db.NewBatch()
		defer b.Close()
		if err := newStoreID(b); err != nil {
			return err
		}
		if err := b.Set([]byte(layoutKey), []byte(layoutVersion), nil); err != nil {
			return err
		}
		return b.Commit(pebbledb.Sync)
	case err != nil:
		return fmt.Errorf("read key layout version: %w", err)
	}
	version := string(v)
	closer.Close()
	switch version {
	case layoutVersion:
		return nil
	case "1":
		if err := migrateRollups(db, log); err != nil {
			return fmt.Errorf("migrate key layout 1 to 2: %w", err)
		}
		fallthrough
	case "2":
		if err := migrateFeed(db, log); err != nil {
			return fmt.Errorf("migrate key layout 2 to 3: %w", err)
		}
		return nil
	}
	return fmt.Errorf("key layout version %q, want %q", version, layoutVersion)
}

func (p *Store) acquire() error {
	p.closeMu.RLock()
	if p.closed {
		p.closeMu.RUnlock()
		return store.ErrClosed
	}
	return nil
}

func (p *Store) release() { p.closeMu.RUnlock() }

// marshal is deterministic so that the stored bytes of an event do not depend
// on map iteration (Event has no maps today; this keeps it that way).
var marshal = proto.MarshalOptions{Deterministic: true}

// Ingest implements store.Store.
func (p *Store) Ingest(ctx context.Context, events []*eventpb.Event) (store.IngestStats, error) {
	if err := p.acquire(); err != nil {
		return store.IngestStats{}, err
	}
	defer p.release()
	began := time.Now()

	// Validate and encode outside the lock; concurrent calls do this in
	// parallel.
	type accepted struct {
		ev  *eventpb.Event
		val []byte
		pos int // in ok: the order the caller gave
	}
	var st store.IngestStats
	ok := make([]accepted, 0, len(events))
	size := 0
	for i, ev := range events {
		reason := store.Problem(ev)
		var val []byte
		if reason == "" {
			var err error
			if val, err = marshal.Marshal(ev); err != nil {
				reason = store.ReasonUnencodable + err.Error()
			}
		}
		if reason != "" {
			st.Rejected = append(st.Rejected, store.Rejection{Index: i, ID: ev.GetId(), Reason: reason})
			continue
		}
		ok = append(ok, accepted{ev, val, len(ok)})
		// The primary key and value plus up to five index keys of about
		// one value, 8 bytes of time and the id each, plus batch overhead;
		// rollups are few per batch.
		size += len(val) + 6*(len(ev.GetId())+48)
	}
	if err := ctx.Err(); err != nil {
		return store.IngestStats{}, err
	}

	p.ingestMu.Lock()
	defer p.ingestMu.Unlock()
	if err := ctx.Err(); err != nil { // the wait for the lock can be long
		return store.IngestStats{}, err
	}
	// Which ids are new: the first copy of each id in this call, unless an
	// event with that id is stored already. The lookups go in id order
	// through one iterator, so Pebble opens each file once per call and its
	// seeks move forward; SeekPrefixGE consults the bloom filters.
	first := make([]accepted, 0, len(ok))
	seen := make(map[string]struct{}, len(ok))
	for _, a := range ok {
		if _, dup := seen[a.ev.GetId()]; dup {
			st.Duplicates++
			continue
		}
		seen[a.ev.GetId()] = struct{}{}
		first = append(first, a)
	}
	slices.SortFunc(first, func(x, y accepted) int { return strings.Compare(x.ev.GetId(), y.ev.GetId()) })
	it, err := p.db.NewIterWithContext(ctx, &pebbledb.IterOptions{LowerBound: []byte{ksEvent}, UpperBound: []byte{ksEvent + 1}})
	if err != nil {
		return store.IngestStats{}, fmt.Errorf("store: ingest: %w", err)
	}
	defer it.Close()
	b := p.db.NewBatchWithSize(size)
	defer b.Close()
	rollups := rollupDeltas{}
	var key []byte
	var fresh []int // positions in ok of the events stored by this call
	for _, a := range first {
		key = eventKey(key[:0], a.ev.GetId())
		if it.SeekPrefixGE(key) && bytes.Equal(it.Key(), key) {
			st.Duplicates++
			continue
		}
		if err := b.Set(key, a.val, nil); err != nil {
			return store.IngestStats{}, fmt.Errorf("store: ingest: %w", err)
		}
		key, err = indexKeys(key, a.ev, func(k []byte) error { return b.Set(k, nil, nil) })
		if err != nil {
			return store.IngestStats{}, fmt.Errorf("store: ingest: %w", err)
		}
		rollups.add(a.ev)
		fresh = append(fresh, a.pos)
		st.Stored++
	}
	if err := it.Error(); err != nil {
		return store.IngestStats{}, fmt.Errorf("store: ingest: look up ids: %w", err)
	}
	if st.Stored > 0 {
		// Read-modify-write of the counts is safe under ingestMu; see
		// rollupDeltas.apply.
		if err := rollups.apply(p.db, b); err != nil {
			return store.IngestStats{}, fmt.Errorf("store: ingest: rollups: %w", err)
		}
		// The feed in the caller's order; sequence numbers advance only
		// when the batch commits.
		slices.Sort(fresh)
		seq := p.lastSeq.Load()
		for _, pos := range fresh {
			seq++
			if err := b.Set(feedKey(seq), []byte(ok[pos].ev.GetId()), nil); err != nil {
				return store.IngestStats{}, fmt.Errorf("store: ingest: %w", err)
			}
		}
		if err := b.Commit(pebbledb.Sync); err != nil {
			return store.IngestStats{}, fmt.Errorf("store: ingest: commit %d events: %w", st.Stored, err)
		}
		p.lastSeq.Store(seq)
		p.notifyStored()
	}
	p.metrics.Observe(st, time.Since(began))
	return st, nil
}

// has reports whether key exists.
func (p *Store) has(key []byte) (bool, error) {
	_, closer, err := p.db.Get(key)
	if errors.Is(err, pebbledb.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, closer.Close()
}

// Get implements store.Store.
func (p *Store) Get(ctx context.Context, id string) (*eventpb.Event, error) {
	if err := p.acquire(); err != nil {
		return nil, err
	}
	defer p.release()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if id == "" {
		return nil, store.ErrNotFound
	}
	return p.get(p.db, eventKey(nil, id))
}

// get reads and decodes the event stored under key.
func (p *Store) get(r pebbledb.Reader, key []byte) (*eventpb.Event, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebbledb.ErrNotFound) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get %q: %w", key[1:], err)
	}
	defer closer.Close()
	ev := new(eventpb.Event)
	if err := proto.Unmarshal(v, ev); err != nil { // copies out of v
		return nil, fmt.Errorf("store: decode event %q: %w", key[1:], err)
	}
	return ev, nil
}

// Query implements store.Store.
func (p *Store) Query(ctx context.Context, q store.Query) (store.Result, error) {
	if err := p.acquire(); err != nil {
		return store.Result{}, err
	}
	defer p.release()
	if err := ctx.Err(); err != nil {
		return store.Result{}, err
	}
	if err := q.CheckPaging(); err != nil {
		return store.Result{}, err
	}
	limit := q.PageSize()
	pl := planQuery(q)
	var start []byte
	if q.Cursor != "" {
		var err error
		if start, err = pl.start(q.Cursor); err != nil {
			return store.Result{}, err
		}
	}
	res := store.Result{Events: make([]*eventpb.Event, 0, min(limit, 64))}
	if pl.empty {
		return res, nil
	}
	var r pebbledb.Reader = p.db
	if q.Offset > 0 {
		// Skipping reads rollups and index keys; the page must start
		// where they say, also while events arrive.
		snap := p.db.NewSnapshot()
		defer snap.Close()
		r = snap
		var err error
		if start, err = p.skip(ctx, r, q, pl, q.Offset); err != nil {
			return store.Result{}, fmt.Errorf("store: query: skip %d events: %w", q.Offset, err)
		}
		if start == nil {
			return res, nil // fewer events match than the offset
		}
	}

	it, err := r.NewIterWithContext(ctx, &pebbledb.IterOptions{LowerBound: pl.lower, UpperBound: pl.upper})
	if err != nil {
		return store.Result{}, fmt.Errorf("store: query: %w", err)
	}
	defer it.Close()
	valid := false
	if start != nil {
		valid = it.SeekGE(start)
	} else {
		valid = it.First()
	}
	// Events are read with a Get each. (One iterator over the primary
	// keyspace for the whole page was measured slower: a prefix seek visits
	// every level, a Get stops at the newest one holding the key, and
	// queries mostly ask for recent events.)
	idKey := []byte{ksEvent}
	var last []byte // key of the last event on the page
	for n := 0; valid; valid, n = it.Next(), n+1 {
		if n%256 == 255 {
			if err := ctx.Err(); err != nil {
				return store.Result{}, err
			}
		}
		k := it.Key()
		// The look-ahead event is read too: retention may have removed it
		// since the iterator was made.
		idKey = append(idKey[:1], k[len(pl.prefix)+timeLen:]...)
		ev, err := p.get(r, idKey)
		if errors.Is(err, store.ErrNotFound) {
			// Removed by retention (Expire) after the iterator saw its
			// index entry: the removal's batch took both.
			continue
		}
		if err != nil {
			return store.Result{}, fmt.Errorf("store: query: %w", err)
		}
		if pl.check != nil && !pl.check(ev) {
			continue
		}
		if len(res.Events) == limit {
			// One more event matches: the next page starts after the last
			// event of this one. Not at this key: an event ingested
			// meanwhile may sort between.
			res.Next = cursor{ks: pl.ks, filters: pl.filters, pos: last[len(pl.prefix):]}.encode()
			break
		}
		res.Events = append(res.Events, ev)
		last = append(last[:0], k...)
	}
	if err := it.Error(); err != nil {
		return store.Result{}, fmt.Errorf("store: query: %w", err)
	}
	return res, nil
}

// Ready implements store.Store: the store is open and can read.
func (p *Store) Ready() error {
	if err := p.acquire(); err != nil {
		return err
	}
	defer p.release()
	ok, err := p.has([]byte(layoutKey))
	if err != nil {
		return fmt.Errorf("store: not ready: %w", err)
	}
	if !ok {
		return errors.New("store: not ready: key layout version missing")
	}
	return nil
}

// Close implements store.Store. It waits for calls in flight; closing twice is a
// no-op.
func (p *Store) Close() error {
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	close(p.closing)
	if err := p.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	p.log.Info("store closed")
	return nil
}

// pebbleLogger routes Pebble's messages to slog.
type pebbleLogger struct{ l *slog.Logger }

// Infof logs at debug level: Pebble reports routine work (WAL replay,
// compactions) this way.
func (l pebbleLogger) Infof(format string, args ...any) {
	l.l.Debug(fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.l.Error(fmt.Sprintf(format, args...))
}

// Fatalf is called on corruption Pebble cannot continue from; it must not
// return.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.l.Error(msg, "fatal", true)
	panic("store: pebble: " + msg)
}
