package host

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/instrument"
)

// Options configure a Runtime.
type Options struct {
	// CacheDir holds wazero's compilation cache; "" keeps it in memory only.
	// With a directory, a restart reuses machine code compiled before.
	CacheDir string
	// MemoryLimit caps each instance's linear memory, in bytes (rounded down
	// to 64 KiB pages). Default 16 MiB. A guest that grows past it traps.
	MemoryLimit uint64
	// CallTimeout bounds each guest call. Default 500ms. Enforcing it costs
	// about half a microsecond a call and slows tight guest loops (wazero
	// checks the context at loop heads), another reason hot loops belong in
	// host functions.
	CallTimeout time.Duration
	// PoolSize is the most instances a module keeps. Default 2 × GOMAXPROCS.
	PoolSize int
	// Prewarm is how many instances Load creates before returning (at least
	// one, which proves the configuration). Default min(2, PoolSize).
	Prewarm int
	// InputReserve is the input buffer each instance reserves when it
	// starts, while its heap is small and TinyGo's collector is cheap; set
	// it to the largest request expected (the body limit plus headers) so
	// that a large first request does not grow the heap under the call
	// deadline. Default 64 KiB.
	InputReserve int
	// Limits bound what a module may declare; zero fields take
	// instrument.DefaultLimits' values (docs/ABI.md lists them). A module
	// over one is refused before wazero reads it.
	Limits instrument.Limits
	// CompileTimeout bounds compiling and validating one module. Default
	// 10s. Compiling cannot be interrupted, so a caller that gives up (or
	// whose context ends) gets an answer at once while the compile finishes
	// in the background, holding one of the CompileWorkers slots; Limits
	// keep that to about a second for any module.
	CompileTimeout time.Duration
	// CompileWorkers is how many modules compile at once. Default 2.
	CompileWorkers int
	Logger         *slog.Logger
	Metrics        *Metrics // nil: not measured
}

func (o *Options) defaults() {
	if o.MemoryLimit == 0 {
		o.MemoryLimit = 16 << 20
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 500 * time.Millisecond
	}
	if o.PoolSize <= 0 {
		o.PoolSize = 2 * runtime.GOMAXPROCS(0)
	}
	if o.Prewarm <= 0 {
		o.Prewarm = min(2, o.PoolSize)
	}
	o.Prewarm = min(o.Prewarm, o.PoolSize)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.InputReserve <= 0 {
		o.InputReserve = initialInput
	}
	if o.CompileTimeout <= 0 {
		o.CompileTimeout = 10 * time.Second
	}
	if o.CompileWorkers <= 0 {
		o.CompileWorkers = 2
	}
}

// Runtime compiles and instantiates rule modules. It is safe for concurrent
// use.
type Runtime struct {
	opts  Options
	rt    wazero.Runtime
	cache wazero.CompilationCache

	compileSlots chan struct{} // one token per compile in progress

	mu       sync.Mutex
	compiled map[string]*compiled // by content hash
	closed   bool
}

type compiled struct {
	cm   wazero.CompiledModule
	refs int
}

// New creates a Runtime with the host module and WASI instantiated.
func New(ctx context.Context, opts Options) (*Runtime, error) {
	opts.defaults()
	// Deadlines are enforced by the checks package instrument adds, not by
	// wazero's own.
	cfg := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(false).
		WithMemoryLimitPages(uint32(opts.MemoryLimit / 65536))
	var cache wazero.CompilationCache
	if opts.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(opts.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("host: compilation cache %s: %w", opts.CacheDir, err)
		}
		cache = c
		cfg = cfg.WithCompilationCache(cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("host: wasi: %w", err)
	}
	if err := instantiateHostModule(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("host: host module: %w", err)
	}
	return &Runtime{opts: opts, rt: rt, cache: cache, compiled: map[string]*compiled{},
		compileSlots: make(chan struct{}, opts.CompileWorkers)}, nil
}

// Options returns the runtime's options with defaults filled in.
func (r *Runtime) Options() Options { return r.opts }

// Close closes every module and the runtime. It waits for compiles in
// progress, which Limits keep short, and makes later ones fail.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	for range cap(r.compileSlots) { // wait for every compile goroutine
		select {
		case r.compileSlots <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("host: closing: compiles still running: %w", ctx.Err())
		}
	}
	err := r.rt.Close(ctx)
	if r.cache != nil {
		err = errors.Join(err, r.cache.Close(ctx))
	}
	return err
}

// Hash returns the content hash that names a module version.
func Hash(wasm []byte) string {
	sum := sha256.Sum256(wasm)
	return hex.EncodeToString(sum[:])
}

// compile returns the compiled module for wasm, compiling and validating it
// unless a module with the same hash is already compiled.
//
// Compiling happens off the caller's goroutine, at most CompileWorkers at a
// time, and no lock is held meanwhile: a slow module delays only the callers
// waiting for a worker, and each of them gives up when its context ends or
// CompileTimeout passes. Instrument refuses a module over Limits before
// wazero sees it, which is what bounds a compile's time and memory: wazero
// cannot be interrupted.
func (r *Runtime) compile(ctx context.Context, hash string, wasm []byte) (*compiled, error) {
	if c := r.ref(hash); c != nil {
		return c, nil
	}
	instrumented, err := instrument.Instrument(wasm, r.opts.Limits)
	if err != nil {
		return nil, invalid(ProblemCompile, "does not compile: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.CompileTimeout)
	defer cancel()
	select {
	case r.compileSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, r.compileGaveUp(ctx, "waiting for a compile worker")
	}
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		<-r.compileSlots
		return nil, ErrClosed
	}
	type result struct {
		cm  wazero.CompiledModule
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer func() { <-r.compileSlots }()
		cm, err := compileModule(context.WithoutCancel(ctx), r.rt, instrumented)
		if err == nil {
			if err = validate(cm, r.opts.MemoryLimit); err != nil {
				cm.Close(context.Background())
				cm = nil
			}
		} else {
			err = compileError(instrumented, r.opts.MemoryLimit, err)
		}
		done <- result{cm, err}
	}()
	select {
	case res := <-done:
		if res.err != nil {
			return nil, res.err
		}
		return r.add(hash, res.cm), nil
	case <-ctx.Done():
		go func() { // nobody wants it any more
			if res := <-done; res.cm != nil {
				res.cm.Close(context.Background())
			}
		}()
		return nil, r.compileGaveUp(ctx, "compiling")
	}
}

// compileError is the ModuleError of a module wazero refused to compile.
// wazero refuses a memory over its limit (WithMemoryLimitPages, set from
// Options.MemoryLimit) while it decodes the module; such a module is
// ProblemMemory, recognised by the memory it declares: a minimum over the
// limit, or a maximum over the 4 GiB WebAssembly allows, which wazero
// reports as over the limit too.
func compileError(wasm []byte, memoryLimit uint64, err error) *ModuleError {
	p := ProblemCompile
	if mem, ok := instrument.DeclaredMemory(wasm); ok && (uint64(mem.Min) > memoryLimit/65536 || mem.HasMax && mem.Max > maxPages) {
		p = ProblemMemory
	}
	return invalid(p, "does not compile: %v", err)
}

// maxPages is the most 64 KiB pages a WebAssembly memory may have.
const maxPages = 1 << 16

// compileGaveUp says why compile returned before the module compiled.
func (r *Runtime) compileGaveUp(ctx context.Context, doing string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s took longer than %s", ErrCompileTimeout, doing, r.opts.CompileTimeout)
	}
	return fmt.Errorf("host: %s: %w", doing, ctx.Err())
}

// ref returns the compiled module of hash with one more reference, or nil.
func (r *Runtime) ref(hash string) *compiled {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.compiled[hash]
	if !ok {
		return nil
	}
	c.refs++
	return c
}

// add records a module compiled for hash, or, when another caller compiled
// the same module meanwhile, closes it and uses theirs.
func (r *Runtime) add(hash string, cm wazero.CompiledModule) *compiled {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.compiled[hash]; ok {
		c.refs++
		cm.Close(context.Background())
		return c
	}
	c := &compiled{cm: cm, refs: 1}
	r.compiled[hash] = c
	return c
}

// compileModule is wazero's CompileModule, with a panic turned into an
// error: wazero 1.12's validator panics on some malformed modules (a
// function whose type index is out of range), and an uploaded module must
// never take the process down.
func compileModule(ctx context.Context, rt wazero.Runtime, wasm []byte) (cm wazero.CompiledModule, err error) {
	defer func() {
		if p := recover(); p != nil {
			cm, err = nil, fmt.Errorf("the WebAssembly validator failed on it: %v", p)
		}
	}()
	return rt.CompileModule(ctx, wasm)
}

func (r *Runtime) release(ctx context.Context, hash string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.compiled[hash]
	if !ok {
		return
	}
	if c.refs--; c.refs == 0 {
		delete(r.compiled, hash)
		c.cm.Close(ctx)
	}
}

// Load compiles (or reuses) wasm, validates it, and starts a pool of
// instances configured with cfg. It fails when the module is invalid, does
// not initialise within the deadline, or refuses cfg; nothing is left behind
// then.
func (r *Runtime) Load(ctx context.Context, name string, wasm []byte, cfg *abi.Config) (*Module, error) {
	hash := Hash(wasm)
	c, err := r.compile(ctx, hash, wasm)
	if err != nil {
		return nil, err
	}
	cfgCopy := *cfg
	cfgCopy.ABIVersion = abi.Version
	if cfgCopy.Rule == "" {
		cfgCopy.Rule = name
	}
	m := &Module{
		rt:        r,
		name:      name,
		hash:      hash,
		size:      len(wasm),
		cm:        c.cm,
		config:    abi.AppendConfig(nil, &cfgCopy),
		timeout:   r.opts.CallTimeout,
		idle:      make(chan *instance, r.opts.PoolSize),
		slots:     make(chan struct{}, r.opts.PoolSize),
		metrics:   r.opts.Metrics.forRule(name),
		log:       r.opts.Logger.With("rule", name, "version", hash[:12]),
		loadedAt:  time.Now(),
		drainDone: make(chan struct{}),
	}
	for i := 0; i < r.opts.Prewarm; i++ {
		m.slots <- struct{}{}
		inst, err := m.newInstance(ctx)
		if err != nil {
			<-m.slots
			m.closeIdle(ctx)
			r.release(ctx, hash)
			return nil, err
		}
		m.idle <- inst
	}
	return m, nil
}

// Module is one loaded rule version: a compiled module and its instance pool.
type Module struct {
	rt       *Runtime
	name     string
	hash     string
	size     int
	cm       wazero.CompiledModule
	config   []byte
	timeout  time.Duration
	loadedAt time.Time
	metrics  *ruleMetrics
	log      *slog.Logger

	idle  chan *instance // pooled instances ready for a call
	slots chan struct{}  // one token per live instance; cap = pool size

	mu        sync.Mutex
	inflight  int
	closing   bool
	drainDone chan struct{}
}

// Name returns the rule name the module was loaded as.
func (m *Module) Name() string { return m.name }

// Hash returns the module's content hash (hex sha256).
func (m *Module) Hash() string { return m.hash }

// Size returns the module's size in bytes.
func (m *Module) Size() int { return m.size }

// Call runs the rule on one request. On ErrTrap or ErrTimeout the instance
// that ran it is gone; on ErrBusy no instance became free before ctx ended;
// on ErrClosed the module is draining and the caller should use its
// successor.
func (m *Module) Call(ctx context.Context, req *abi.Request) (abi.Verdict, error) {
	if !m.enter() {
		return abi.Verdict{}, ErrClosed
	}
	defer m.leave()

	start := time.Now()
	inst, err := m.get(ctx)
	if err != nil {
		m.metrics.observe(outcomeBusy, start)
		return abi.Verdict{}, err
	}
	v, err := inst.call(ctx, req, m.timeout)
	switch {
	case err == nil:
		m.idle <- inst
		m.metrics.observe(outcomeOK, start)
	case errors.Is(err, ErrTimeout):
		m.discard(ctx, inst, err)
		m.metrics.observe(outcomeTimeout, start)
	default:
		m.discard(ctx, inst, err)
		m.metrics.observe(outcomeTrap, start)
	}
	return v, err
}

func (m *Module) enter() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing {
		return false
	}
	m.inflight++
	return true
}

func (m *Module) leave() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inflight--; m.inflight == 0 && m.closing {
		close(m.drainDone)
	}
}

// get takes an idle instance, or creates one when the pool has room, or
// waits for one until ctx ends.
func (m *Module) get(ctx context.Context) (*instance, error) {
	select {
	case inst := <-m.idle:
		return inst, nil
	default:
	}
	select {
	case inst := <-m.idle:
		return inst, nil
	case m.slots <- struct{}{}:
		inst, err := m.newInstance(ctx)
		if err != nil {
			<-m.slots
			return nil, err
		}
		return inst, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", ErrBusy, ctx.Err())
	}
}

func (m *Module) discard(ctx context.Context, inst *instance, cause error) {
	m.log.Warn("rule instance discarded", "err", cause, "output", inst.output.String())
	inst.close(ctx)
	<-m.slots
	m.metrics.instances.Dec()
}

// Close stops new calls, waits until calls in flight have finished (or ctx
// ends), then closes the instances and releases the compiled module.
func (m *Module) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		return nil
	}
	m.closing = true
	if m.inflight == 0 {
		close(m.drainDone)
	}
	m.mu.Unlock()
	var err error
	select {
	case <-m.drainDone:
	case <-ctx.Done():
		err = fmt.Errorf("host: closing %s@%s: %w", m.name, m.hash[:12], ctx.Err())
	}
	m.closeIdle(context.WithoutCancel(ctx))
	m.rt.release(context.WithoutCancel(ctx), m.hash)
	return err
}

func (m *Module) closeIdle(ctx context.Context) {
	for {
		select {
		case inst := <-m.idle:
			inst.close(ctx)
			<-m.slots
			m.metrics.instances.Dec()
		default:
			return
		}
	}
}

// boundedBuffer keeps the first bytes a guest writes to stdout/stderr, for
// the log line when it traps (TinyGo prints panics there).
type boundedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

const outputCap = 2048

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := outputCap - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *boundedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (m *Module) newInstance(ctx context.Context) (*instance, error) {
	out := &boundedBuffer{}
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions(). // _initialize is run below, under a deadline
		WithRandSource(rand.Reader).
		WithSysWalltime().
		WithSysNanotime().
		WithStdout(out).
		WithStderr(out)
	// Initialisation may run a guest's package initialisers: give it more
	// room than one call, but not unbounded.
	ictx, cancel := context.WithTimeout(ctx, 10*m.timeout+time.Second)
	defer cancel()
	mod, err := m.rt.rt.InstantiateModule(ictx, m.cm, cfg)
	if err != nil {
		return nil, invalid(ProblemInit, "instantiate: %v", err)
	}
	inst := &instance{
		mod:       mod,
		mem:       mod.Memory(),
		reserve:   mod.ExportedFunction(abi.ExportReserve),
		configure: mod.ExportedFunction(abi.ExportConfigure),
		handle:    mod.ExportedFunction(abi.ExportHandle),
		output:    out,
	}
	if err := inst.init(ictx, m.config, m.rt.opts.InputReserve); err != nil {
		inst.close(ctx)
		return nil, err
	}
	m.metrics.instances.Inc()
	return inst, nil
}
