// Package instrument rewrites an untrusted WebAssembly module before the
// host compiles it, so that a call into it can be stopped at its deadline,
// and refuses, before anything else reads it, a module whose size or
// declarations exceed Limits.
//
// # Interrupting a rule
//
// A rule is untrusted code and must stop when its call deadline passes.
// wazero can do that itself (RuntimeConfig.WithCloseOnContextDone), but it
// does so by calling out of the compiled code at every loop header, and on
// the shipped rules that made a call 3 to 4.5 times slower than the same
// module without it (hamustro, 10 payloads: 103 µs against 23 µs).
//
// So the host instruments every module before compiling it. It adds a
// mutable i32 global, the budget, and an import of the host function
// edgetrack.checkpoint, and at the entry of every function and at the head
// of every loop it inserts
//
//	budget = budget - 1
//	if budget <= 0 {
//	    call checkpoint
//	    budget = CheckpointEvery
//	}
//
// checkpoint panics out of the guest once the call's context is done.
// Every unbounded execution passes the checks again and again: a loop's
// next iteration goes through its head, and recursion through a function's
// entry; the rest of a function is straight-line code of bounded length.
// Straight-line code can still hold instructions whose cost has no bound
// but memory: bulk memory and table instructions are therefore charged by
// length before they run (see appendCharge), and every call of an imported
// function, which may hash megabytes, calls checkpoint first. A table may
// not hold an imported function, so no import is called unchecked through
// call_indirect. A call therefore runs past its deadline by at most
// CheckpointEvery loop iterations or function calls, or about 2.5 MB of
// bulk copying.
// checkpoint is also where the goroutine running the guest can stop for the
// Go runtime (compiled wasm cannot be preempted), so a garbage collection
// never waits long for a running rule.
//
// The code the module came with cannot touch the budget: an instruction
// naming the new global's index makes the module invalid. Function indices
// at or above the new import's shift by one, and instrument renumbers them
// in code, exports, element segments and constant expressions; the name
// section, which would now name the wrong functions, is dropped.
//
// Instrument reads the module's instructions, so it accepts the instruction
// sets TinyGo and other compilers targeting wasip1 emit: the core
// instructions, sign extension, saturating conversions, bulk memory,
// reference types, multiple values and tail calls. Modules using SIMD,
// threads, exception handling or garbage collection are refused, as are
// modules with a start function (a rule initialises in _initialize, which
// runs under a deadline).

// # Stack
//
// Every function body is wrapped in a block and preceded by code that adds
// the function's frame (a few units plus its parameters and locals) to a
// third added global, trapping when the sum would pass MaxStackUnits;
// leaving the block, returning and tail calls subtract it again. A branch
// to the function's own label now leaves the added block, so it also passes
// the subtraction. A trap leaves the global as it was, which does not matter:
// the host discards an instance that trapped.
//
// # Limits
//
// wazero's decoder allocates in proportion to what a module declares (one
// function declaring 4,000,000,000 locals asks for 32 GB), and its
// validator and compiler take time that grows faster than the module in some
// shapes (deep nesting, large br_tables). Instrument is the first reader of
// every module and reads every byte anyway, so it checks Limits as it goes:
// counts of entries before the entries are read, and locals, body sizes,
// nesting and br_table targets as each function is read. A module over a
// limit is refused with a *LimitError naming the limit, its value and where
// in the module it was exceeded; errors.Is(err, ErrLimit) matches it. The
// limits and their values are listed in docs/ABI.md.
//
// # Invariants
//
//   - Instrument never panics and allocates at most a small multiple of the
//     module's size, whatever the input (FuzzInstrument).
//   - Every module wazero compiles is either refused with a reason or
//     rewritten into one wazero compiles too.
//   - The original code cannot read or write the added globals, nor reach
//     an imported function except by a direct call, which is checked.
package instrument
