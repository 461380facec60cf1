package instrument

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/edgetrack/edgetrack/internal/wasmbin"
)

var (
	module = wasmbin.Module
	sec    = wasmbin.Sec
	vec    = wasmbin.Vec
	body   = wasmbin.Body
	name   = wasmbin.Name
)

var (
	noLocals  = []byte{0}
	typeVoid  = []byte{0x60, 0, 0}             // () -> ()
	typeI32   = []byte{0x60, 1, 0x7f, 0}       // (i32) -> ()
	typeToI32 = []byte{0x60, 0, 1, 0x7f}       // () -> i32
	typeI32s  = []byte{0x60, 2, 0x7f, 0x7f, 0} // (i32, i32) -> ()
)

// Test modules, written out in the binary format.
var (
	// run loops forever.
	loopForever = module(
		sec(1, vec(typeVoid)),
		sec(3, vec([]byte{0})),
		sec(7, vec(append(name("run"), 0, 0))),
		sec(10, vec(body(noLocals, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b))), // loop br 0 end end
	)
	// run calls f(64), and f(n) calls f(n-1) twice while n > 0: 2^64
	// calls and not one loop.
	recurse = module(
		sec(1, vec(typeVoid, typeI32)),
		sec(3, vec([]byte{0}, []byte{1})),
		sec(7, vec(append(name("run"), 0, 0))),
		sec(10, vec(
			body(noLocals, 0x41, 0xc0, 0x00, 0x10, 1, 0x0b), // i32.const 64, call 1
			body(noLocals,
				0x20, 0, 0x04, 0x40, // local.get 0, if
				0x20, 0, 0x41, 1, 0x6b, 0x10, 1, // call f(n-1)
				0x20, 0, 0x41, 1, 0x6b, 0x10, 1, // call f(n-1)
				0x0b, 0x0b),
		)),
	)
	// run returns seven() + 1, calling seven through a table; the module
	// also imports a function, so that instrument's new import moves the
	// defined functions' indices (import 0: md5; 1: seven; 2: run).
	renumbered = module(
		sec(1, vec(typeToI32, typeI32s, []byte{0x60, 3, 0x7f, 0x7f, 0x7f, 0})),
		sec(2, vec(append(append(name("edgetrack"), name("md5")...), 0, 2))),
		sec(3, vec([]byte{0}, []byte{0})),
		sec(4, vec([]byte{0x70, 1, 1, 1})),                                  // table funcref min 1 max 1
		sec(7, vec(append(name("run"), 0, 2), append(name("seven"), 0, 1))), // exports
		sec(9, vec([]byte{0, 0x41, 0, 0x0b, 1, 1})),                         // table[0] = func 1
		sec(10, vec(
			body(noLocals, 0x41, 7, 0x0b),                            // seven: i32.const 7
			body(noLocals, 0x41, 0, 0x11, 0, 0, 0x41, 1, 0x6a, 0x0b), // run: call_indirect type 0 (table[0]) + 1
		)),
	)
)

// testRuntime returns a wazero runtime as the host configures it, with a
// host module whose checkpoint ends a call once its context is done, as the
// host's does, and an md5 that does nothing.
func testRuntime(t *testing.T) wazero.Runtime {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(false))
	t.Cleanup(func() { rt.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	_, err := rt.NewHostModuleBuilder("edgetrack").
		NewFunctionBuilder().WithFunc(func(ctx context.Context) {
		if err := ctx.Err(); err != nil {
			panic(fmt.Errorf("host: rule interrupted: %w", err))
		}
	}).Export(CheckpointImport).
		NewFunctionBuilder().WithFunc(func(context.Context, uint32, uint32, uint32) {}).Export("md5").
		Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func instantiate(t *testing.T, rt wazero.Runtime, wasm []byte) func(ctx context.Context) ([]uint64, error) {
	t.Helper()
	in, err := Instrument(wasm, Limits{})
	if err != nil {
		t.Fatalf("instrument: %v", err)
	}
	mod, err := rt.InstantiateWithConfig(context.Background(), in, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		t.Fatalf("instantiate the instrumented module: %v", err)
	}
	return func(ctx context.Context) ([]uint64, error) { return mod.ExportedFunction("run").Call(ctx) }
}

// TestInstrumentStopsUnboundedGuests runs a guest that loops and one that
// recurses without looping, each for far longer than any deadline: both end
// at their deadline with the host's interrupt, and the runtime's garbage
// collector is not kept waiting meanwhile.
func TestInstrumentStopsUnboundedGuests(t *testing.T) {
	rt := testRuntime(t)
	for _, c := range []struct {
		name string
		wasm []byte
	}{{"loop", loopForever}, {"recursion", recurse}} {
		t.Run(c.name, func(t *testing.T) {
			run := instantiate(t, rt, c.wasm)
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			// A collection needs every goroutine to stop, the guest's too.
			gcDone := make(chan struct{})
			go func() {
				time.Sleep(10 * time.Millisecond)
				for range 5 {
					runtime.GC()
				}
				close(gcDone)
			}()
			_, err := run(ctx)
			if err == nil || !strings.Contains(err.Error(), "rule interrupted") || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				t.Fatalf("err = %v (context: %v), want the host's interrupt after the deadline", err, ctx.Err())
			}
			<-gcDone
		})
	}
}

// TestInstrumentRenumbersFunctions checks that a module whose functions move
// (instrument adds an import) still calls, exports and tabulates the right
// ones.
func TestInstrumentRenumbersFunctions(t *testing.T) {
	rt := testRuntime(t)
	res, err := instantiate(t, rt, renumbered)(context.Background())
	if err != nil || len(res) != 1 || res[0] != 8 {
		t.Fatalf("run = %v, %v; want 8", res, err)
	}
}

func TestInstrumentRefuses(t *testing.T) {
	for _, c := range []struct {
		name, want string
		wasm       []byte
	}{
		{"not wasm", "not a WebAssembly module", []byte("hello")},
		{"start function", "start function", module(
			sec(1, vec(typeVoid)), sec(3, vec([]byte{0})), sec(8, []byte{0}),
			sec(10, vec(body(noLocals, 0x0b))))},
		{"the budget's index", "uses global 0", module( // no globals of its own: 0 is the budget
			sec(1, vec(typeVoid)), sec(3, vec([]byte{0})),
			sec(10, vec(body(noLocals, 0x41, 1, 0x24, 0, 0x0b))))},
		{"SIMD", "SIMD", module(
			sec(1, vec(typeVoid)), sec(3, vec([]byte{0})),
			sec(10, vec(body(noLocals, 0xfd, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x1a, 0x0b))))},
		{"truncated", "runs past the end", loopForever[:len(loopForever)-3]},
		{"a table without a maximum", "no maximum size", module(
			sec(1, vec(typeVoid)), sec(3, vec([]byte{0})), sec(4, vec([]byte{0x70, 0, 1})),
			sec(10, vec(body(noLocals, 0x0b))))},
		{"an imported function in a table", "reference to imported function 0", module(
			sec(1, vec(typeVoid)), sec(2, vec(append(append(name("edgetrack"), name("checkpoint")...), 0, 0))),
			sec(3, vec([]byte{0})), sec(4, vec([]byte{0x70, 1, 1, 1})),
			sec(9, vec([]byte{0, 0x41, 0, 0x0b, 1, 0})),
			sec(10, vec(body(noLocals, 0x0b))))},
		{"an export of the budget", "uses global 0", module(
			sec(1, vec(typeVoid)), sec(3, vec([]byte{0})), sec(7, vec(append(name("b"), 3, 0))),
			sec(10, vec(body(noLocals, 0x0b))))},
		{"a vector longer than its section", "vector of 999 entries", module(
			sec(1, vec(typeVoid)), sec(2, binary.AppendUvarint(nil, 999)))},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Instrument(c.wasm, Limits{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

// FuzzInstrument checks that instrument never panics, and that whatever
// wazero compiles, instrument either refuses with a reason or turns into a
// module wazero compiles too.
//
// Its seeds are small modules: Go's fuzzer slows to a few inputs a minute
// on seeds the size of the shipped rules, which TestMutatedRules mutates
// instead.
func FuzzInstrument(f *testing.F) {
	f.Add(wasmbin.ManyLocals(50_001))
	f.Add(wasmbin.NestedBlocks(600))
	f.Add(wasmbin.BrTable(30))
	f.Add(loopForever)
	f.Add(recurse)
	f.Add(renumbered)
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out, err := Instrument(wasm, Limits{})
		if err != nil {
			return
		}
		// Compiling takes most of the time per input; the shipped modules
		// are compiled instrumented by every other test of this package.
		if len(wasm) > 64<<10 {
			return
		}
		if err := compile(ctx, rt, wasm); err != nil {
			return // not valid to begin with, or wazero's validator panics on it
		}
		if err := compile(ctx, rt, out); err != nil {
			t.Fatalf("wazero compiles the module but not its instrumented copy: %v", err)
		}
	})
}

// compile compiles wasm, with a panic of wazero's validator (1.12 has some
// on malformed modules; testdata/fuzz/FuzzInstrument holds one the fuzzer
// found) turned into an error, as the host does.
func compile(ctx context.Context, rt wazero.Runtime, wasm []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("wazero panicked: %v", p)
		}
	}()
	_, err = rt.CompileModule(ctx, wasm)
	return err
}

// countingRuntime is a runtime whose edgetrack module counts checkpoint
// calls and offers md5 as a function that does nothing.
func countingRuntime(t *testing.T) (wazero.Runtime, *int) {
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(false))
	t.Cleanup(func() { rt.Close(ctx) })
	calls := new(int)
	_, err := rt.NewHostModuleBuilder("edgetrack").
		NewFunctionBuilder().WithFunc(func(context.Context) { *calls++ }).Export(CheckpointImport).
		NewFunctionBuilder().WithFunc(func(context.Context, uint32, uint32, uint32) {}).Export("md5").
		Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return rt, calls
}

// TestInstrumentChargesLongInstructions checks the checks that do not wait
// for the budget of loop heads: bulk memory instructions are charged by
// length, and every call of an imported function asks checkpoint first.
func TestInstrumentChargesLongInstructions(t *testing.T) {
	// run fills 1 MiB of memory 100 times in a loop.
	fill := append([]byte{0x03, 0x40, 0x41, 0x00, 0x41, 0x00, 0x41}, appendSLEB(nil, 1<<20)...)
	fill = append(fill, 0xfc, 11, 0, // memory.fill
		0x20, 0, 0x41, 1, 0x6a, 0x22, 0, // local 0 += 1
		0x41, 0xe4, 0x00, 0x49, 0x0d, 0, 0x0b, 0x0b) // br_if local 0 < 100; end; end
	fills := module(
		sec(1, vec(typeVoid)), sec(3, vec([]byte{0})), sec(5, vec([]byte{1, 16, 16})),
		sec(7, vec(append(name("run"), 0, 0))),
		sec(10, vec(body([]byte{1, 1, 0x7f}, fill...))),
	)
	// run fills a table of 2^16 entries 100 times in a loop.
	tfill := append([]byte{0x03, 0x40, 0x41, 0x00, 0xd0, 0x70, 0x41}, appendSLEB(nil, 1<<16)...)
	tfill = append(tfill, 0xfc, 17, 0, // table.fill 0
		0x20, 0, 0x41, 1, 0x6a, 0x22, 0,
		0x41, 0xe4, 0x00, 0x49, 0x0d, 0, 0x0b, 0x0b)
	tableFills := module(
		sec(1, vec(typeVoid)), sec(3, vec([]byte{0})),
		sec(4, vec(append(append([]byte{0x70, 1}, wasmbin.U(1<<16)...), wasmbin.U(1<<16)...))),
		sec(7, vec(append(name("run"), 0, 0))),
		sec(10, vec(body([]byte{1, 1, 0x7f}, tfill...))),
	)
	// run calls md5 five times, with no loop.
	md5 := []byte{0x41, 0, 0x41, 0, 0x41, 0, 0x10, 0}
	calls := module(
		sec(1, vec(typeVoid, []byte{0x60, 3, 0x7f, 0x7f, 0x7f, 0})),
		sec(2, vec(append(append(name("edgetrack"), name("md5")...), 0, 1))),
		sec(3, vec([]byte{0})),
		sec(7, vec(append(name("run"), 0, 1))),
		sec(10, vec(body(noLocals, append(bytes.Repeat(md5, 5), 0x0b)...))),
	)
	for _, c := range []struct {
		name string
		wasm []byte
		min  int
	}{
		// A fill of 2^20 bytes costs 2^12 units at one per 2^8 bytes, so
		// every third fill at the latest empties a budget of 10,000 (the
		// loop's 100 heads alone would not empty it once).
		{"memory.fill", fills, 100 / (CheckpointEvery/(1<<(20-memoryCostShift)) + 1)},
		// A fill of 2^16 entries costs 2^11 units at one per 2^5 entries:
		// every fifth fill at the latest empties the budget.
		{"table.fill", tableFills, 100 / (CheckpointEvery/(1<<(16-tableCostShift)) + 1)},
		// The entry's check, then one before each call.
		{"host calls", calls, 1 + 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			rt, n := countingRuntime(t)
			if _, err := instantiate(t, rt, c.wasm)(context.Background()); err != nil {
				t.Fatal(err)
			}
			if *n < c.min {
				t.Fatalf("checkpoint called %d times, want at least %d", *n, c.min)
			}
		})
	}
}

// TestMutatedRules mutates the shipped rules a few thousand times, with a
// fixed seed so that a failure repeats: Instrument never panics on them,
// and for some of them, whatever wazero compiles, Instrument refuses with a
// reason or rewrites into a module wazero compiles too.
func TestMutatedRules(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, file := range []string{"../dist/hamustro.wasm", "../dist/eye.wasm", "../dist/cookiesync.wasm"} {
		orig, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		compiled := 0
		for i := range 1000 {
			wasm := append([]byte(nil), orig...)
			for range 1 + rng.IntN(4) { // a few bytes changed, or a run cut out
				switch at := rng.IntN(len(wasm)); rng.IntN(3) {
				case 0:
					wasm[at] = byte(rng.UintN(256))
				case 1:
					wasm[at] ^= 1 << rng.UintN(8)
				default:
					wasm = append(wasm[:at], wasm[min(len(wasm), at+1+rng.IntN(16)):]...)
				}
			}
			out, err := Instrument(wasm, Limits{})
			if err != nil || i%100 != 0 {
				continue
			}
			if err := compile(ctx, rt, wasm); err != nil {
				continue
			}
			compiled++
			if err := compile(ctx, rt, out); err != nil {
				t.Fatalf("%s mutation %d: wazero compiles it but not its instrumented copy: %v", file, i, err)
			}
		}
		t.Logf("%s: 1000 mutations, %d compiled both ways", file, compiled)
	}
}

// TestInstrumentRefusesTheBudgetInConstantExpressions: an element segment
// whose offset reads the budget global (which the module does not define)
// is refused, as an instruction reading it is.
func TestInstrumentRefusesTheBudgetInConstantExpressions(t *testing.T) {
	m := module(
		sec(1, vec(typeVoid)), sec(3, vec([]byte{0})), sec(4, vec([]byte{0x70, 1, 1, 1})),
		sec(9, vec([]byte{0, 0x23, 0, 0x0b, 1, 0})), // table[global.get 0] = func 0
		sec(10, vec(body(noLocals, 0x0b))))
	if _, err := Instrument(m, Limits{}); err == nil || !strings.Contains(err.Error(), "a constant expression uses global 0") {
		t.Fatalf("err = %v, want a refusal of global 0 in a constant expression", err)
	}
	g := module( // a global initialised from the budget's index
		sec(1, vec(typeVoid)), sec(3, vec([]byte{0})), sec(6, vec([]byte{0x7f, 0, 0x23, 1, 0x0b})),
		sec(10, vec(body(noLocals, 0x0b))))
	if _, err := Instrument(g, Limits{}); err == nil || !strings.Contains(err.Error(), "a constant expression uses global 1") {
		t.Fatalf("err = %v, want a refusal of global 1 in a constant expression", err)
	}
}

// TestInstrumentBoundsTheStack runs a guest that recurses without end, f(n)
// calling f(n-1) from n = -1: it traps once its frames take MaxStackUnits,
// long before wazero's own ceiling of about 100 MB of stack, and a guest
// that recurses 10,000 deep with room to spare runs to its end.
func TestInstrumentBoundsTheStack(t *testing.T) {
	deep := func(n int64) []byte {
		return module(
			sec(1, vec(typeVoid, typeI32)),
			sec(3, vec([]byte{0}, []byte{1})),
			sec(7, vec(append(name("run"), 0, 0))),
			sec(10, vec(
				body(noLocals, append(append([]byte{0x41}, appendSLEB(nil, n)...), 0x10, 1, 0x0b)...),
				body(noLocals,
					0x20, 0, 0x04, 0x40, // local.get 0, if
					0x20, 0, 0x41, 1, 0x6b, 0x10, 1, // call f(n-1)
					0x0b, 0x0b),
			)),
		)
	}
	rt := testRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := instantiate(t, rt, deep(-1))(ctx); err == nil || !strings.Contains(err.Error(), "unreachable") || ctx.Err() != nil {
		t.Fatalf("endless recursion: err = %v (context %v), want the stack budget's trap", err, ctx.Err())
	}
	if _, err := instantiate(t, rt, deep(10_000))(ctx); err != nil {
		t.Fatalf("recursion 10,000 deep: %v", err)
	}
}
