package host_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/internal/wasmbin"
	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/host"
	"github.com/edgetrack/edgetrack/wasm/instrument"
)

// worstModules are the costliest modules of a few shapes that the default
// limits let through: what an attacker with an admin token can make the host
// compile.
func worstModules() map[string][]byte {
	lim := instrument.DefaultLimits
	// Functions of nested blocks, as deep as allowed, each with as many
	// blocks as allowed or with a tenth of that, and as many of them as
	// the module's block work allows.
	nestedBody := func(blocks int) []byte {
		var code []byte
		for open := 0; open < blocks; {
			depth := min(lim.Nesting-1, blocks-open)
			code = append(code, bytes.Repeat([]byte{0x02, 0x40}, depth)...)
			code = append(code, bytes.Repeat([]byte{0x0b}, depth)...)
			open += depth
		}
		return wasmbin.Body(wasmbin.NoLocals, append(code, 0x0b)...)
	}
	work := uint64(lim.BlockWork) * 1000
	big, small := lim.Blocks, lim.Blocks/10
	// br_tables of the most targets, as many as the module may have.
	table := append([]byte{0x41, 0x00, 0x0e}, wasmbin.U(uint64(lim.BrTable))...)
	table = append(table, bytes.Repeat([]byte{0}, lim.BrTable+1)...)
	tableBody := wasmbin.Body(wasmbin.NoLocals, append(table, 0x0b)...)
	tables := lim.BrTableTotal / lim.BrTable
	// As many functions as allowed, with as many locals as allowed.
	localsBody := wasmbin.Body(append(append([]byte{1}, wasmbin.U(uint64(lim.LocalsTotal/lim.Functions))...), 0x7e), 0x0b)
	// One function of straight-line code as large as allowed, repeated to
	// the module's size.
	straight := bytes.Repeat([]byte{0x41, 0x00, 0x1a}, (lim.FunctionBytes-8)/3)
	straightBody := wasmbin.Body(wasmbin.NoLocals, append(straight, 0x0b)...)
	// One function with as many locals and blocks as allowed, each block
	// using another local: SSA construction might cost locals × blocks.
	var mixed []byte
	for i := range lim.Blocks {
		k := wasmbin.U(uint64(i * 5 % lim.Locals))
		mixed = append(mixed, 0x02, 0x40, 0x20)
		mixed = append(mixed, k...)
		mixed = append(mixed, 0x21)
		mixed = append(mixed, k...)
		mixed = append(mixed, 0x0b)
	}
	mixedBody := wasmbin.Body(append(append([]byte{1}, wasmbin.U(uint64(lim.Locals))...), 0x7e), append(mixed, 0x0b)...)
	return map[string][]byte{
		"locals and blocks": manyFunctions(mixedBody, min(lim.LocalsTotal/lim.Locals, int(work/uint64(big*big)))),
		"nested blocks":     manyFunctions(nestedBody(big), int(work/uint64(big*big))),
		"smaller blocks":    manyFunctions(nestedBody(small), int(work/uint64(small*small))),
		"br_tables":         manyFunctions(tableBody, tables),
		"many functions":    manyFunctions(localsBody, lim.Functions),
		"straight code":     manyFunctions(straightBody, (lim.ModuleBytes-1024)/len(straightBody)),
	}
}

func manyFunctions(body []byte, n int) []byte {
	types := make([][]byte, n)
	bodies := make([][]byte, n)
	for i := range n {
		types[i], bodies[i] = []byte{0}, body
	}
	return wasmbin.Module(wasmbin.Sec(1, wasmbin.Vec(wasmbin.TypeVoid)), wasmbin.Sec(3, wasmbin.Vec(types...)),
		wasmbin.Sec(10, wasmbin.Vec(bodies...)))
}

// rss is the process's resident set in bytes, from /proc/self/status.
func rss(t testing.TB) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status:", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// maxCompileGrowth is the documented bound (docs/ABI.md) on what compiling
// one module may add to the process's resident memory.
const maxCompileGrowth = 256 << 20

// TestHostileModulesAreRefused loads the three modules that took a process
// down before the limits existed, and the worst ones the limits let
// through: the first are refused naming a limit, the others compile or are
// refused as invalid, and the process's RSS stays within maxCompileGrowth
// of where it started.
func TestHostileModulesAreRefused(t *testing.T) {
	rt := newRuntime(t, host.Options{})
	before := rss(t)
	for name, wasm := range map[string][]byte{
		"4e9 locals":         wasmbin.ManyLocals(4_000_000_000),
		"2.5M nested blocks": wasmbin.NestedBlocks(2_500_000),
		"br_table of 1.5M":   wasmbin.BrTable(1_500_000),
	} {
		_, err := rt.Load(context.Background(), name, wasm, &abi.Config{})
		if !errors.Is(err, host.ErrInvalidModule) || !errors.Is(err, instrument.ErrLimit) {
			t.Errorf("%s: err = %v, want an invalid module over a limit", name, err)
		}
	}
	if raceOn {
		t.Log("the worst modules are not compiled under the race detector, which multiplies compile time and memory")
		return
	}
	for name, wasm := range worstModules() {
		start := time.Now()
		_, err := rt.Load(context.Background(), name, wasm, &abi.Config{})
		// They compile, then fail validation: they export nothing.
		if !errors.Is(err, host.ErrInvalidModule) || !strings.Contains(err.Error(), "does not export") {
			t.Errorf("%s: err = %v, want an invalid module that compiled", name, err)
		}
		runtime.GC()
		grown := int64(rss(t)) - int64(before)
		t.Logf("%s: %d bytes, loaded in %v; RSS %+d MiB since the start", name, len(wasm), time.Since(start).Round(time.Millisecond), grown>>20)
		if grown > maxCompileGrowth {
			t.Errorf("%s: RSS grew by %d MiB, over the bound of %d MiB", name, grown>>20, maxCompileGrowth>>20)
		}
	}
}

// TestMalformedModuleDoesNotPanic loads a module whose function names a
// type that does not exist, on which wazero's validator panics: the host
// reports an invalid module instead.
func TestMalformedModuleDoesNotPanic(t *testing.T) {
	bad := wasmbin.Module(wasmbin.Sec(1, wasmbin.Vec(wasmbin.TypeVoid)), wasmbin.Sec(3, wasmbin.Vec([]byte{0x72})),
		wasmbin.Sec(10, wasmbin.Vec(wasmbin.Body(wasmbin.NoLocals, 0x0b))))
	rt := newRuntime(t, host.Options{})
	_, err := rt.Load(context.Background(), "bad", bad, &abi.Config{})
	if !errors.Is(err, host.ErrInvalidModule) || !strings.Contains(err.Error(), "does not compile") {
		t.Fatalf("err = %v, want ErrInvalidModule saying it does not compile", err)
	}
}

// FuzzLoad loads mutated modules, as an upload or a pull would: whatever the
// bytes, Load returns (a module, or an error saying why not) and never
// panics or takes the process down. Seeds: small modules just over or under
// the limits (mutating the shipped rules is FuzzInstrument's part: compiling
// one under the fuzzer's coverage instrumentation takes seconds).
func FuzzLoad(f *testing.F) {
	for _, wasm := range [][]byte{wasmbin.ManyLocals(50_001), wasmbin.ManyLocals(3), wasmbin.NestedBlocks(600), wasmbin.NestedBlocks(20),
		wasmbin.BrTable(20_000), wasmbin.BrTable(30)} {
		f.Add(wasm)
	}
	rt := newRuntime(f, host.Options{CallTimeout: 50 * time.Millisecond, PoolSize: 1, Prewarm: 1})
	f.Fuzz(func(t *testing.T, wasm []byte) {
		m, err := rt.Load(context.Background(), "fuzz", wasm, &abi.Config{})
		if err != nil {
			return
		}
		m.Close(context.Background())
	})
}

// TestStackOverflowIsContained runs a guest that recurses without end, on
// every instance of a pool of 8 at once, 80 times: each call traps, and the
// process's resident memory grows by less than maxStackGrowth (wazero alone
// lets each such call grow its stack to about 100 MB, and the edge reached
// 1.1 GB).
func TestStackOverflowIsContained(t *testing.T) {
	rt := newRuntime(t, host.Options{CallTimeout: 5 * time.Second, PoolSize: 8})
	m := load(t, rt, "misbehave", misbehaveWasm, &abi.Config{})
	runtime.GC()
	before := rss(t)
	var wg sync.WaitGroup
	errs := make(chan error, 80)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if _, err := m.Call(context.Background(), &abi.Request{Path: "/recurse"}); !errors.Is(err, host.ErrTrap) {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("/recurse: err = %v, want a trap", err)
	}
	grown := int64(rss(t)) - int64(before)
	t.Logf("RSS %+d MiB after 80 stack overflows", grown>>20)
	if grown > maxStackGrowth {
		t.Errorf("RSS grew by %d MiB, over the bound of %d MiB", grown>>20, maxStackGrowth>>20)
	}
	if v, err := m.Call(context.Background(), &abi.Request{Path: "/ok"}); err != nil || v.Status != 200 {
		t.Fatalf("after the overflows: %+v, %v", v, err)
	}
}

// maxStackGrowth is the documented bound (docs/ABI.md) on what rules
// overflowing their stack may add to the process's resident memory.
const maxStackGrowth = 64 << 20
