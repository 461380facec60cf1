package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgetrack/edgetrack/internal/ruleapi"
	"github.com/edgetrack/edgetrack/wasm/dist"
	"github.com/edgetrack/edgetrack/wasm/host"
	"github.com/edgetrack/edgetrack/wasm/vectors"
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

// KnownRules returns the names of the rules edges serve: the built-in ones
// and the routes that are meant to have one (sorted).
func KnownRules() []string {
	names := append([]string{"hamustro", "eye", "cookiesync"}, dist.Names()...)
	slices.Sort(names)
	return slices.Compact(names)
}

// Options configure a Registry.
type Options struct {
	// Dir is the registry's directory, <aggregator.data_dir>/rules; it is
	// created when missing.
	Dir string
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

// index is index.json.
type index struct {
	// Version is the manifest version.
	Version int64                 `json:"version"`
	Rules   map[string]*ruleIndex `json:"rules"`
}

type ruleIndex struct {
	// Active is the active version's hash, or ruleapi.Builtin.
	Active   string            `json:"active"`
	Versions []ruleapi.Version `json:"versions"`
}

func (ri *ruleIndex) find(hash string) (ruleapi.Version, bool) {
	for _, v := range ri.Versions {
		if v.Hash == hash {
			return v, true
		}
	}
	return ruleapi.Version{}, false
}

// edgeReport is an edge's last report, as kept in edges.json.
type edgeReport struct {
	Rules    map[string]ruleapi.RuleStatus `json:"rules"`
	Reported time.Time                     `json:"reported_at"`
	LastSeen time.Time                     `json:"last_seen"` // last report or manifest poll
}

type builtinModule struct {
	hash string
	wasm []byte
}

// Registry keeps rule versions and serves them. It is safe for concurrent
// use.
type Registry struct {
	dir       string
	names     []string
	builtin   map[string]builtinModule
	maxModule int64
	now       func() time.Time
	log       *slog.Logger
	metrics   *metrics
	validator *Validator

	mu      sync.Mutex
	idx     index
	history map[string][]string // per rule: versions to roll back to, last on top
	audit   *auditLog
	edges   map[string]*edgeReport
	changed chan struct{} // closed and replaced at every activation
	closed  bool
	drain   chan struct{} // closed by Drain: long-polls answer at once
	drained bool
}

// Open opens or creates the registry in opts.Dir, replays its audit log and
// starts its validation runtime. Close releases it.
func Open(ctx context.Context, opts Options) (_ *Registry, err error) {
	if opts.Dir == "" {
		return nil, errors.New("registry: no directory")
	}
	if opts.Rules == nil {
		opts.Rules = KnownRules()
	}
	if opts.MaxModuleBytes <= 0 {
		opts.MaxModuleBytes = DefaultMaxModuleBytes
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
	for _, sub := range []string{"", "modules", "vectors"} {
		d := filepath.Join(opts.Dir, sub)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
		// Temporary files of writes a crash interrupted (writeFileAtomic).
		stale, _ := filepath.Glob(filepath.Join(d, ".*.tmp-*"))
		for _, f := range stale {
			_ = os.Remove(f)
		}
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	r := &Registry{
		dir:       opts.Dir,
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
	defer func() {
		if err != nil && r.audit != nil {
			r.audit.Close()
		}
	}()
	if err := r.load(); err != nil {
		return nil, err
	}
	if r.validator, err = NewValidator(ctx, opts.Validation); err != nil {
		return nil, err
	}
	m.version.Set(float64(r.idx.Version))
	return r, nil
}

// load reads index.json and edges.json and replays audit.log.
func (r *Registry) load() error {
	if err := readJSONFile(r.dir, "index.json", &r.idx); err != nil {
		return err
	}
	if r.idx.Rules == nil {
		r.idx.Rules = map[string]*ruleIndex{}
	}
	if err := readJSONFile(r.dir, "edges.json", &r.edges); err != nil {
		return err
	}
	if r.edges == nil {
		r.edges = map[string]*edgeReport{}
	}
	log, entries, err := openAudit(filepath.Join(r.dir, "audit.log"))
	if err != nil {
		return err
	}
	r.audit = log

	// Replay activations: the log wins over the index.
	active := map[string]string{}
	var version int64 = 1
	for _, e := range entries {
		switch e.Action {
		case ActionActivate:
			r.history[e.Rule] = append(r.history[e.Rule], e.Previous)
		case ActionRollback:
			if h := r.history[e.Rule]; len(h) > 0 {
				r.history[e.Rule] = h[:len(h)-1]
			}
		default:
			continue
		}
		active[e.Rule] = e.Hash
		version++
	}
	dirty := r.idx.Version != version
	r.idx.Version = version
	for _, name := range r.names {
		ri := r.rule(name)
		want, ok := active[name]
		if !ok {
			want = ruleapi.Builtin
		}
		if ri.Active == "" {
			ri.Active = ruleapi.Builtin
		}
		if ri.Active != want {
			r.log.Warn("index.json disagrees with the audit log about the active version; the log wins",
				"rule", name, "index", short(ri.Active), "audit", short(want))
			ri.Active, dirty = want, true
		}
		if want == ruleapi.Builtin {
			continue
		}
		if _, ok := ri.find(want); !ok {
			// The index lost the version (a crash before its write, or
			// an index restored from a backup): rebuild its entry from
			// the module file.
			fi, err := os.Stat(r.modulePath(want))
			if err != nil {
				return fmt.Errorf("registry: rule %s: the active version %s is not on disk: %w", name, short(want), err)
			}
			ri.Versions = append(ri.Versions, ruleapi.Version{Hash: want, Size: int(fi.Size()), UploadedAt: fi.ModTime().UTC(), UploadedBy: "unknown"})
			dirty = true
		}
	}
	if dirty {
		return r.writeIndex()
	}
	return nil
}

// rule returns the index entry of name, creating it. Callers hold mu (or
// own r, during Open).
func (r *Registry) rule(name string) *ruleIndex {
	ri := r.idx.Rules[name]
	if ri == nil {
		ri = &ruleIndex{Active: ruleapi.Builtin}
		r.idx.Rules[name] = ri
	}
	return ri
}

func (r *Registry) writeIndex() error { return writeJSONFile(r.dir, "index.json", &r.idx) }

func (r *Registry) modulePath(hash string) string {
	return filepath.Join(r.dir, "modules", hash+".wasm")
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

// Close drains, closes the audit log and the validation runtime.
func (r *Registry) Close() error {
	r.Drain()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	return errors.Join(r.audit.Close(), r.validator.Close(context.Background()))
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

// Upload validates wasm as a new version of rule name, with the uploaded
// vectors file vectorsJSON (nil: none), and stores it; it does not activate
// it. created is false when the same bytes had been uploaded for the rule
// before: the existing version is returned and nothing is checked or stored
// again (vectors sent along are ignored). It returns ErrUnknownRule, a
// *Rejection (and records it in the audit log), or an I/O error; nothing
// changes then.
func (r *Registry) Upload(ctx context.Context, name string, wasm, vectorsJSON []byte, actor string) (_ ruleapi.Uploaded, created bool, _ error) {
	if err := r.KnownRule(name); err != nil {
		return ruleapi.Uploaded{}, false, err
	}
	hash := host.Hash(wasm)
	if u, ok := r.existing(name, hash); ok {
		r.metrics.uploads.WithLabelValues("existing", "").Inc()
		return u, false, nil
	}

	var file *vectors.File
	if len(vectorsJSON) > 0 {
		f, err := vectors.Parse(vectorsJSON)
		if err != nil {
			return ruleapi.Uploaded{}, false, r.reject(name, hash, actor, &Rejection{Reason: ReasonVectorsFile, Detail: "uploaded vectors: " + err.Error()})
		}
		file = f
	}
	// A validation ends when the registry drains (the aggregator is
	// stopping), not only when the upload's client goes away: a module
	// that takes every call's deadline would otherwise hold up shutdown for
	// the validator's whole timeout.
	vctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-r.drain:
			stop()
		case <-vctx.Done():
		}
	}()
	r.metrics.validating.Inc()
	err := r.validator.Check(vctx, name, wasm, file)
	r.metrics.validating.Dec()
	if err != nil && vctx.Err() != nil && ctx.Err() == nil {
		return ruleapi.Uploaded{}, false, fmt.Errorf("%w: the aggregator is shutting down; upload again", ErrClosed)
	}
	if err != nil {
		if rej, ok := errors.AsType[*Rejection](err); ok {
			return ruleapi.Uploaded{}, false, r.reject(name, hash, actor, rej)
		}
		return ruleapi.Uploaded{}, false, err
	}

	v := ruleapi.Version{Hash: hash, Size: len(wasm), UploadedAt: r.now().UTC().Truncate(time.Millisecond), UploadedBy: actor}
	if file != nil {
		v.Vectors, v.VectorCases = host.Hash(vectorsJSON), len(file.Vectors)
		if err := r.writeOnce(filepath.Join(r.dir, "vectors"), v.Vectors+".json", vectorsJSON); err != nil {
			return ruleapi.Uploaded{}, false, err
		}
	}
	if err := r.writeOnce(filepath.Join(r.dir, "modules"), hash+".wasm", wasm); err != nil {
		return ruleapi.Uploaded{}, false, err
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ruleapi.Uploaded{}, false, ErrClosed
	}
	ri := r.rule(name)
	if old, ok := ri.find(hash); ok { // a concurrent upload of the same bytes won
		r.metrics.uploads.WithLabelValues("existing", "").Inc()
		return ruleapi.Uploaded{Name: name, Hash: hash, Size: old.Size, UploadedAt: old.UploadedAt, Active: ri.Active == hash}, false, nil
	}
	ri.Versions = append(ri.Versions, v)
	if err := r.writeIndex(); err != nil {
		ri.Versions = ri.Versions[:len(ri.Versions)-1]
		return ruleapi.Uploaded{}, false, err
	}
	if err := r.audit.Append(AuditEntry{Time: v.UploadedAt, Actor: actor, Action: ActionUpload, Rule: name, Hash: hash}); err != nil {
		// The version is stored; only its record is missing.
		r.log.Error("upload stored but not audited", "rule", name, "version", short(hash), "error", err)
	}
	r.metrics.uploads.WithLabelValues("accepted", "").Inc()
	r.log.Info("rule version uploaded", "rule", name, "version", short(hash), "bytes", len(wasm), "actor", actor)
	return ruleapi.Uploaded{Name: name, Hash: hash, Size: len(wasm), UploadedAt: v.UploadedAt, Active: false}, true, nil
}

func (r *Registry) existing(name, hash string) (ruleapi.Uploaded, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ri := r.rule(name)
	v, ok := ri.find(hash)
	if !ok {
		return ruleapi.Uploaded{}, false
	}
	return ruleapi.Uploaded{Name: name, Hash: hash, Size: v.Size, UploadedAt: v.UploadedAt, Active: ri.Active == hash}, true
}

// writeOnce publishes a content-addressed file unless it exists with that
// content (a rejected or interrupted upload never leaves one; a damaged one
// is replaced).
func (r *Registry) writeOnce(dir, name string, data []byte) error {
	if old, err := os.ReadFile(filepath.Join(dir, name)); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return writeFileAtomic(dir, name, data)
}

// reject counts and audits a rejected upload and returns rej.
func (r *Registry) reject(name, hash, actor string, rej *Rejection) error {
	r.metrics.uploads.WithLabelValues("rejected", rej.Reason).Inc()
	r.log.Info("rule upload rejected", "rule", name, "version", short(hash), "reason", rej.Reason, "detail", rej.Detail, "actor", actor)
	reason := rej.Error()
	if len(reason) > 4096 {
		reason = reason[:4096] + "…"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		if err := r.audit.Append(AuditEntry{Time: r.now().UTC(), Actor: actor, Action: ActionReject, Rule: name, Hash: hash, Reason: reason}); err != nil {
			r.log.Error("rejected upload not audited", "rule", name, "error", err)
		}
	}
	return rej
}

// RejectTooLarge records an upload refused for its size (hash unknown).
func (r *Registry) RejectTooLarge(name, actor string) error {
	return r.reject(name, "", actor, &Rejection{Reason: ReasonTooLarge,
		Detail: fmt.Sprintf("upload is larger than %d bytes", r.maxModule)})
}

// Activate makes version target (a hash, a unique prefix of at least 8 hex
// digits, or ruleapi.Builtin) the active version of rule name.
func (r *Registry) Activate(name, target, actor string) (ruleapi.Activation, error) {
	if !r.Known(name) {
		return ruleapi.Activation{}, fmt.Errorf("%w %q", ErrUnknownRule, name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	hash, err := r.resolve(name, target)
	if err != nil {
		return ruleapi.Activation{}, err
	}
	return r.switchTo(name, hash, actor, ActionActivate)
}

// Rollback activates the version that was active before the current one
// became active, as the audit log records it; rolling back again goes one
// further back. It returns ErrNoPrevious when there is none.
func (r *Registry) Rollback(name, actor string) (ruleapi.Activation, error) {
	if !r.Known(name) {
		return ruleapi.Activation{}, fmt.Errorf("%w %q", ErrUnknownRule, name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.history[name]
	if len(h) == 0 {
		return ruleapi.Activation{}, fmt.Errorf("%w: rule %s has no earlier version to roll back to (each rollback goes one activation further back; activate a version by hash instead)", ErrNoPrevious, name)
	}
	target := h[len(h)-1]
	if _, ok := r.builtin[name]; target == ruleapi.Builtin && !ok {
		return ruleapi.Activation{}, fmt.Errorf("%w: before the current version rule %s had no module", ErrNoPrevious, name)
	}
	return r.switchTo(name, target, actor, ActionRollback)
}

// resolve turns target into a hash the rule has, or ruleapi.Builtin. Callers hold
// mu.
func (r *Registry) resolve(name, target string) (string, error) {
	if target == ruleapi.Builtin {
		if _, ok := r.builtin[name]; !ok {
			return "", fmt.Errorf("%w: rule %s has no built-in module", ErrUnknownVersion, name)
		}
		return ruleapi.Builtin, nil
	}
	target = strings.ToLower(target)
	if len(target) < 8 || !isHex(target) {
		return "", fmt.Errorf("%w %q: give a version's hash (or at least its first 8 hex digits) or %q", ErrUnknownVersion, target, ruleapi.Builtin)
	}
	var found []string
	for _, v := range r.rule(name).Versions {
		if strings.HasPrefix(v.Hash, target) {
			found = append(found, v.Hash)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%w %s of rule %s", ErrUnknownVersion, target, name)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%w: %s matches %d versions of rule %s", ErrAmbiguous, target, len(found), name)
}

// switchTo makes hash active: audit entry first, then memory, index and
// waiters. Callers hold mu.
func (r *Registry) switchTo(name, hash, actor, action string) (ruleapi.Activation, error) {
	if r.closed {
		return ruleapi.Activation{}, ErrClosed
	}
	ri := r.rule(name)
	prev := ri.Active
	if prev == hash {
		return ruleapi.Activation{Name: name, Active: hash, Previous: prev, Version: r.idx.Version}, nil
	}
	if err := r.audit.Append(AuditEntry{Time: r.now().UTC(), Actor: actor, Action: action, Rule: name, Hash: hash, Previous: prev}); err != nil {
		return ruleapi.Activation{}, err
	}
	if action == ActionRollback {
		r.history[name] = r.history[name][:len(r.history[name])-1]
	} else {
		r.history[name] = append(r.history[name], prev)
	}
	ri.Active = hash
	r.idx.Version++
	if err := r.writeIndex(); err != nil {
		// The audit log, from which Open replays, has the activation.
		r.log.Error("activation logged but index.json not written; it is rewritten at the next start", "rule", name, "error", err)
	}
	close(r.changed)
	r.changed = make(chan struct{})
	r.metrics.activations.WithLabelValues(name, action).Inc()
	r.metrics.version.Set(float64(r.idx.Version))
	r.log.Info("rule version activated", "rule", name, "action", action, "version", short(hash), "previous", short(prev), "actor", actor)
	return ruleapi.Activation{Name: name, Active: hash, Previous: prev, Version: r.idx.Version, Changed: true}, nil
}

// Manifest returns the current manifest.
func (r *Registry) Manifest() ruleapi.Manifest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.manifest()
}

func (r *Registry) manifest() ruleapi.Manifest {
	m := ruleapi.Manifest{Version: r.idx.Version, Rules: map[string]ruleapi.ManifestRule{}}
	for _, name := range r.names {
		ri := r.rule(name)
		if ri.Active == ruleapi.Builtin {
			if b, ok := r.builtin[name]; ok {
				m.Rules[name] = ruleapi.ManifestRule{Hash: b.hash, Source: ruleapi.SourceBuiltin, Size: len(b.wasm)}
			}
			continue
		}
		v, _ := ri.find(ri.Active)
		m.Rules[name] = ruleapi.ManifestRule{Hash: v.Hash, Source: ruleapi.SourceRegistry, Size: v.Size}
	}
	return m
}

// Wait returns the manifest as soon as its version differs from since, or
// when wait has passed, ctx is done or the registry drains; changed reports
// whether the version differs.
func (r *Registry) Wait(ctx context.Context, since int64, wait time.Duration) (m ruleapi.Manifest, changed bool) {
	r.mu.Lock()
	if r.idx.Version != since || wait <= 0 || r.drained {
		defer r.mu.Unlock()
		return r.manifest(), r.idx.Version != since
	}
	ch := r.changed
	r.mu.Unlock()

	r.metrics.waiting.Inc()
	defer r.metrics.waiting.Dec()
	t := time.NewTimer(min(wait, MaxWait))
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-ctx.Done():
	case <-r.drain:
	}
	m = r.Manifest()
	return m, m.Version != since
}

// Module returns the bytes of the module with the given hash: an uploaded
// version of any rule, or a built-in module.
func (r *Registry) Module(hash string) ([]byte, error) {
	if len(hash) != sha256.Size*2 || !isHex(hash) {
		return nil, fmt.Errorf("%w %q: not a SHA-256 in lower-case hex", ErrUnknownVersion, hash)
	}
	for _, b := range r.builtin {
		if b.hash == hash {
			return b.wasm, nil
		}
	}
	r.mu.Lock()
	known := false
	for _, ri := range r.idx.Rules {
		if _, ok := ri.find(hash); ok {
			known = true
			break
		}
	}
	r.mu.Unlock()
	if !known {
		return nil, fmt.Errorf("%w %s", ErrUnknownVersion, hash)
	}
	b, err := os.ReadFile(r.modulePath(hash))
	if err != nil {
		return nil, fmt.Errorf("registry: module %s: %w", short(hash), err)
	}
	if host.Hash(b) != hash { // bit rot or tampering: never serve it
		return nil, fmt.Errorf("registry: module file %s does not hash to its name", r.modulePath(hash))
	}
	return b, nil
}

// Report records an edge's status report.
func (r *Registry) Report(edge string, rules map[string]ruleapi.RuleStatus) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	rep := r.edges[edge]
	if rep == nil {
		if len(r.edges) >= maxEdges {
			return fmt.Errorf("%w: status of %d edges kept already", ErrTooManyEdges, maxEdges)
		}
		rep = &edgeReport{}
		r.edges[edge] = rep
	}
	now := r.now().UTC()
	rep.Rules, rep.Reported, rep.LastSeen = map[string]ruleapi.RuleStatus{}, now, now
	for name, st := range rules {
		if r.Known(name) {
			rep.Rules[name] = st
		}
	}
	return writeJSONFile(r.dir, "edges.json", r.edges)
}

// Seen notes that edge polled the manifest. Only edges that have reported
// are tracked; it is not written to disk.
func (r *Registry) Seen(edge string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rep := r.edges[edge]; rep != nil {
		rep.LastSeen = r.now().UTC()
	}
}

// List returns every rule with its versions, oldest first, and the edges'
// reports, by edge id.
func (r *Registry) List() ruleapi.Listing {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := ruleapi.Listing{Version: r.idx.Version, Rules: map[string]ruleapi.RuleListing{}}
	for _, name := range r.names {
		ri := r.rule(name)
		rl := ruleapi.RuleListing{Active: ri.Active, Builtin: r.builtin[name].hash, Versions: []ruleapi.VersionListing{}, Edges: []ruleapi.EdgeListing{}}
		for _, v := range ri.Versions {
			rl.Versions = append(rl.Versions, ruleapi.VersionListing{Version: v, Active: v.Hash == ri.Active})
		}
		for _, id := range slices.Sorted(maps.Keys(r.edges)) {
			rep := r.edges[id]
			if st, ok := rep.Rules[name]; ok {
				rl.Edges = append(rl.Edges, ruleapi.EdgeListing{Edge: id, RuleStatus: st, ReportedAt: rep.Reported, LastSeen: rep.LastSeen})
			}
		}
		l.Rules[name] = rl
	}
	return l
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
