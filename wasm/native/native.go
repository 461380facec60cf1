// Package native runs a rule's logic compiled into the edge binary instead
// of as wasm. It exists as the baseline that tells what running rules in
// wazero costs (bench/), and for tests; production edges run wasm, which is
// what can be swapped at runtime and cannot reach the process.
package native

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/dist"
	"github.com/edgetrack/edgetrack/wasm/guest"
	"github.com/edgetrack/edgetrack/wasm/host"
)

// Module is a rule compiled natively. Like a wasm module it keeps a pool of
// rule instances (a rule serves one call at a time) and hands out verdicts
// that do not alias the rule's buffers.
type Module struct {
	name   string
	f      abi.Factory
	cfg    *abi.Config
	pool   sync.Pool
	closed atomic.Bool
}

type instance struct {
	rule abi.Rule
	buf  []byte
}

// New builds a native module for the built-in rule name (its twin in the
// table of wasm/dist) with cfg; it fails when the rule refuses cfg.
func New(name string, cfg *abi.Config) (*Module, error) {
	b, ok := dist.Lookup(name)
	if !ok || b.Native == nil {
		return nil, host.ErrInvalidModule
	}
	m := &Module{name: name, f: b.Native, cfg: cfg}
	inst, err := m.newInstance()
	if err != nil {
		return nil, err
	}
	m.pool.Put(inst)
	return m, nil
}

func (m *Module) newInstance() (*instance, error) {
	r, err := m.f(m.cfg, guest.Native{})
	if err != nil {
		return nil, err
	}
	return &instance{rule: r}, nil
}

// Call runs the rule. The verdict is copied out through the ABI encoding,
// as the wasm host does, so both paths do the same work around the rule.
func (m *Module) Call(_ context.Context, req *abi.Request) (abi.Verdict, error) {
	if m.closed.Load() {
		return abi.Verdict{}, host.ErrClosed
	}
	inst, _ := m.pool.Get().(*instance)
	if inst == nil {
		var err error
		if inst, err = m.newInstance(); err != nil {
			return abi.Verdict{}, err
		}
	}
	v := inst.rule.Handle(req)
	inst.buf = abi.AppendVerdict(inst.buf[:0], &v)
	var out abi.Verdict
	err := abi.DecodeVerdict(inst.buf, &out)
	m.pool.Put(inst)
	return out, err
}

// Name returns the rule's name.
func (m *Module) Name() string { return m.name }

// Hash names the native build.
func (m *Module) Hash() string { return "native000000-" + m.name }

// Close stops the module.
func (m *Module) Close(context.Context) error { m.closed.Store(true); return nil }
