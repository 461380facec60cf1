package host

import (
	"errors"
	"fmt"
	"strings"
)

// Errors of rule calls. ErrTrap and ErrTimeout mean the instance was
// discarded; the request gets a 5xx.
var (
	ErrTrap          = errors.New("host: rule trapped")
	ErrTimeout       = errors.New("host: rule exceeded its call deadline")
	ErrBusy          = errors.New("host: no rule instance free")
	ErrClosed        = errors.New("host: module closed")
	ErrInvalidModule = errors.New("host: invalid module")
	ErrConfig        = errors.New("host: rule refused its configuration")
)

// ErrCompileTimeout means a module took longer than Options.CompileTimeout
// to compile; it is not loaded.
var ErrCompileTimeout = errors.New("host: module took too long to compile")

// Problem is what is wrong with a module Load refuses as invalid (see
// ModuleError).
type Problem int

// Problems of an invalid module.
const (
	// ProblemCompile: the module does not compile. It is not WebAssembly,
	// it is malformed, or wasm/instrument refused it (errors.Is with
	// instrument.ErrLimit tells a module over one of Options.Limits).
	ProblemCompile Problem = iota + 1
	// ProblemImports: it imports something ABI v1 does not provide, or a
	// host function with another signature.
	ProblemImports
	// ProblemExports: it lacks an export ABI v1 requires, or has it with
	// another signature.
	ProblemExports
	// ProblemMemory: it needs more memory at start than
	// Options.MemoryLimit.
	ProblemMemory
	// ProblemInit: it compiled and passed validation, but instantiating or
	// initialising it failed: it trapped or timed out in _initialize,
	// edgetrack_abi_version or edgetrack_configure, speaks another ABI
	// version, or handed back an unusable buffer.
	ProblemInit
)

var problemNames = map[Problem]string{ProblemCompile: "compile", ProblemImports: "imports",
	ProblemExports: "exports", ProblemMemory: "memory", ProblemInit: "init"}

func (p Problem) String() string {
	if s, ok := problemNames[p]; ok {
		return s
	}
	return "unknown"
}

// ModuleError is the error of Load for a module it refuses as invalid:
// errors.Is(err, ErrInvalidModule) holds, and errors.As finds the
// *ModuleError, whose Problem says what is wrong. A module with several
// problems is classified by the first found; the message lists them all.
// Errors of Load that are not a ModuleError (ErrConfig, ErrCompileTimeout,
// ErrTrap or ErrTimeout from the guest's edgetrack_reserve while it
// starts, ErrClosed, a context's error) are not about the module's form.
type ModuleError struct {
	Problem Problem
	// Err says what is wrong; the message is "host: invalid module: " and
	// its text.
	Err error
}

func (e *ModuleError) Error() string { return ErrInvalidModule.Error() + ": " + e.Err.Error() }

// Is makes errors.Is(err, ErrInvalidModule) hold.
func (e *ModuleError) Is(target error) bool { return target == ErrInvalidModule }

func (e *ModuleError) Unwrap() error { return e.Err }

// invalid returns a ModuleError whose text is the formatted one.
func invalid(p Problem, format string, args ...any) *ModuleError {
	return &ModuleError{Problem: p, Err: fmt.Errorf(format, args...)}
}

// problems collects what validate finds, each with its kind, and makes one
// ModuleError of them classified by the first.
type problems struct {
	first Problem
	texts []string
}

func (p *problems) add(kind Problem, text string) {
	if p.first == 0 {
		p.first = kind
	}
	p.texts = append(p.texts, text)
}

func (p *problems) err() error {
	if len(p.texts) == 0 {
		return nil
	}
	return &ModuleError{Problem: p.first, Err: errors.New(strings.Join(p.texts, "; "))}
}
