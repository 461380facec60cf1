// Package registry is the aggregator's rule registry. Operators upload rule
// versions (WebAssembly modules, see docs/ABI.md) and activate one version
// per rule; edges follow the active versions through a long-polled
// manifest, download modules by content hash and report which version they
// run.
//
// A rule with no activated upload is served by its built-in module
// (wasm/dist); the manifest lists it with source "builtin".
//
// The registry knows no HTTP. aggregator/internal/server serves it (the
// admin and public endpoints, in its rules.go) and gives its errors their
// status: the sentinel errors (ErrUnknownRule, ErrNoPrevious, ...) and a
// *Rejection for a refused upload. The values it returns and takes are the
// wire format of package internal/ruleapi.
//
// # Files
//
//	registry.go  Open, Close, Drain, the rules it serves, its errors
//	index.go     index.json, and replaying the audit log into it at Open
//	upload.go    Upload: validate, store by content hash, audit
//	validate.go  the checks of an upload (Validator) and why it is rejected
//	activate.go  Activate and Rollback
//	manifest.go  the manifest, its long-poll (Wait), module bytes
//	edges.go     edges' status reports, and the listing for operators
//	audit.go     audit.log, append-only
//	files.go     atomic writes of whole files
//	metrics.go   its Prometheus collectors
//
// # Storage
//
// Under <aggregator.data_dir>/rules:
//
//	modules/<sha256>.wasm   uploaded modules, named by the hex SHA-256 of their bytes
//	vectors/<sha256>.json   test vectors uploaded with a version, by their own hash
//	index.json              versions per rule (as ruleapi.Version), the active
//	                        version per rule, the manifest version
//	edges.json              the last status report of every edge
//	audit.log               JSON lines: upload, activate, rollback, reject
//
// # Invariants
//
//   - Every file but audit.log is published whole: written to a temporary
//     file in the same directory, fsynced, renamed over its name, and the
//     directory fsynced. A reader, or a restart after a crash, sees the old
//     content or the new, never a mix.
//   - A module (and its vectors) is on disk before index.json names it, and
//     only after it passed every check (see Validator): validation never
//     changes state, so a rejected upload leaves the active version active.
//   - The audit log is the record of activations. An activate or rollback
//     entry is appended and fsynced before the activation becomes visible
//     (index.json, the manifest, woken long-polls). At Open the active
//     versions, the rollback history and the manifest version are replayed
//     from the log; when index.json disagrees (a crash between the two
//     writes) the log wins and the index is rewritten. A torn last line (a
//     crash in the middle of an append) is cut off.
//   - The manifest version is one more than the number of activate and
//     rollback entries in the audit log: it grows by exactly one with every
//     activation, and only then.
//   - Versions are never deleted, so a rollback target and any hash an edge
//     was told about stay downloadable.
package registry
