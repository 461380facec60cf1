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
//	registry.go    Open, Close, Drain, the rules it serves, its errors
//	index.go       the state: index.json, and replaying the log into it (apply)
//	log.go         changing the state through the log (commit), following a shared one
//	upload.go      Upload: validate, store by content hash, log
//	validate.go    the checks of an upload (Validator) and why it is rejected
//	activate.go    Activate and Rollback
//	manifest.go    the manifest, its long-poll (Wait), module bytes
//	edges.go       edges' status reports, and the listing for operators
//	audit.go       the log's entries
//	storage.go     where the state lives: the storage interface
//	files.go       the files under data_dir (the default)
//	clickhouse.go  the tables in ClickHouse (aggregator.store.backend clickhouse)
//	metrics.go     its Prometheus collectors
//
// # Storage
//
// The registry's durable state is a log of entries (upload, activate,
// rollback, reject; AuditEntry), the modules and vectors by content hash,
// and each edge's last status report. In memory it is the log replayed: the
// versions per rule, the active version per rule, the rollback history and
// the manifest version. Every change is an entry appended to the log and
// then applied (Registry.commit).
//
// With the Pebble store (the default), under <aggregator.data_dir>/rules:
//
//	modules/<sha256>.wasm   uploaded modules, named by the hex SHA-256 of their bytes
//	vectors/<sha256>.json   test vectors uploaded with a version, by their own hash
//	index.json              versions per rule (as ruleapi.Version), the active
//	                        version per rule, the manifest version
//	edges.json              the last status report of every edge
//	audit.log               the log, JSON lines
//
// With aggregator.store.backend clickhouse, in the store's database, where
// every aggregator on the database reads and writes the same registry:
//
//	registry_schema_version (version, applied_at)  MergeTree  the registry's own migrations
//	registry_log (base, id, time, action, rule,    Log        the log, one row per entry
//	              entry)
//	registry_modules (hash, wasm, stored_at)       ReplacingMergeTree  by hash
//	registry_vectors (hash, json, stored_at)       ReplacingMergeTree  by hash
//	registry_edges (edge, reported_at, rules)      ReplacingMergeTree(reported_at)  by edge
//
// entry is the AuditEntry as audit.log has it; time, action and rule are
// copied out of it to be read by people. Open creates the tables when
// missing and migrates them as store/clickhouse does its own, with a version
// table of their own (chTables, a clickhouse.Tables). There is no index:
// the log is replayed at Open. A registry left in data_dir/rules (from the Pebble store) is not
// read, and Open warns of it: nothing moves its versions to the database.
//
// The log's rows keep the order they were inserted in (a Log table, read
// with one thread). A row's position is thus the same for every reader,
// and a row counts only when its base, the position its writer claimed, is
// its position. To append, a writer reads the log to its end n, decides on
// the state there (is the version known, what is active now, where does a
// rollback go), inserts its row with base n and reads back the row at n.
// When that row is another's, a writer on another aggregator appended
// first: the row it inserted counts for nothing, and it reads on, decides
// again on the new state (an activation of what another just activated
// becomes a no-op) and appends at the new end. So two aggregators
// activating at once both land, one after the other, with manifest
// versions of their own, and every aggregator replays the same entries.
//
// Each aggregator reads the log's new rows every Options.PollInterval (one
// second) and applies them: a manifest change wakes its long-polls, so an
// edge polling any aggregator learns of an activation on another within
// that (edge.rules.poll_wait is 30 seconds). Module bytes come from the
// database, so a version uploaded on one is downloadable from all. Edges'
// reports are rows by edge, the newest by reported_at (the time on the
// clock of the aggregator that took it); each aggregator reads the new ones
// at the same interval, so any lists what edges report to any. When an edge
// last polled is known only to the aggregator it polled.
//
// # Invariants
//
//   - A version, an activation and a rollback exist only as an entry of the
//     log, appended and made durable before they become visible (in memory,
//     the manifest, woken long-polls): audit.log is fsynced, a ClickHouse
//     INSERT has returned and the row is at the position claimed. A failed
//     append changes nothing the registry serves. (A ClickHouse append
//     whose read-back failed may still count; whoever reads the log next
//     applies it.)
//   - Every file but audit.log is published whole: written to a temporary
//     file in the same directory, fsynced, renamed over its name, and the
//     directory fsynced. A reader, or a restart after a crash, sees the old
//     content or the new, never a mix.
//   - A module (and its vectors) is stored before an entry of the log names
//     it, and only after it passed every check (see Validator): validation
//     never changes state, so a rejected upload leaves the active version
//     active.
//   - The log is the record. At Open the versions, the active versions, the
//     rollback history and the manifest version are replayed from it; when
//     index.json disagrees (a crash between the two writes) the log wins
//     and the index is rewritten. A torn last line of audit.log (a crash in
//     the middle of an append) is cut off. Upload entries written before
//     they carried their version (size, vectors) leave the version to
//     index.json.
//   - The manifest version is one more than the number of activate and
//     rollback entries that count in the log: it grows by exactly one with
//     every activation, and only then, and every aggregator on one database
//     gives the same version the same manifest.
//   - Versions are never deleted, so a rollback target and any hash an edge
//     was told about stay downloadable.
package registry
