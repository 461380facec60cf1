// Package erasure carries out erasure requests (GDPR art. 17) at the
// aggregator and keeps their record: the audit log, the suppression list
// that edges pull, and the tombstones (ids of erased events) that sync
// clients read to delete the events from their targets.
//
// An erasure goes in this order, so that nothing of the subject is stored
// after it returns:
//
//  1. The subject is added to the suppression list (a synced audit record,
//     kind and hash only), with ingest held off (Erasures.Ingest takes the
//     gate shared, the addition takes it exclusively): every ingest that
//     starts later drops the subject's events, and every ingest that started
//     earlier has finished, its events in the store.
//  2. The store erases the subject's events (store.Eraser).
//  3. A tombstone with the erased ids is written (tombstones/<seq>.json),
//     then an audit record with the count.
//
// A request that fails after step 1 leaves the subject suppressed and
// possibly some of its events stored; repeating it finishes the job, since
// every step is idempotent. Tombstones are removed after
// Options.TombstoneRetention; the audit records are kept.
//
// The state lives in <data_dir>/erasure. With several aggregators each keeps
// its own; erasing through one does not suppress at the others.
package erasure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/internal/atomicfile"
	"github.com/edgetrack/edgetrack/internal/jsonlog"
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

// Record is one line of the audit log, erasure/audit.log. It names the
// subject by kind and hash only.
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
	Now   func() time.Time
	// TombstoneRetention is how long tombstones are kept; > 0.
	TombstoneRetention time.Duration
	Registerer         prometheus.Registerer
	Logger             *slog.Logger
}

// Erasures is the aggregator's erasure state. It is safe for concurrent use.
type Erasures struct {
	opts   Options
	log    *slog.Logger
	audit  *jsonlog.Log[Record]
	eraser store.Eraser

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

	erased   prometheus.Counter
	requests *prometheus.CounterVec
}

// Open opens the erasure state in opts.Dir, replaying its audit log, and
// removes tombstones past their retention.
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
	if err := os.MkdirAll(filepath.Join(opts.Dir, "tombstones"), 0o700); err != nil {
		return nil, fmt.Errorf("erasure: %w", err)
	}
	audit, records, err := jsonlog.Open[Record](filepath.Join(opts.Dir, "audit.log"))
	if err != nil {
		return nil, fmt.Errorf("erasure: audit log: %w", err)
	}
	e := &Erasures{opts: opts, log: opts.Logger, audit: audit, eraser: opts.Store, records: records, changed: make(chan struct{})}
	seen := map[string]bool{}
	for _, r := range records {
		e.seq = max(e.seq, r.Seq)
		if r.Action == ActionSuppress && !seen[r.Subject] {
			seen[r.Subject] = true
			e.entries = append(e.entries, subject.Entry{Kind: r.Kind, Hash: r.Subject})
		}
	}
	e.set = subject.NewSet(e.entries)
	if err := e.initMetrics(opts.Registerer); err != nil {
		audit.Close()
		return nil, err
	}
	if err := e.Sweep(); err != nil {
		audit.Close()
		return nil, err
	}
	return e, nil
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
	rec, err := e.suppress(s, actor)
	if err != nil {
		return Result{}, err
	}
	ids, err := e.eraser.Erase(ctx, s)
	e.erased.Add(float64(len(ids)))
	if len(ids) > 0 {
		// Even after a failed Erase: what it removed must reach the
		// targets.
		if terr := e.writeTombstone(Tombstone{Seq: rec.Seq, Time: rec.Time, IDs: ids}); terr != nil && err == nil {
			err = terr
		}
	}
	if err != nil {
		return Result{}, fmt.Errorf("erasure %d of %s: the subject is suppressed, %d events were removed, then: %w", rec.Seq, s.Kind, len(ids), err)
	}
	done := Record{Seq: rec.Seq, Time: e.opts.Now().UTC(), Actor: actor, Action: ActionErase, Kind: s.Kind, Subject: rec.Subject, Erased: len(ids)}
	if err := e.append(done); err != nil {
		return Result{}, err
	}
	e.log.Info("subject erased", "seq", rec.Seq, "kind", s.Kind, "subject", rec.Subject, "events", len(ids), "actor", actor)
	return Result{Seq: rec.Seq, Time: done.Time, Kind: s.Kind, Subject: rec.Subject, Erased: len(ids)}, nil
}

// suppress records s in the suppression list, with ingest held off.
func (e *Erasures) suppress(s subject.Subject, actor string) (Record, error) {
	e.gate.Lock()
	defer e.gate.Unlock()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return Record{}, ErrClosed
	}
	rec := Record{Seq: e.seq + 1, Time: e.opts.Now().UTC(), Actor: actor, Action: ActionSuppress, Kind: s.Kind, Subject: s.Hash()}
	e.mu.Unlock()
	if err := e.append(rec); err != nil {
		return Record{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq = rec.Seq
	if !slices.ContainsFunc(e.entries, func(x subject.Entry) bool { return x.Hash == rec.Subject }) {
		e.entries = append(e.entries, subject.Entry{Kind: s.Kind, Hash: rec.Subject})
		e.set = subject.NewSet(e.entries)
	}
	close(e.changed)
	e.changed = make(chan struct{})
	return rec, nil
}

func (e *Erasures) append(r Record) error {
	if err := e.audit.Append(r); err != nil {
		return fmt.Errorf("erasure: audit log: %w", err)
	}
	e.mu.Lock()
	e.records = append(e.records, r)
	e.mu.Unlock()
	return nil
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
		return TombstonePage{}, fmt.Errorf("erasure: cursor %d is past the last erasure, %d: it belongs to another aggregator", after, seq)
	}
	page := TombstonePage{Erasures: []Tombstone{}, Next: after}
	names, err := e.tombstoneSeqs()
	if err != nil {
		return TombstonePage{}, err
	}
	for _, n := range names {
		if n <= after {
			continue
		}
		if len(page.Erasures) == limit {
			return page, nil
		}
		t, err := e.readTombstone(n)
		if err != nil {
			return TombstonePage{}, err
		}
		page.Erasures = append(page.Erasures, t)
		page.Next = n
	}
	page.Next = max(page.Next, seq) // passed over erasures without tombstones
	return page, nil
}

// Sweep removes tombstones older than the retention.
func (e *Erasures) Sweep() error {
	seqs, err := e.tombstoneSeqs()
	if err != nil {
		return err
	}
	cutoff := e.opts.Now().Add(-e.opts.TombstoneRetention)
	// A tombstone's time is its erasure's suppress record's: the audit log
	// says which are old, without reading the files, and says it also for
	// the tombstones an earlier run removed.
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
	for _, n := range seqs {
		at, ok := old[n]
		if !ok {
			break // seq order is time order
		}
		if err := os.Remove(e.tombstonePath(n)); err != nil {
			return fmt.Errorf("erasure: %w", err)
		}
		e.mu.Lock()
		e.goneBefore = max(e.goneBefore, n)
		e.mu.Unlock()
		e.log.Info("erasure tombstone removed after its retention", "seq", n, "time", at)
	}
	return nil
}

func (e *Erasures) tombstonePath(seq uint64) string {
	return filepath.Join(e.opts.Dir, "tombstones", fmt.Sprintf("%020d.json", seq))
}

// tombstoneSeqs lists the tombstones' seqs in order.
func (e *Erasures) tombstoneSeqs() ([]uint64, error) {
	des, err := os.ReadDir(filepath.Join(e.opts.Dir, "tombstones"))
	if err != nil {
		return nil, fmt.Errorf("erasure: %w", err)
	}
	var seqs []uint64
	for _, de := range des {
		if n, ok := strings.CutSuffix(de.Name(), ".json"); ok {
			if v, err := strconv.ParseUint(n, 10, 64); err == nil {
				seqs = append(seqs, v)
			}
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

func (e *Erasures) readTombstone(seq uint64) (Tombstone, error) {
	b, err := os.ReadFile(e.tombstonePath(seq))
	if err != nil {
		return Tombstone{}, fmt.Errorf("erasure: %w", err)
	}
	var t Tombstone
	if err := json.Unmarshal(b, &t); err != nil {
		return Tombstone{}, fmt.Errorf("erasure: tombstone %d: %w", seq, err)
	}
	return t, nil
}

// writeTombstone writes t durably (internal/atomicfile).
func (e *Erasures) writeTombstone(t Tombstone) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(e.tombstonePath(t.Seq), b); err != nil {
		return fmt.Errorf("erasure: tombstone %d: %w", t.Seq, err)
	}
	return nil
}

// Close closes the audit log; later erasures fail with ErrClosed.
func (e *Erasures) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	return e.audit.Close()
}
