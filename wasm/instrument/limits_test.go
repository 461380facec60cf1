package instrument

import (
	"errors"
	"os"
	"reflect"
	"testing"

	"github.com/edgetrack/edgetrack/internal/wasmbin"
)

// TestLimitsRefuse feeds modules over each limit and checks that each is
// refused with a LimitError naming that limit. The first three are the
// inputs that took a process down before the limits existed: 4,000,000,000
// locals (wazero's decoder asked for 32 GB), 2.5 million nested blocks and a
// br_table of 1.5 million targets (each compiled for minutes).
func TestLimitsRefuse(t *testing.T) {
	small := Limits{Sections: 3, Types: 1, Functions: 1, Imports: 1, Exports: 1, Globals: 1, Tables: 1,
		ElemSegments: 1, DataSegments: 1, FunctionBytes: 64, ModuleBytes: 1 << 10}
	for _, c := range []struct {
		name, limit string
		lim         Limits
		wasm        []byte
	}{
		{"4e9 locals", "locals per function", Limits{}, wasmbin.ManyLocals(4_000_000_000)},
		// The next two are over the size of a function body before
		// anything else: 7.5 MB and 1.5 MB.
		{"2.5M nested blocks", "function body size in bytes", Limits{}, wasmbin.NestedBlocks(2_500_000)},
		{"br_table of 1.5M", "function body size in bytes", Limits{}, wasmbin.BrTable(1_500_000)},
		{"nesting", "nesting depth of blocks", Limits{}, wasmbin.NestedBlocks(2_000)},
		{"a br_table", "targets of a br_table", Limits{}, wasmbin.BrTable(100_000)},
		{"locals over all functions", "locals of all functions", Limits{LocalsTotal: 10}, module(
			sec(1, vec(typeVoid)), sec(3, vec([]byte{0}, []byte{0})),
			sec(10, vec(body([]byte{1, 6, 0x7f}, 0x0b), body([]byte{1, 6, 0x7f}, 0x0b))))},
		{"locals in several declarations", "locals per function", Limits{Locals: 10}, module(
			sec(1, vec(typeVoid)), sec(3, vec([]byte{0})),
			sec(10, vec(body([]byte{2, 6, 0x7f, 6, 0x7e}, 0x0b))))},
		{"br_tables of the module", "targets of all br_tables", Limits{BrTableTotal: 100}, wasmbin.Module(
			sec(1, vec(typeVoid)), sec(3, vec([]byte{0}, []byte{0})),
			sec(10, vec(brTableBody(60), brTableBody(60))))},
		{"module size", "module size in bytes", small, make([]byte, 2<<10)},
		{"sections", "number of sections", small, module(
			sec(0, name("a")), sec(0, name("b")), sec(0, name("c")), sec(0, name("d")))},
		{"types", "entries of the type section", small, module(sec(1, vec(typeVoid, typeVoid)))},
		{"functions", "functions", small, module(sec(1, vec(typeVoid)), sec(3, vec([]byte{0}, []byte{0})))},
		{"imports", "imports", small, module(sec(2, vec(
			append(append(name("a"), name("b")...), 0, 0), append(append(name("a"), name("c")...), 0, 0))))},
		{"function body", "function body size in bytes", small, module(
			sec(1, vec(typeVoid)), sec(3, vec([]byte{0})), sec(10, vec(body(noLocals, append(make([]byte, 100), 0x0b)...))))},
		{"table entries", "maximum entries of a table", Limits{TableEntries: 10}, module(
			sec(4, vec([]byte{0x70, 1, 1, 11})))},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Instrument(c.wasm, c.lim)
			le, ok := errors.AsType[*LimitError](err)
			if !ok || le.Limit != c.limit || !errors.Is(err, ErrLimit) {
				t.Fatalf("err = %v, want a LimitError on %q", err, c.limit)
			}
		})
	}
}

func brTableBody(n int) []byte {
	code := append([]byte{0x41, 0x00, 0x0e}, wasmbin.U(uint64(n))...)
	for range n + 1 {
		code = append(code, 0x00)
	}
	return body(noLocals, append(code, 0x0b)...)
}

// TestShippedRulesFitTheLimits finds, for every limit, the least value each
// shipped module passes with, and requires a margin of 4× below the
// default: a rule that grows towards a limit fails here, long before users
// see it refused.
func TestShippedRulesFitTheLimits(t *testing.T) {
	files := []string{"../dist/hamustro.wasm", "../dist/eye.wasm", "../dist/cookiesync.wasm",
		"../host/testdata/misbehave.wasm", "../host/testdata/hamustroguest.wasm"}
	for _, file := range files {
		wasm, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Instrument(wasm, Limits{}); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		def := reflect.ValueOf(DefaultLimits)
		for i := range def.NumField() {
			field := def.Type().Field(i).Name
			max := int(def.Field(i).Int())
			// The least value that passes, by bisection: passing is monotone
			// in each limit.
			lo, hi := 0, max // lo fails (0 means the default, so start below 1), hi passes
			fails := func(v int) bool {
				lim := DefaultLimits
				reflect.ValueOf(&lim).Elem().Field(i).SetInt(int64(v))
				_, err := Instrument(wasm, lim)
				return errors.Is(err, ErrLimit)
			}
			for hi-lo > 1 {
				mid := lo + (hi-lo)/2
				if fails(mid) {
					lo = mid
				} else {
					hi = mid
				}
			}
			t.Logf("%s: %s needs %d of %d", file, field, hi, max)
			if hi > max/4 {
				t.Errorf("%s: %s needs %d, within 4× of the limit %d", file, field, hi, max)
			}
		}
	}
}
