package host_test

import (
	"context"
	"errors"
	"testing"

	"github.com/edgetrack/edgetrack/internal/wasmbin"
	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/host"
	"github.com/edgetrack/edgetrack/wasm/instrument"
)

// abiShaped is a module with the exports ABI v1 requires and a memory of
// pages pages, whose edgetrack_abi_version returns version and whose
// edgetrack_reserve returns 1024, whatever the size asked for.
func abiShaped(version, pages byte) []byte {
	fn := func(params, results []byte) []byte { // a function type
		b := append([]byte{0x60}, wasmbin.U(uint64(len(params)))...)
		b = append(b, params...)
		b = append(b, wasmbin.U(uint64(len(results)))...)
		return append(b, results...)
	}
	types := wasmbin.Sec(1, wasmbin.Vec(fn(nil, nil), fn(nil, []byte{0x7f}), fn([]byte{0x7f}, []byte{0x7f}), fn([]byte{0x7f}, []byte{0x7e})))
	funcs := wasmbin.Sec(3, wasmbin.Vec([]byte{0}, []byte{1}, []byte{2}, []byte{3}, []byte{3}))
	memory := wasmbin.Sec(5, wasmbin.Vec([]byte{0x00, pages}))
	export := func(name string, kind, idx byte) []byte { return append(wasmbin.Name(name), kind, idx) }
	exports := wasmbin.Sec(7, wasmbin.Vec(export(abi.ExportInit, 0, 0), export(abi.ExportVersion, 0, 1),
		export(abi.ExportReserve, 0, 2), export(abi.ExportConfigure, 0, 3), export(abi.ExportHandle, 0, 4),
		export(abi.ExportMemory, 2, 0)))
	code := wasmbin.Sec(10, wasmbin.Vec(
		wasmbin.Body(wasmbin.NoLocals, 0x0b),
		wasmbin.Body(wasmbin.NoLocals, 0x41, version, 0x0b),
		wasmbin.Body(wasmbin.NoLocals, 0x41, 0x80, 0x08, 0x0b), // i32.const 1024
		wasmbin.Body(wasmbin.NoLocals, 0x42, 0x00, 0x0b),
		wasmbin.Body(wasmbin.NoLocals, 0x42, 0x00, 0x0b)))
	return wasmbin.Module(types, funcs, memory, exports, code)
}

// TestModuleErrorProblems loads a module with each kind of problem and
// checks the *ModuleError names it, and that every one is ErrInvalidModule.
func TestModuleErrorProblems(t *testing.T) {
	rt := newRuntime(t, host.Options{}) // memory cap 16 MiB: 256 pages
	empty := wasmbin.Module()
	importsEnv := wasmbin.Module(wasmbin.Sec(1, wasmbin.Vec(wasmbin.TypeVoid)),
		wasmbin.Sec(2, wasmbin.Vec(append(append(wasmbin.Name("env"), wasmbin.Name("open_socket")...), 0x00, 0x00))))
	for _, tt := range []struct {
		name  string
		wasm  []byte
		want  host.Problem
		limit bool // over one of instrument's limits too
	}{
		{"not wasm", []byte("hello"), host.ProblemCompile, false},
		{"over a limit", wasmbin.ManyLocals(4_000_000_000), host.ProblemCompile, true},
		{"no exports", empty, host.ProblemExports, false},
		// The import is the first problem found; the missing exports follow.
		{"import outside the ABI", importsEnv, host.ProblemImports, false},
		{"memory minimum over the cap", wasmbin.Module(wasmbin.Sec(5, wasmbin.Vec([]byte{0x00, 0x80, 0x08}))), host.ProblemMemory, false}, // 1024 pages
		{"memory maximum over 4 GiB", wasmbin.Module(wasmbin.Sec(5, wasmbin.Vec(append([]byte{0x01, 0x01}, wasmbin.U(70000)...)))), host.ProblemMemory, false},
		{"memory within the cap", wasmbin.Module(wasmbin.Sec(5, wasmbin.Vec([]byte{0x00, 0x01}))), host.ProblemExports, false},
		{"another ABI version", abiShaped(2, 2), host.ProblemInit, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := rt.Load(context.Background(), "probe", tt.wasm, &abi.Config{})
			me, ok := errors.AsType[*host.ModuleError](err)
			if !ok || !errors.Is(err, host.ErrInvalidModule) {
				t.Fatalf("err = %v, want a *host.ModuleError", err)
			}
			if me.Problem != tt.want {
				t.Errorf("problem %v, want %v (err %v)", me.Problem, tt.want, err)
			}
			if got := errors.Is(err, instrument.ErrLimit); got != tt.limit {
				t.Errorf("errors.Is(err, instrument.ErrLimit) = %t, want %t", got, tt.limit)
			}
		})
	}
	// The same module with the ABI's version loads: the probe above
	// failed for its version, not its shape.
	m, err := rt.Load(context.Background(), "probe", abiShaped(abi.Version, 2), &abi.Config{})
	if err != nil {
		t.Fatalf("the ABI-shaped module of version %d: %v", abi.Version, err)
	}
	m.Close(context.Background())
	// With one page, the input buffer edgetrack_reserve hands out runs past
	// the memory: a trap while starting, which is no ModuleError.
	_, err = rt.Load(context.Background(), "probe", abiShaped(abi.Version, 1), &abi.Config{})
	if _, ok := errors.AsType[*host.ModuleError](err); ok || !errors.Is(err, host.ErrTrap) {
		t.Errorf("err = %v, want ErrTrap and no *host.ModuleError", err)
	}
}
