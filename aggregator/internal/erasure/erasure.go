package erasure

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/internal/promreg"
	"github.com/edgetrack/edgetrack/internal/subject"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// Errors of Erasures' methods.
var (
	// ErrTombstonesGone: tombstones after the cursor were removed by
	// retention; the reader missed erasures.
	ErrTombstonesGone = errors.New("erasure: tombstones removed")
	ErrClosed         = errors.New("erasure: closed")
)

// Audit actions.
const (
	ActionSuppress = "suppress"
	ActionErase    = "erase"
)

// Record is one record of the audit log (a line of erasure/audit.log, or a
// row of erasure_log). It names the subject by kind and hash only.
type Record struct {
	Seq     uint64       `json:"seq"` // the erasure; both records of one share it
	Time    time.Time    `json:"time"`
	Actor   string       `json:"actor"` // fingerprint of the admin token
	Action  string       `json:"action"`
	Kind    subject.Kind `json:"kind"`
	Subject string       `json:"subject"`          // subject.Subject.Hash
	Erased  int          `json:"erased,omitempty"` // events removed (erase)
}

// Tombstone is what a sync client needs of one erasure: the ids of the
// events it removed.
type Tombstone struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	IDs  []string  `json:"ids"`
}

// Options configure Open.
type Options struct {
	Dir   string       // <data_dir>/erasure; created when missing
	Store store.Eraser // removes the subjects' events
	// ClickHouseDSN, when set (aggregator.store.backend clickhouse), keeps
	// the state in the store's database instead of Dir, shared with every
	// aggregator on it (the package doc's Storage section).
	ClickHouseDSN string
	// PollInterval is how often the state in ClickHouse is read for what
	// other aggregators wrote; <= 0 means DefaultPollInterval.
	PollInterval time.Duration
	// AckWait bounds how long an erasure on ClickHouse waits for the other
	// live aggregators to acknowledge its suppression before it erases;
	// <= 0 means DefaultAckWait.
	AckWait time.Duration
	Now     func() time.Time
	// TombstoneRetention is how long tombstones are kept; > 0.
	TombstoneRetention time.Duration
	Registerer         prometheus.Registerer
	Logger             *slog.Logger
}

// Erasures is the aggregator's erasure state. It is safe for concurrent use.
//
// Lock order: followMu, then gate, then mu.
type Erasures struct {
	opts  Options
	log   *slog.Logger
	store storage
	// eraser removes events; store keeps the erasure state.
	eraser store.Eraser

	// followMu: one reader of the storage at a time (suppress, append,
	// poll), so that records are taken in the storage's order.
	followMu sync.Mutex
	acked    uint64    // the seq last acknowledged (under followMu)
	ackedAt  time.Time // when (under followMu)

	// gate: Ingest holds it shared, a suppression exclusively.
	gate sync.RWMutex

	mu         sync.Mutex // guards what follows
	seq        uint64     // last erasure's seq: the list's version
	entries    []subject.Entry
	set        *subject.Set
	changed    chan struct{} // closed and replaced when the list changes
	records    []Record
	goneBefore uint64 // tombstones of seqs <= goneBefore may be removed
	draining   bool   // List answers at once
	closed     bool

	stopFollow context.CancelFunc
	followed   chan struct{} // closed when follow returned

	erased   prometheus.Counter
	requests *prometheus.CounterVec
	lagging  prometheus.Counter
}

// Open opens the erasure state in opts.Dir, or in the ClickHouse database
// of opts.ClickHouseDSN, replaying its audit log, and removes tombstones
// past their retention. On ClickHouse it follows what other aggregators
// write until Close.
func Open(opts Options) (*Erasures, error) {
	if opts.Dir == "" {
		return nil, errors.New("erasure: Options.Dir is empty")
	}
	if opts.Store == nil {
		return nil, errors.New("erasure: Options.Store is nil")
	}
	if opts.TombstoneRetention <= 0 {
		return nil, fmt.Errorf("erasure: Options.TombstoneRetention must be positive, got %s", opts.TombstoneRetention)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.AckWait <= 0 {
		opts.AckWait = DefaultAckWait
	}
	var (
		st  storage
		err error
	)
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	if opts.ClickHouseDSN != "" {
		st, err = openClickHouse(ctx, opts.ClickHouseDSN, opts.Logger)
	} else {
		st, err = openFiles(opts.Dir)
	}
	if err != nil {
		return nil, err
	}
	records, err := st.load(ctx)
	if err != nil {
		st.close()
		return nil, err
	}
	e := &Erasures{opts: opts, log: opts.Logger, store: st, eraser: opts.Store, changed: make(chan struct{}), set: subject.NewSet(nil)}
	e.take(records)
	if err := e.initMetrics(opts.Registerer); err != nil {
		st.close()
		return nil, err
	}
	if st.shared() {
		if err := e.importFiles(ctx); err != nil {
			st.close()
			return nil, err
		}
	}
	if err := e.Sweep(); err != nil {
		st.close()
		return nil, err
	}
	e.followed = make(chan struct{})
	if st.shared() {
		// Live from the start: an erasure through another aggregator
		// waits for this one from now on.
		now := opts.Now()
		if err := st.ack(ctx, e.seq, now); err != nil {
			st.close()
			return nil, err
		}
		e.acked, e.ackedAt = e.seq, now
		fctx, stop := context.WithCancel(context.Background())
		e.stopFollow = stop
		go e.follow(fctx)
	} else {
		close(e.followed)
	}
	return e, nil
}

// take applies records the storage returned, in its order: the audit
// records, the suppression list and its version. Callers hold followMu
// (or are Open); when records add a subject to the list, they hold the
// gate too, so that no ingest runs across the change.
func (e *Erasures) take(records []Record) {
	e.mu.Lock()
	defer e.mu.Unlock()
	before := e.seq
	added := false
	for _, r := range records {
		e.records = append(e.records, r)
		e.seq = max(e.seq, r.Seq)
		if r.Action == ActionSuppress && !slices.ContainsFunc(e.entries, func(x subject.Entry) bool { return x.Hash == r.Subject }) {
			e.entries = append(e.entries, subject.Entry{Kind: r.Kind, Hash: r.Subject})
			added = true
		}
	}
	if added {
		e.set = subject.NewSet(e.entries)
	}
	if e.seq != before && e.changed != nil {
		close(e.changed)
		e.changed = make(chan struct{})
	}
}

// adds reports whether records add a subject to the list.
func (e *Erasures) adds(records []Record) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range records {
		if r.Action == ActionSuppress && !slices.ContainsFunc(e.entries, func(x subject.Entry) bool { return x.Hash == r.Subject }) {
			return true
		}
	}
	return false
}

func (e *Erasures) initMetrics(reg prometheus.Registerer) error {
	e.erased = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "edgetrack", Subsystem: "erasure", Name: "events_erased_total",
		Help: "Events removed from the store by erasure requests.",
	})
	e.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "edgetrack", Subsystem: "erasure", Name: "requests_total",
		Help: "Erasure requests, by result: ok, failed.",
	}, []string{"result"})
	e.lagging = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "edgetrack", Subsystem: "erasure", Name: "unacknowledged_total",
		Help: "Erasures that erased before every live aggregator on the shared database acknowledged their suppression (Options.AckWait passed).",
	})
	if reg == nil {
		return nil
	}
	var err error
	if e.erased, err = promreg.Register(reg, e.erased); err != nil {
		return err
	}
	if e.requests, err = promreg.Register(reg, e.requests); err != nil {
		return err
	}
	if e.lagging, err = promreg.Register(reg, e.lagging); err != nil {
		return err
	}
	return nil
}

// Result is what one erasure did.
type Result struct {
	Seq     uint64       `json:"seq"`
	Time    time.Time    `json:"time"`
	Kind    subject.Kind `json:"kind"`
	Subject string       `json:"subject"` // its hash, as the audit log names it
	Erased  int          `json:"erased"`
}

// Erase carries out an erasure of s on behalf of actor (see the package
// doc for the steps).
func (e *Erasures) Erase(ctx context.Context, s subject.Subject, actor string) (Result, error) {
	res, err := e.erase(ctx, s, actor)
	if err != nil {
		e.requests.WithLabelValues("failed").Inc()
	} else {
		e.requests.WithLabelValues("ok").Inc()
	}
	return res, err
}

func (e *Erasures) erase(ctx context.Context, s subject.Subject, actor string) (Result, error) {
	if err := s.Validate(); err != nil {
		return Result{}, err
	}
	rec, err := e.suppress(ctx, s, actor)
	if err != nil {
		return Result{}, err
	}
	if err := e.awaitAcks(ctx, rec.Seq); err != nil {
		return Result{}, fmt.Errorf("erasure %d of %s: the subject is suppressed, then: %w", rec.Seq, s.Kind, err)
	}
	ids, err := e.eraser.Erase(ctx, s)
	e.erased.Add(float64(len(ids)))
	if len(ids) > 0 {
		// Even after a failed Erase: what it removed must reach the
		// targets.
		tctx, cancel := ioContext(ctx)
		terr := e.store.writeTombstone(tctx, Tombstone{Seq: rec.Seq, Time: rec.Time, IDs: ids})
		cancel()
		if terr != nil && err == nil {
			err = terr
		}
	}
	if err != nil {
		return Result{}, fmt.Errorf("erasure %d of %s: the subject is suppressed, %d events were removed, then: %w", rec.Seq, s.Kind, len(ids), err)
	}
	done := Record{Seq: rec.Seq, Time: e.opts.Now().UTC(), Actor: actor, Action: ActionErase, Kind: s.Kind, Subject: rec.Subject, Erased: len(ids)}
	if err := e.append(ctx, done); err != nil {
		return Result{}, err
	}
	e.log.Info("subject erased", "seq", rec.Seq, "kind", s.Kind, "subject", rec.Subject, "events", len(ids), "actor", actor)
	return Result{Seq: rec.Seq, Time: done.Time, Kind: s.Kind, Subject: rec.Subject, Erased: len(ids)}, nil
}

// suppress records s in the suppression list, with ingest held off, and
// returns the suppress record with its seq.
func (e *Erasures) suppress(ctx context.Context, s subject.Subject, actor string) (Record, error) {
	ctx, cancel := ioContext(ctx)
	defer cancel()
	e.followMu.Lock()
	defer e.followMu.Unlock()
	e.gate.Lock()
	defer e.gate.Unlock()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return Record{}, ErrClosed
	}
	rec := Record{Time: e.opts.Now().UTC(), Actor: actor, Action: ActionSuppress, Kind: s.Kind, Subject: s.Hash()}
	next := e.seq + 1
	e.mu.Unlock()
	seq, recs, err := e.store.suppress(ctx, rec, next)
	e.take(recs) // also after an error: what was read is there
	if err != nil {
		return Record{}, err
	}
	rec.Seq = seq
	return rec, nil
}

// append appends r, an erase record, and takes what others appended.
func (e *Erasures) append(ctx context.Context, r Record) error {
	ctx, cancel := ioContext(ctx)
	defer cancel()
	e.followMu.Lock()
	defer e.followMu.Unlock()
	if err := e.store.append(ctx, r); err != nil {
		return err
	}
	if !e.store.shared() {
		e.take([]Record{r})
		return nil
	}
	return e.catchUp(ctx)
}

// Ingest drops the events of suppressed subjects and passes the others to
// ingest, with the gate held shared (see the package doc). It returns what
// ingest returned, with rejections indexed in events, and how many it
// dropped.
func (e *Erasures) Ingest(events []*eventpb.Event, ingest func([]*eventpb.Event) (store.IngestStats, error)) (store.IngestStats, int, error) {
	e.gate.RLock()
	defer e.gate.RUnlock()
	e.mu.Lock()
	set := e.set
	e.mu.Unlock()
	if set.Len() == 0 {
		st, err := ingest(events)
		return st, 0, err
	}
	kept := make([]*eventpb.Event, 0, len(events))
	var at []int // at[i]: the index in events of kept[i]
	for i, ev := range events {
		if ev != nil && set.Suppressed(ev.GetSession(), ev.GetData()) {
			continue
		}
		kept = append(kept, ev)
		at = append(at, i)
	}
	dropped := len(events) - len(kept)
	if len(kept) == 0 {
		return store.IngestStats{}, dropped, nil
	}
	st, err := ingest(kept)
	for i := range st.Rejected {
		st.Rejected[i].Index = at[st.Rejected[i].Index]
	}
	return st, dropped, err
}

// List returns the suppression list. When after is not below its version,
// it waits up to wait for a change (a long-poll), or until ctx is done.
func (e *Erasures) List(ctx context.Context, after uint64, wait time.Duration) subject.List {
	e.mu.Lock()
	seq, entries, ch, draining := e.seq, e.entries, e.changed, e.draining
	e.mu.Unlock()
	if after >= seq && wait > 0 && !draining {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
		}
		e.mu.Lock()
		seq, entries = e.seq, e.entries
		e.mu.Unlock()
	}
	return subject.List{Version: seq, Subjects: slices.Clone(entries)}
}

// Drain makes List answer at once from now on, waking the long-polls, so
// that they do not hold up a shutdown.
func (e *Erasures) Drain() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.draining {
		e.draining = true
		close(e.changed)
		e.changed = make(chan struct{})
	}
}

// Run removes tombstones past their retention every hour until ctx is done.
func (e *Erasures) Run(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := e.Sweep(); err != nil {
				e.log.Error("removing old erasure tombstones", "error", err)
			}
		}
	}
}

// Records returns the audit records, oldest first.
func (e *Erasures) Records() []Record {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.records)
}

// TombstonePage is one read of the tombstones.
type TombstonePage struct {
	Erasures []Tombstone `json:"erasures"`
	// Next continues after the last erasure returned (or passed over: one
	// that removed nothing has no tombstone); it is After when there is
	// nothing new.
	Next uint64 `json:"next"`
}

// Tombstones returns the tombstones of erasures after seq after, oldest
// first, up to limit erasures. It fails with ErrTombstonesGone when
// retention removed one the reader has not seen.
func (e *Erasures) Tombstones(after uint64, limit int) (TombstonePage, error) {
	e.mu.Lock()
	seq, gone := e.seq, e.goneBefore
	e.mu.Unlock()
	if after < gone {
		return TombstonePage{}, fmt.Errorf("%w: erasures up to %d are no longer kept (aggregator.erasure.tombstone_retention), and this reader is at %d", ErrTombstonesGone, gone, after)
	}
	if after > seq {
		if e.store.shared() {
			// Erasures through another aggregator this one has not read
			// yet (within a poll): nothing new for now.
			return TombstonePage{Erasures: []Tombstone{}, Next: after}, nil
		}
		return TombstonePage{}, fmt.Errorf("erasure: cursor %d is past the last erasure, %d: it belongs to another aggregator", after, seq)
	}
	ctx, cancel := ioContext(context.Background())
	defer cancel()
	ts, err := e.store.tombstones(ctx, after, limit+1)
	if err != nil {
		return TombstonePage{}, err
	}
	page := TombstonePage{Erasures: []Tombstone{}, Next: after}
	for _, t := range ts {
		if t.Seq > seq {
			break // read before this aggregator read its erasure
		}
		if len(page.Erasures) == limit {
			return page, nil
		}
		page.Erasures = append(page.Erasures, t)
		page.Next = t.Seq
	}
	page.Next = max(page.Next, seq) // passed over erasures without tombstones
	return page, nil
}

// Sweep removes tombstones older than the retention.
func (e *Erasures) Sweep() error {
	cutoff := e.opts.Now().Add(-e.opts.TombstoneRetention)
	// A tombstone's time is its erasure's suppress record's: the audit log
	// says which are old, without reading the tombstones, and says it also
	// for the tombstones an earlier run removed.
	e.mu.Lock()
	old := map[uint64]time.Time{}
	for _, r := range e.records {
		if r.Action == ActionSuppress && r.Time.Before(cutoff) {
			old[r.Seq] = r.Time
		}
	}
	for _, r := range e.records {
		if _, ok := old[r.Seq]; ok && r.Action == ActionErase && r.Erased > 0 {
			e.goneBefore = max(e.goneBefore, r.Seq)
		}
	}
	e.mu.Unlock()
	ctx, cancel := ioContext(context.Background())
	defer cancel()
	removed, err := e.store.removeTombstones(ctx, old)
	for _, n := range removed {
		e.mu.Lock()
		e.goneBefore = max(e.goneBefore, n)
		e.mu.Unlock()
		e.log.Info("erasure tombstone removed after its retention", "seq", n, "time", old[n])
	}
	return err
}

// Close stops following the shared state and closes the storage; later
// erasures fail with ErrClosed.
func (e *Erasures) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	if e.stopFollow != nil {
		e.stopFollow()
	}
	<-e.followed
	if e.store.shared() {
		// Hold up no erasure of another aggregator from now on.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := e.store.ack(ctx, gone, e.opts.Now()); err != nil {
			e.log.Warn("could not record that this aggregator stopped; erasures through the others wait up to aggregator AckWait for it", "error", err)
		}
		cancel()
	}
	return e.store.close()
}
