package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgetrack/edgetrack/wasm/dist"
	"github.com/edgetrack/edgetrack/wasm/host"
)

// Defaults and limits.
const (
	DefaultMaxModuleBytes = 8 << 20
	// MaxWait is the longest a manifest long-poll waits.
	MaxWait = 60 * time.Second
	// maxEdges bounds the status reports kept; reports of further edges
	// are refused.
	maxEdges = 10000
)

// Errors of the registry's operations, for errors.Is: they come wrapped
// with what was asked for. A refused upload is a *Rejection instead.
var (
	ErrUnknownRule    = errors.New("registry: unknown rule")
	ErrUnknownVersion = errors.New("registry: unknown version")
	ErrNoPrevious     = errors.New("registry: no previous version")
	ErrAmbiguous      = errors.New("registry: ambiguous hash prefix")
	ErrTooManyEdges   = errors.New("registry: too many edges")
	ErrClosed         = errors.New("registry: closed")
)

// KnownRules returns the names of the rules edges serve, the built-in ones
// of wasm/dist's table, sorted.
func KnownRules() []string {
	names := dist.Names()
	slices.Sort(names)
	return names
}

// Options configure a Registry.
type Options struct {
	// Dir is the registry's directory, <aggregator.data_dir>/rules; it is
	// created when missing. With ClickHouseDSN it is only looked at: Open
	// warns when it holds a registry, which is then not served.
	Dir string
	// ClickHouseDSN, when set, keeps the registry in tables of that
	// ClickHouse database (the store's, aggregator.store.clickhouse.dsn)
	// instead of Dir, shared by every aggregator that names it: see the
	// package doc.
	ClickHouseDSN string
	// PollInterval is how often a registry in ClickHouse reads what other
	// aggregators wrote; <= 0 means DefaultPollInterval.
	PollInterval time.Duration
	// Rules are the rule names uploads are accepted for; nil means
	// KnownRules().
	Rules []string
	// MaxModuleBytes limits an upload's body; default 8 MiB.
	MaxModuleBytes int64
	// Validation configures the checks of uploads.
	Validation ValidatorOptions
	Registerer prometheus.Registerer // nil registers nothing
	Logger     *slog.Logger          // nil means slog.Default()
	Now        func() time.Time      // nil means time.Now
}

type builtinModule struct {
	hash string
	wasm []byte
}

// Registry keeps rule versions and serves them. It is safe for concurrent
// use.
//
// Its state is its storage's log replayed (apply), up to position pos. Every
// change goes through the log: under writeMu, the registry reads what other
// aggregators appended, decides on that state, appends, and applies the
// entry when it counts (commit), or reads and decides again. writeMu is
// held across storage I/O and taken before mu; mu guards the state in
// memory and is never held across I/O of the log. idx, history and pos
// change only under both, so holding either is enough to read them.
type Registry struct {
	store     storage
	names     []string
	builtin   map[string]builtinModule
	maxModule int64
	now       func() time.Time
	log       *slog.Logger
	metrics   *metrics
	validator *Validator

	writeMu sync.Mutex
	pos     int64 // log entries applied

	mu      sync.Mutex
	idx     index
	history map[string][]string // per rule: versions to roll back to, last on top
	edges   map[string]*edgeReport
	changed chan struct{} // closed and replaced at every activation
	closed  bool
	drain   chan struct{} // closed by Drain: long-polls answer at once
	drained bool

	stopFollow context.CancelFunc // nil unless the storage is shared
	followed   chan struct{}      // closed when follow returns
}

// Open opens or creates the registry in opts.Dir (or the ClickHouse
// database of opts.ClickHouseDSN), replays its log and starts its
// validation runtime. Close releases it.
func Open(ctx context.Context, opts Options) (_ *Registry, err error) {
	if opts.Dir == "" && opts.ClickHouseDSN == "" {
		return nil, errors.New("registry: no directory")
	}
	if opts.Rules == nil {
		opts.Rules = KnownRules()
	}
	if opts.MaxModuleBytes <= 0 {
		opts.MaxModuleBytes = DefaultMaxModuleBytes
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Validation.Logger == nil {
		opts.Validation.Logger = opts.Logger
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	// Opening and reading the storage gives up after a minute (a
	// ClickHouse server that does not answer); the runtime lives on.
	loadCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var st storage
	if opts.ClickHouseDSN != "" {
		if fi, err := os.Stat(filepath.Join(opts.Dir, "audit.log")); opts.Dir != "" && err == nil && fi.Size() > 0 {
			opts.Logger.Warn("a rule registry in the data directory is not served: with the ClickHouse store the registry is in the database; upload and activate its versions there again",
				"dir", opts.Dir)
		}
		st, err = openClickHouse(loadCtx, opts.ClickHouseDSN, opts.Logger)
	} else {
		st, err = openFiles(opts.Dir)
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			st.close()
		}
	}()
	r := &Registry{
		store:     st,
		names:     slices.Sorted(slices.Values(opts.Rules)),
		builtin:   map[string]builtinModule{},
		maxModule: opts.MaxModuleBytes,
		now:       opts.Now,
		log:       opts.Logger,
		metrics:   m,
		history:   map[string][]string{},
		edges:     map[string]*edgeReport{},
		changed:   make(chan struct{}),
		drain:     make(chan struct{}),
		idx:       index{Rules: map[string]*ruleIndex{}},
	}
	for _, name := range r.names {
		if b, ok := dist.Rule(name); ok {
			r.builtin[name] = builtinModule{hash: host.Hash(b), wasm: b}
		}
	}
	if err := r.load(loadCtx); err != nil {
		return nil, err
	}
	if r.validator, err = NewValidator(ctx, opts.Validation); err != nil {
		return nil, err
	}
	m.version.Set(float64(r.idx.Version))
	if st.shared() {
		fctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		r.stopFollow, r.followed = stop, make(chan struct{})
		go r.follow(fctx, opts.PollInterval)
	}
	return r, nil
}

// Drain makes long-polls in progress, and those that start later, answer
// at once: call it when the aggregator begins to shut down, so that
// graceful shutdown does not wait for them.
func (r *Registry) Drain() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.drained {
		r.drained = true
		close(r.drain)
	}
}

// Close drains, stops following a shared storage, waits for the writes in
// flight and closes the storage and the validation runtime.
func (r *Registry) Close() error {
	r.Drain()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	if r.stopFollow != nil {
		r.stopFollow()
		<-r.followed
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	return errors.Join(r.store.close(), r.validator.Close(context.Background()))
}

// isClosed reports whether Close was called.
func (r *Registry) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// Known reports whether name is a rule the registry serves.
func (r *Registry) Known(name string) bool {
	_, ok := slices.BinarySearch(r.names, name)
	return ok
}

// KnownRule returns nil when name is a rule the registry serves, else
// ErrUnknownRule naming the rules it serves.
func (r *Registry) KnownRule(name string) error {
	if !r.Known(name) {
		return fmt.Errorf("%w %q; the registry serves %s", ErrUnknownRule, name, strings.Join(r.names, ", "))
	}
	return nil
}

// MaxModuleBytes is the largest upload body accepted.
func (r *Registry) MaxModuleBytes() int64 { return r.maxModule }

// Fingerprint names an admin token in the audit log and in uploaded_by
// without revealing it: the first 8 hex digits of its SHA-256.
func Fingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:4])
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// short abbreviates a hash for logs.
func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
