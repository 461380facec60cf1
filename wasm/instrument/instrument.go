package instrument

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/edgetrack/edgetrack/wasm/abi"
)

const (
	// CheckpointImport is the host function the checks call; the host must
	// provide it in its module (abi.HostModule) with signature () -> ().
	CheckpointImport = "checkpoint"
	// CheckpointEvery is how many checks pass between two calls of
	// checkpoint: few enough that a call ends within about a millisecond of
	// its deadline, many enough that the host call costs nothing measurable.
	CheckpointEvery = 10_000
)

// Bulk instructions cost in proportion to their length, so a check before
// each charges the budget one unit per 2^shift bytes (memory) or entries
// (tables): a loop of 16 MiB fills then reaches checkpoint at every fill.
const (
	memoryCostShift = 8
	tableCostShift  = 5
)

const (
	secCustom   = 0
	secType     = 1
	secImport   = 2
	secFunction = 3
	secTable    = 4
	secGlobal   = 6
	secExport   = 7
	secStart    = 8
	secElement  = 9
	secCode     = 10
	secData     = 11
	wasmHeader  = 8
)

// sectionOrder places known sections for inserting missing ones; custom
// sections (0) may sit anywhere.
var sectionOrder = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}

// instrumenter holds what rewriting a module needs to know about it.
type instrumenter struct {
	importedFuncs uint32    // the new import's function index
	budget        uint32    // the new global's index; scratch is budget+1
	check         []byte    // the instructions inserted at each check point
	charge        [2][]byte // before a bulk memory / table instruction: charge its length
	err           error     // the first index the original module may not use
	lim           Limits
	funcTypes     []uint32          // the type index of each function the module defines
	typeParams    []int             // the number of parameters of each type
	typeResults   [][]byte          // the result types of each type
	blockTypes    map[string]uint32 // added types () -> results, by results, for multi-value bodies
	stackDepth    uint32            // the stack global's index: budget+2
	brTargets     uint64            // br_table targets seen so far, over all functions
	locals        uint64            // locals declared so far, over all functions
	blockWork     uint64            // the sum of the squares of each function's blocks so far
}

// fn maps a function index of the original module to the instrumented one.
func (in *instrumenter) fn(idx uint32) uint32 {
	if idx >= in.importedFuncs && idx < math.MaxUint32 { // an index of MaxUint32 stays invalid
		return idx + 1
	}
	return idx
}

// global refuses an index of the globals instrument adds; where describes
// the use, and is only called then.
func (in *instrumenter) global(idx uint32, where func() string) {
	if idx >= in.budget && in.err == nil {
		in.err = fmt.Errorf("%s uses global %d, which the module does not define", where(), idx)
	}
}

// Instrument returns a copy of wasm with the budget, the checkpoint import
// and the checks added, or an error saying why the module cannot be
// instrumented: a *LimitError when it exceeds one of lim (zero fields take
// DefaultLimits' values), any other error when it uses what the host does
// not support or is malformed.
func Instrument(wasm []byte, lim Limits) ([]byte, error) {
	lim = lim.withDefaults()
	if err := over("module size in bytes", uint64(len(wasm)), lim.ModuleBytes, ""); err != nil {
		return nil, err
	}
	if len(wasm) < wasmHeader || string(wasm[:4]) != "\x00asm" {
		return nil, errors.New("not a WebAssembly module")
	}
	type section struct {
		id   byte
		body []byte
	}
	var sections []section
	for r := (reader{b: wasm, off: wasmHeader}); !r.done(); {
		id := r.byte()
		n := r.u32()
		body := r.bytes(int(n))
		if r.err != nil {
			return nil, fmt.Errorf("section %d: %w", id, r.err)
		}
		if err := over("number of sections", uint64(len(sections)+1), lim.Sections, ""); err != nil {
			return nil, err
		}
		sections = append(sections, section{id, body})
	}

	var types, globals uint32
	in := &instrumenter{lim: lim}
	for _, s := range sections {
		if err := lim.sectionEntries(s.id, s.body); err != nil {
			return nil, err
		}
		r := reader{b: s.body}
		switch s.id {
		case secType:
			types = r.u32()
			for range types {
				if r.byte() != 0x60 && r.err == nil {
					r.fail("type entry is not a function type")
				}
				n := r.count()
				for range n {
					r.valType()
				}
				in.typeParams = append(in.typeParams, int(n))
				nr := r.count()
				at := r.off
				for range nr {
					r.valType()
				}
				in.typeResults = append(in.typeResults, r.b[at:r.off])
			}
		case secFunction:
			for range r.count() {
				in.funcTypes = append(in.funcTypes, r.u32())
			}
		case secImport:
			funcs, gl, err := countImports(s.body)
			if err != nil {
				return nil, fmt.Errorf("import section: %w", err)
			}
			in.importedFuncs, globals = funcs, globals+gl
		case secGlobal:
			globals += r.u32()
		case secStart:
			return nil, errors.New("has a start function; a rule initialises in _initialize, which the host runs under a deadline")
		}
		if r.err != nil {
			return nil, fmt.Errorf("section %d: %w", s.id, r.err)
		}
	}
	in.budget = globals
	in.stackDepth = globals + 2
	in.check = appendCheck(nil, in.budget, in.importedFuncs)
	in.charge[0] = appendCharge(nil, in.budget, memoryCostShift, in.check)
	in.charge[1] = appendCharge(nil, in.budget, tableCostShift, in.check)

	newType := []byte{0x60, 0x00, 0x00} // func () -> ()
	// A function whose body returns several values is wrapped in a block
	// of a type () -> (those values), added after the checkpoint's.
	in.blockTypes = map[string]uint32{}
	for _, t := range in.funcTypes {
		if int(t) >= len(in.typeResults) {
			return nil, fmt.Errorf("function section: type %d does not exist", t)
		}
		res := in.typeResults[t]
		if _, ok := in.blockTypes[string(res)]; ok || len(res) < 2 {
			continue
		}
		in.blockTypes[string(res)] = types + 1 + uint32(len(in.blockTypes))
		newType = append(newType, 0x60, 0x00)
		newType = binary.AppendUvarint(newType, uint64(len(res)))
		newType = append(newType, res...)
	}
	newImport := appendName(nil, abi.HostModule)
	newImport = appendName(newImport, CheckpointImport)
	newImport = append(newImport, 0x00) // a function
	newImport = binary.AppendUvarint(newImport, uint64(types))
	// The budget, (mut i32) = 0 so that the first check calls checkpoint,
	// a scratch global for the length of bulk instructions, and the stack
	// in use, in frame units.
	newGlobal := []byte{0x7f, 0x01, 0x41, 0x00, 0x0b, 0x7f, 0x01, 0x41, 0x00, 0x0b, 0x7f, 0x01, 0x41, 0x00, 0x0b}

	out := append([]byte(nil), wasm[:wasmHeader]...)
	emit := func(id byte, body []byte) {
		out = append(out, id)
		out = binary.AppendUvarint(out, uint64(len(body)))
		out = append(out, body...)
	}
	added := map[byte][]byte{secType: newType, secImport: newImport, secGlobal: newGlobal}
	done := map[byte]bool{}
	entries := map[byte]uint64{secType: 1 + uint64(len(in.blockTypes)), secImport: 1, secGlobal: 3}
	addMissing := func(before int) {
		for _, id := range []byte{secType, secImport, secGlobal} {
			if !done[id] && sectionOrder[id] < before {
				emit(id, append(binary.AppendUvarint(nil, entries[id]), added[id]...))
				done[id] = true
			}
		}
	}
	for _, s := range sections {
		if s.id == secCustom {
			// The name section names functions by index, which have moved;
			// DWARF sections point at code offsets, which have too.
			if r := (reader{b: s.body}); r.name() == "name" || strings.HasPrefix(r.name(), ".debug_") {
				continue
			}
			emit(s.id, s.body)
			continue
		}
		addMissing(sectionOrder[s.id])
		var body []byte
		var err error
		switch s.id {
		case secType, secImport:
			body, err = extendVector(s.body, added[s.id], entries[s.id])
		case secGlobal:
			body, err = in.globals(s.body)
			if err == nil {
				body, err = extendVector(body, newGlobal, entries[s.id])
			}
		case secTable:
			body, err = s.body, checkTables(s.body, lim.TableEntries)
		case secExport:
			body, err = in.exports(s.body)
		case secElement:
			body, err = in.elements(s.body)
		case secCode:
			body, err = in.code(s.body)
		default:
			body = s.body
		}
		if err == nil {
			err = in.err
		}
		if err != nil {
			return nil, fmt.Errorf("%s section: %w", sectionName(s.id), err)
		}
		done[s.id] = true
		emit(s.id, body)
	}
	addMissing(len(sectionOrder) + 1)
	return out, nil
}

func sectionName(id byte) string {
	names := map[byte]string{1: "type", 2: "import", 3: "function", 4: "table", 5: "memory", 6: "global",
		7: "export", 8: "start", 9: "element", 10: "code", 11: "data", 12: "data count", 13: "tag"}
	if n, ok := names[id]; ok {
		return n
	}
	return fmt.Sprintf("unknown (%d)", id)
}

// Stack use. wazero grows a call's stack by doubling, up to about 100 MB,
// and a rule that recursed without end made each instance hold that much
// until it trapped. So every function takes a share of a stack budget at
// its entry, frameBase plus one unit per parameter and local (a unit
// stands for one 8-byte slot), and gives it back on its way out; a call
// that would take the budget past MaxStackUnits traps (unreachable), and
// the instance is discarded as after any trap.
const (
	frameBase = 4
	// MaxStackUnits is the stack budget of one call into a rule: 1 MiB of
	// 8-byte slots, far more than the shipped rules use (their deepest
	// recursion is a JSON parser bounded at 48 levels).
	MaxStackUnits = 1 << 17
)

// appendStackTake appends: stack += frame; if stack > MaxStackUnits, trap.
func (in *instrumenter) appendStackTake(dst []byte, frame int64) []byte {
	get := binary.AppendUvarint([]byte{0x23}, uint64(in.stackDepth))
	set := binary.AppendUvarint([]byte{0x24}, uint64(in.stackDepth))
	dst = append(dst, get...)
	dst = appendSLEB(append(dst, 0x41), frame)
	dst = append(dst, 0x6a) // i32.add
	dst = append(dst, set...)
	dst = append(dst, get...)
	dst = appendSLEB(append(dst, 0x41), MaxStackUnits)
	return append(dst, 0x4b, 0x04, 0x40, 0x00, 0x0b) // i32.gt_u, if, unreachable, end
}

// appendStackGive appends: stack -= frame.
func (in *instrumenter) appendStackGive(dst []byte, frame int64) []byte {
	dst = binary.AppendUvarint(append(dst, 0x23), uint64(in.stackDepth))
	dst = appendSLEB(append(dst, 0x41), frame)
	dst = append(dst, 0x6b) // i32.sub
	return binary.AppendUvarint(append(dst, 0x24), uint64(in.stackDepth))
}

// appendCheck appends the instructions of one check point.
func appendCheck(dst []byte, budget, checkpoint uint32) []byte {
	get := binary.AppendUvarint([]byte{0x23}, uint64(budget)) // global.get
	set := binary.AppendUvarint([]byte{0x24}, uint64(budget)) // global.set
	dst = append(dst, get...)
	dst = append(dst, 0x41, 0x01, 0x6b) // i32.const 1, i32.sub
	dst = append(dst, set...)
	dst = append(dst, get...)
	dst = append(dst, 0x41, 0x00, 0x4c, 0x04, 0x40) // i32.const 0, i32.le_s, if
	dst = append(dst, 0x10)                         // call
	dst = binary.AppendUvarint(dst, uint64(checkpoint))
	dst = append(dst, 0x41) // i32.const
	dst = appendSLEB(dst, CheckpointEvery)
	dst = append(dst, set...)
	return append(dst, 0x0b) // end
}

// appendCharge appends the instructions that, before a bulk instruction
// whose length is on top of the stack, take length>>shift from the budget
// and then check it. The length goes through the scratch global and back.
func appendCharge(dst []byte, budget uint32, shift byte, check []byte) []byte {
	scratch := budget + 1
	dst = binary.AppendUvarint(append(dst, 0x24), uint64(scratch)) // global.set scratch
	dst = binary.AppendUvarint(append(dst, 0x23), uint64(budget))  // global.get budget
	dst = binary.AppendUvarint(append(dst, 0x23), uint64(scratch)) // global.get scratch
	dst = append(dst, 0x41, shift, 0x76, 0x6b)                     // i32.const shift, i32.shr_u, i32.sub
	dst = binary.AppendUvarint(append(dst, 0x24), uint64(budget))  // global.set budget
	dst = binary.AppendUvarint(append(dst, 0x23), uint64(scratch)) // global.get scratch
	return append(dst, check...)
}

// checkTables refuses tables without a maximum or above maxEntries: wazero
// allocates tables outside the memory cap, 8 bytes an entry.
func checkTables(body []byte, maxEntries int) error {
	r := reader{b: body}
	for i := range r.count() {
		r.valType()
		flags := r.byte()
		r.leb(64)
		if flags&1 == 0 {
			return fmt.Errorf("table %d has no maximum size", i)
		}
		if err := over("maximum entries of a table", r.leb(64), maxEntries, fmt.Sprintf("table %d", i)); err != nil {
			return err
		}
	}
	return r.end()
}

func appendName(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// appendSLEB appends v in signed LEB128.
func appendSLEB(dst []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(dst, c)
		}
		dst = append(dst, c|0x80)
	}
}

// extendVector appends encoded entries (added of them) to a section that
// is a vector.
func extendVector(body, entries []byte, added uint64) ([]byte, error) {
	r := reader{b: body}
	n := r.u32()
	if r.err != nil {
		return nil, r.err
	}
	out := binary.AppendUvarint(nil, uint64(n)+added)
	out = append(out, body[r.off:]...)
	return append(out, entries...), nil
}

// countImports counts the imported functions and globals.
func countImports(body []byte) (funcs, globals uint32, err error) {
	r := reader{b: body}
	for range r.count() {
		r.name()
		r.name()
		switch kind := r.byte(); kind {
		case 0: // function: type index
			r.u32()
			funcs++
		case 1: // table: reftype, limits
			r.valType()
			r.limits()
		case 2: // memory: limits
			r.limits()
		case 3: // global: valtype, mutability
			r.valType()
			r.byte()
			globals++
		case 4: // tag: attribute, type index
			r.byte()
			r.u32()
		default:
			r.fail("import of unknown kind %d", kind)
		}
	}
	return funcs, globals, r.end()
}

// exports renumbers exported functions and refuses a module that exports
// the host's import name under its own.
func (in *instrumenter) exports(body []byte) ([]byte, error) {
	r := reader{b: body}
	n := r.count()
	out := binary.AppendUvarint(nil, uint64(n))
	for range n {
		name := r.name()
		kind := r.byte()
		idx := r.u32()
		switch kind {
		case 0:
			idx = in.fn(idx)
		case 3:
			in.global(idx, func() string { return "export " + strconv.Quote(name) })
		}
		out = appendName(out, name)
		out = append(out, kind)
		out = binary.AppendUvarint(out, uint64(idx))
	}
	return out, r.end()
}

// globals renumbers ref.func in the initialisers of the module's globals.
func (in *instrumenter) globals(body []byte) ([]byte, error) {
	r := reader{b: body}
	n := r.count()
	out := binary.AppendUvarint(nil, uint64(n))
	for range n {
		at := r.off
		r.valType()
		r.byte() // mutability
		out = append(out, r.b[at:r.off]...)
		out = in.expr(out, &r)
	}
	return out, r.end()
}

// elements renumbers the functions element segments list.
func (in *instrumenter) elements(body []byte) ([]byte, error) {
	r := reader{b: body}
	n := r.count()
	out := binary.AppendUvarint(nil, uint64(n))
	for range n {
		flags := r.u32()
		out = binary.AppendUvarint(out, uint64(flags))
		if flags > 7 {
			return nil, fmt.Errorf("element segment with flags %d", flags)
		}
		if flags&2 != 0 && flags&1 == 0 { // explicit table index
			out = binary.AppendUvarint(out, uint64(r.u32()))
		}
		if flags&1 == 0 { // active: offset expression
			out = in.expr(out, &r)
		}
		if flags&3 != 0 { // element kind (0x00) or reference type
			at := r.off
			r.valType()
			out = append(out, r.b[at:r.off]...)
		}
		count := r.count()
		out = binary.AppendUvarint(out, uint64(count))
		for range count {
			if flags&4 != 0 {
				out = in.expr(out, &r)
			} else {
				out = binary.AppendUvarint(out, uint64(in.ref(r.u32())))
			}
		}
	}
	return out, r.end()
}

// ref renumbers a function that goes into a table or a reference. An
// imported function may not: calls to imports are checked where they are
// made, and a table would hide them.
func (in *instrumenter) ref(idx uint32) uint32 {
	if idx < in.importedFuncs && in.err == nil {
		in.err = fmt.Errorf("takes a reference to imported function %d; rules may only call imports directly", idx)
	}
	return in.fn(idx)
}

// expr copies a constant expression up to and including its end,
// renumbering ref.func.
func (in *instrumenter) expr(out []byte, r *reader) []byte {
	for r.err == nil {
		at := r.off
		op := r.byte()
		switch op {
		case 0x0b:
			return append(out, op)
		case 0xd2:
			out = append(out, op)
			out = binary.AppendUvarint(out, uint64(in.ref(r.u32())))
		case 0x23: // global.get
			in.global(r.u32(), func() string { return "a constant expression" })
			out = append(out, r.b[at:r.off]...)
		default:
			r.immediates(op)
			out = append(out, r.b[at:r.off]...)
		}
	}
	return out
}

// code rewrites the code section: a check at the entry of every function
// body and at the head of every loop, function indices renumbered.
func (in *instrumenter) code(body []byte) ([]byte, error) {
	r := reader{b: body}
	n := r.count()
	out := binary.AppendUvarint(nil, uint64(n))
	var fn []byte
	for i := range n {
		size := r.u32()
		if err := over("function body size in bytes", uint64(size), in.lim.FunctionBytes, fmt.Sprintf("function %d", i)); err != nil {
			return nil, err
		}
		code := r.bytes(int(size))
		if r.err != nil {
			return nil, fmt.Errorf("function %d: %w", i, r.err)
		}
		var err error
		if int(i) >= len(in.funcTypes) {
			return nil, fmt.Errorf("function %d has a body but no type in the function section", i)
		}
		if fn, err = in.function(fn[:0], code, in.funcTypes[i]); err != nil {
			var le *LimitError
			if errors.As(err, &le) {
				le.Where = fmt.Sprintf("function %d", i)
				return nil, le
			}
			return nil, fmt.Errorf("function %d: %w", i, err)
		}
		out = binary.AppendUvarint(out, uint64(len(fn)))
		out = append(out, fn...)
	}
	if r.err == nil && !r.done() {
		return nil, errors.New("bytes after the last function")
	}
	return out, r.err
}

func (in *instrumenter) function(out, code []byte, typ uint32) ([]byte, error) {
	r := reader{b: code}
	var locals uint64
	for range r.count() { // local declarations: count, type
		locals += uint64(r.u32())
		r.valType()
		// Checked at every declaration: the sum of 2^32 of them would not
		// fit 64 bits, and wazero would allocate the sum.
		if err := over("locals per function", locals, in.lim.Locals, ""); err != nil {
			return nil, err
		}
	}
	in.locals += locals
	if err := over("locals of all functions", in.locals, in.lim.LocalsTotal, ""); err != nil {
		return nil, err
	}
	if r.err != nil {
		return nil, fmt.Errorf("locals: %w", r.err)
	}
	out = append(out, code[:r.off]...)
	out = append(out, in.check...)
	// Take the frame's share of the stack, and wrap the body in a block,
	// so that every way out of it but return and a tail call (which give the
	// share back themselves) passes through the code that gives it back.
	frame := int64(frameBase + in.typeParams[typ] + int(locals))
	out = in.appendStackTake(out, frame)
	out = append(out, 0x02) // block
	switch res := in.typeResults[typ]; len(res) {
	case 0:
		out = append(out, 0x40)
	case 1:
		out = append(out, res[0])
	default:
		out = appendSLEB(out, int64(in.blockTypes[string(res)]))
	}
	release := in.appendStackGive(nil, frame)
	depth := 1 // the function body is a block
	blocks := 0
	for !r.done() {
		at := r.off
		op := r.byte()
		switch op {
		case 0x02, 0x04: // block, if
			r.blockType()
			if err := in.block(&depth, &blocks); err != nil {
				return nil, err
			}
			out = append(out, code[at:r.off]...)
		case 0x0b: // end
			if depth--; depth == 0 { // of the function: of the block, then give back
				out = append(out, 0x0b)
				out = append(out, release...)
			}
			out = append(out, op)
		case 0x0f: // return
			out = append(out, release...)
			out = append(out, op)
		case 0x13: // return_call_indirect
			r.u32()
			r.u32()
			out = append(out, release...)
			out = append(out, code[at:r.off]...)
		case 0x03: // loop blocktype: the check goes inside, at its head
			r.blockType()
			if err := in.block(&depth, &blocks); err != nil {
				return nil, err
			}
			out = append(out, code[at:r.off]...)
			out = append(out, in.check...)
		case 0x0e: // br_table
			n := r.count()
			if err := over("targets of a br_table", uint64(n), in.lim.BrTable, ""); err != nil {
				return nil, err
			}
			in.brTargets += uint64(n)
			if err := over("targets of all br_tables", in.brTargets, in.lim.BrTableTotal, ""); err != nil {
				return nil, err
			}
			for range n {
				r.u32()
			}
			r.u32()
			out = append(out, code[at:r.off]...)
		case 0x10, 0x12: // call, return_call
			idx := r.u32()
			if idx < in.importedFuncs {
				// A host function may take long (hashing 16 MiB, say):
				// ask checkpoint before every call of one.
				out = binary.AppendUvarint(append(out, 0x10), uint64(in.importedFuncs))
			}
			if op == 0x12 {
				out = append(out, release...)
			}
			out = binary.AppendUvarint(append(out, op), uint64(in.fn(idx)))
		case 0xd2: // ref.func
			out = binary.AppendUvarint(append(out, op), uint64(in.ref(r.u32())))
		case 0x23, 0x24: // global.get, global.set
			in.global(r.u32(), func() string { return fmt.Sprintf("instruction at byte %d", at) })
			out = append(out, code[at:r.off]...)
		case 0xfc:
			sub := r.u32()
			r.fcImmediates(sub)
			switch sub {
			case 8, 10, 11: // memory.init, memory.copy, memory.fill
				out = append(out, in.charge[0]...)
			case 12, 14, 15, 17: // table.init, table.copy, table.grow, table.fill
				out = append(out, in.charge[1]...)
			}
			out = append(out, code[at:r.off]...)
		default:
			r.immediates(op)
			out = append(out, code[at:r.off]...)
		}
		if in.err != nil {
			return nil, in.err
		}
	}
	// wazero 1.12's compiler takes time quadratic in a function's blocks,
	// so the module's sum of squares is bounded too.
	in.blockWork += uint64(blocks) * uint64(blocks)
	if err := over("blocks squared of all functions, in thousands", in.blockWork/1000, in.lim.BlockWork, ""); err != nil {
		return nil, err
	}
	return out, r.err
}

// block counts a block, loop or if that opens at *depth.
func (in *instrumenter) block(depth, blocks *int) error {
	if *depth++; *depth > in.lim.Nesting {
		return over("nesting depth of blocks", uint64(*depth), in.lim.Nesting, "")
	}
	if *blocks++; *blocks > in.lim.Blocks {
		return over("blocks of a function", uint64(*blocks), in.lim.Blocks, "")
	}
	return nil
}

// fcImmediates skips the immediates of the 0xfc-prefixed instruction sub.
func (r *reader) fcImmediates(sub uint32) {
	switch {
	case sub <= 7: // saturating conversions
	case sub == 8 || sub == 10 || sub == 12 || sub == 14: // memory.init, memory.copy, table.init, table.copy
		r.u32()
		r.u32()
	case sub == 9 || sub == 11 || sub == 13 || (sub >= 15 && sub <= 17): // data.drop, memory.fill, elem.drop, table.grow/size/fill
		r.u32()
	default:
		r.fail("instruction 0xfc %d at byte %d is not supported", sub, r.off)
	}
}

// end fails when bytes are left after a section's declared entries.
func (r *reader) end() error {
	if r.err == nil && r.off != len(r.b) {
		r.fail("%d bytes after the last entry", len(r.b)-r.off)
	}
	return r.err
}

// reader decodes the parts of the binary format instrument needs. The
// first error sticks; later reads return zero values.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) done() bool { return r.err != nil || r.off >= len(r.b) }

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail("unexpected end at byte %d", r.off)
		return 0
	}
	r.off++
	return r.b[r.off-1]
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.fail("length %d at byte %d runs past the end", n, r.off)
		return nil
	}
	r.off += n
	return r.b[r.off-n : r.off]
}

// leb reads an LEB128 number of at most maxBits bits, unsigned or signed.
func (r *reader) leb(maxBits int) uint64 {
	var v uint64
	for shift := 0; ; shift += 7 {
		if shift >= maxBits {
			r.fail("LEB128 number too long at byte %d", r.off)
			return 0
		}
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
}

func (r *reader) u32() uint32 { return uint32(r.leb(32)) }

// count reads the length of a vector. Every entry of the vectors instrument
// reads takes at least one byte, so a length beyond the bytes left is an
// error, caught before a loop runs that many times.
func (r *reader) count() uint32 {
	n := r.u32()
	if int64(n) > int64(len(r.b)-r.off) {
		r.fail("vector of %d entries at byte %d runs past the end", n, r.off)
		return 0
	}
	return n
}

func (r *reader) name() string { return string(r.bytes(int(r.u32()))) }

func (r *reader) limits() {
	flags := r.byte()
	r.leb(64)
	if flags&1 != 0 {
		r.leb(64)
	}
}

// valType reads a value or reference type: one byte; the typed references
// of the GC proposal (a prefix and a type index) are refused.
func (r *reader) valType() {
	if t := r.byte(); t == 0x63 || t == 0x64 {
		r.fail("typed function references are not supported")
	}
}

// blockType reads a block type: empty, one value type, or a type index
// (signed LEB128 of 33 bits).
func (r *reader) blockType() {
	if r.off < len(r.b) {
		if c := r.b[r.off]; c == 0x40 || (c >= 0x6f && c <= 0x7f) {
			r.valType()
			return
		}
	}
	r.leb(33)
}

func (r *reader) memarg() {
	if align := r.u32(); align&0x40 != 0 { // multi-memory: memory index follows
		r.u32()
	}
	r.leb(64)
}

// immediates skips the immediates of the instruction op.
func (r *reader) immediates(op byte) {
	switch {
	case op <= 0x01 || op == 0x05 || op == 0x0b || op == 0x0f || op == 0x1a || op == 0x1b:
	case op == 0x02 || op == 0x04: // block, if
		r.blockType()
	case op == 0x0c || op == 0x0d || op == 0x10 || op == 0x12: // br, br_if, call, return_call
		r.u32()
	case op == 0x0e: // br_table
		for range r.count() {
			r.u32()
		}
		r.u32()
	case op == 0x11 || op == 0x13: // call_indirect, return_call_indirect
		r.u32()
		r.u32()
	case op == 0x1c: // select with types
		for range r.count() {
			r.valType()
		}
	case op >= 0x20 && op <= 0x26: // locals, globals, table.get/set
		r.u32()
	case op >= 0x28 && op <= 0x3e: // loads and stores
		r.memarg()
	case op == 0x3f || op == 0x40: // memory.size, memory.grow
		r.u32()
	case op == 0x41:
		r.leb(32)
	case op == 0x42:
		r.leb(64)
	case op == 0x43:
		r.bytes(4)
	case op == 0x44:
		r.bytes(8)
	case op >= 0x45 && op <= 0xc4: // numeric, sign extension
	case op == 0xd0: // ref.null heaptype
		r.leb(33)
	case op == 0xd1: // ref.is_null
	case op == 0xd2: // ref.func
		r.u32()
	case op == 0xfc:
		r.fcImmediates(r.u32())
	case op == 0xfd:
		r.fail("SIMD instructions are not supported (byte %d)", r.off-1)
	case op == 0xfe:
		r.fail("atomic instructions are not supported (byte %d)", r.off-1)
	case op == 0xfb:
		r.fail("garbage-collection instructions are not supported (byte %d)", r.off-1)
	case op >= 0x06 && op <= 0x0a, op == 0x18, op == 0x19, op == 0x1f:
		r.fail("exception-handling instructions are not supported (byte %d)", r.off-1)
	default:
		r.fail("unknown instruction 0x%02x at byte %d", op, r.off-1)
	}
}
