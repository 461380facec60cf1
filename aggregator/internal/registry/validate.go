package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/dist"
	"github.com/edgetrack/edgetrack/wasm/host"
	"github.com/edgetrack/edgetrack/wasm/instrument"
	"github.com/edgetrack/edgetrack/wasm/vectors"
)

// Reasons a module is rejected, the values of the reason label of
// edgetrack_rule_uploads_total.
const (
	ReasonNotWasm         = "not_wasm"         // does not compile
	ReasonLimit           = "limit"            // over one of the module limits (wasm/instrument.Limits)
	ReasonImports         = "imports"          // imports something ABI v1 does not provide
	ReasonExports         = "exports"          // lacks an export ABI v1 requires, or has it with another signature
	ReasonMemory          = "memory"           // needs more memory at start than the cap
	ReasonInit            = "init"             // traps or times out while initialising
	ReasonConfig          = "config"           // refuses the configuration of its vectors
	ReasonVectorsFile     = "vectors_file"     // the uploaded vectors do not parse
	ReasonUploadedVectors = "uploaded_vectors" // fails a vector uploaded with it
	ReasonBuiltinVectors  = "builtin_vectors"  // fails a built-in vector of its route
	ReasonTimeout         = "timeout"          // validation as a whole took too long
	ReasonTooLarge        = "too_large"        // over the size limit (HTTP 413)
)

var rejectReasons = []string{ReasonNotWasm, ReasonLimit, ReasonImports, ReasonExports, ReasonMemory, ReasonInit, ReasonConfig, ReasonVectorsFile,
	ReasonUploadedVectors, ReasonBuiltinVectors, ReasonTimeout, ReasonTooLarge}

// Rejection is why a module may not serve a rule.
type Rejection struct {
	Reason   string   // one of the Reason constants
	Detail   string   // one line
	Failures []string // failing vectors, "suite/case: what is wrong"; may be empty
}

func (r *Rejection) Error() string {
	if len(r.Failures) == 0 {
		return r.Detail
	}
	return r.Detail + ":\n  " + strings.Join(r.Failures, "\n  ")
}

// ValidatorOptions configure a Validator. Zero values are the defaults of
// an edge (edge.rules.*), so that what passes here loads there.
type ValidatorOptions struct {
	MemoryLimit uint64        // default 16 MiB
	CallTimeout time.Duration // per guest call; default 500ms
	// Timeout bounds one validation as a whole (a module that times out on
	// every vector would otherwise take vectors × CallTimeout). Default 60s.
	Timeout time.Duration
	Logger  *slog.Logger
}

// Validator checks modules as an upload is checked: the wasm/host
// validation (compiles; imports only the ABI's host functions and WASI;
// exports what ABI v1 requires; memory within the cap; initialises), then
// the vectors uploaded with it, then the built-in vectors of the route
// (dist.Vectors). It has a runtime of its own, with one instance per
// module, and runs at most four validations at a time, so that a slow one
// (vectors that time out) does not hold up the uploads behind it.
type Validator struct {
	rt      *host.Runtime
	timeout time.Duration
	sem     chan struct{}
}

// NewValidator creates a Validator. Close releases it.
func NewValidator(ctx context.Context, opts ValidatorOptions) (*Validator, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	rt, err := host.New(ctx, host.Options{
		MemoryLimit: opts.MemoryLimit,
		CallTimeout: opts.CallTimeout,
		PoolSize:    1,
		Prewarm:     1,
		// Traps are what validation looks for: the runtime's warnings
		// about discarded instances would only be noise.
		Logger: slog.New(minLevel{log.Handler(), slog.LevelError}),
	})
	if err != nil {
		return nil, fmt.Errorf("registry: validation runtime: %w", err)
	}
	return &Validator{rt: rt, timeout: opts.Timeout, sem: make(chan struct{}, 4)}, nil
}

// Close releases the runtime.
func (v *Validator) Close(ctx context.Context) error { return v.rt.Close(ctx) }

// Options returns the runtime's options with defaults filled in.
func (v *Validator) Options() host.Options { return v.rt.Options() }

// Check validates wasm as the module of rule, with the uploaded vectors
// (nil: none). It returns nil, a *Rejection, or ctx's error when ctx ended
// first.
func (v *Validator) Check(ctx context.Context, rule string, wasm []byte, uploaded *vectors.File) error {
	select {
	case v.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-v.sem }()
	vctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	err := v.check(vctx, rule, wasm, uploaded)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil && vctx.Err() != nil {
		return &Rejection{Reason: ReasonTimeout, Detail: fmt.Sprintf("validation took longer than %s: %v", v.timeout, err)}
	}
	return err
}

func (v *Validator) check(ctx context.Context, rule string, wasm []byte, uploaded *vectors.File) error {
	var mine []vectors.Suite
	if uploaded != nil {
		mine = []vectors.Suite{uploaded.Suite("uploaded", rule)}
	}
	builtin := dist.Vectors(rule)

	// The module on its own, under the configuration of the first suite. It
	// stays loaded while the suites run, so the module is compiled once.
	cfg, suite := &abi.Config{Rule: rule}, ""
	if all := append(mine[:len(mine):len(mine)], builtin...); len(all) > 0 && all[0].Config != nil {
		cfg, suite = all[0].Config, all[0].Name
	}
	m, err := v.rt.Load(ctx, rule, wasm, cfg)
	switch {
	case err == nil:
		defer m.Close(context.WithoutCancel(ctx))
	case errors.Is(err, host.ErrConfig) && suite == "":
		// No vector says what configuration the rule needs; refusing an
		// empty one is no defect.
	case errors.Is(err, host.ErrConfig):
		return &Rejection{Reason: ReasonConfig, Detail: fmt.Sprintf("module refuses the configuration of suite %q: %v", suite, err)}
	case errors.Is(err, host.ErrCompileTimeout):
		return &Rejection{Reason: ReasonTimeout, Detail: err.Error()}
	default:
		return &Rejection{Reason: classify(err), Detail: err.Error()}
	}

	if len(mine) > 0 {
		if err := vectors.Run(ctx, v.rt, rule, wasm, mine...); err != nil {
			return vectorRejection(ReasonUploadedVectors, "module fails its uploaded vectors", err)
		}
	}
	if err := vectors.Run(ctx, v.rt, rule, wasm, builtin...); err != nil {
		return vectorRejection(ReasonBuiltinVectors, "module fails the built-in vectors of route "+rule, err)
	}
	return nil
}

// classify names the reason of a host.Runtime.Load error: a module over
// one of the limits of wasm/instrument, else what the *host.ModuleError
// says is wrong; any other error is a trap or timeout in edgetrack_reserve
// while the module starts.
func classify(err error) string {
	if errors.Is(err, instrument.ErrLimit) {
		return ReasonLimit
	}
	me, ok := errors.AsType[*host.ModuleError](err)
	if !ok {
		return ReasonInit
	}
	switch me.Problem {
	case host.ProblemCompile:
		return ReasonNotWasm
	case host.ProblemImports:
		return ReasonImports
	case host.ProblemExports:
		return ReasonExports
	case host.ProblemMemory:
		return ReasonMemory
	default:
		return ReasonInit
	}
}

// vectorRejection turns an error of vectors.Run into a Rejection: the
// summary goes in the detail, and each line of the failing cases (and of a
// load error that runs over several lines, as a guest's output may) is one
// failure, without the spaces around it.
func vectorRejection(reason, detail string, err error) *Rejection {
	fe, ok := errors.AsType[*vectors.FailedError](err)
	if !ok {
		return &Rejection{Reason: reason, Detail: detail + ": " + err.Error()}
	}
	summary, more, _ := strings.Cut(fe.Summary(), "\n")
	r := &Rejection{Reason: reason, Detail: strings.TrimSuffix(detail+": "+summary, ":")}
	for _, l := range strings.Split(strings.Join(append([]string{more}, fe.Cases...), "\n"), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			r.Failures = append(r.Failures, l)
		}
	}
	return r
}

// minLevel drops records below min.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}
