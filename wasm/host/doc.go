// Package host runs rules: WebAssembly modules speaking the ABI of package
// wasm/abi, on wazero, inside the edge (and the aggregator, which validates
// uploads the same way).
//
// Invariants:
//
//   - A module's bytes are compiled once per content hash (sha256) in a
//     Runtime, and wazero's compilation cache on disk spares recompiling them
//     after a restart.
//   - Instances are pre-initialised (the c-shared `_initialize` export is run
//     once, then the rule's configuration is applied once) and pooled; a
//     Module never has more than its pool size of instances, and a request
//     never creates an instance when an idle one exists.
//   - Each request is one guest call (plus one edgetrack_reserve call when its
//     encoding outgrows the instance's input buffer). The call runs under a
//     deadline; every instance has a linear-memory cap.
//   - An instance whose call traps, times out, or returns bytes that do not
//     decode is closed and never reused; the caller gets ErrTrap or
//     ErrTimeout and the process carries on.
//   - A module Load refuses for its form gets a *ModuleError (errors.Is
//     ErrInvalidModule) whose Problem says what is wrong: it does not
//     compile, imports or exports what ABI v1 does not allow, needs more
//     memory than the cap, or fails to initialise. Callers classify by it,
//     never by the message.
//   - Guests get no filesystem, network, environment or arguments; WASI's
//     clock and random are real so that rules can make ids.
package host
