// Package erasure carries out erasure requests (GDPR art. 17) at the
// aggregator and keeps their record: the audit log, the suppression list
// that edges pull, and the tombstones (ids of erased events) that sync
// clients read to delete the events from their targets.
//
// An erasure goes in this order, so that nothing of the subject is stored
// after it returns:
//
//  1. The subject is added to the suppression list (a durable audit
//     record, kind and hash only), with ingest held off (Erasures.Ingest
//     takes the gate shared, the addition takes it exclusively): every
//     ingest that starts later drops the subject's events, and every ingest
//     that started earlier has finished, its events in the store. With the
//     state in ClickHouse, the erasure then waits until every other live
//     aggregator on the database has done the same (see Several
//     aggregators).
//  2. The store erases the subject's events (store.Eraser).
//  3. A tombstone with the erased ids is written, then an audit record with
//     the count.
//
// A request that fails after step 1 leaves the subject suppressed and
// possibly some of its events stored; repeating it finishes the job, since
// every step is idempotent. Tombstones are removed after
// Options.TombstoneRetention; the audit records are kept.
//
// # Files
//
//	doc.go         this
//	erasure.go     Open, Erase, Ingest (the gate), List, Tombstones, Sweep, Close
//	follow.go      following the shared state: polls, acknowledgements
//	storage.go     where the state lives: the storage interface
//	files.go       the files under data_dir (the default)
//	clickhouse.go  the tables in ClickHouse (aggregator.store.backend clickhouse)
//
// # Storage
//
// With the Pebble store (the default), under <aggregator.data_dir>/erasure:
//
//	audit.log               the audit records, synced JSON lines
//	tombstones/<seq>.json   one per erasure that removed events
//
// With aggregator.store.backend clickhouse, in the store's database, shared
// by every aggregator on it (tables created and migrated with
// store/clickhouse's Tables, their version in erasure_schema_version):
//
//	erasure_log (id, time, action, kind,   Log        the audit records, one row each
//	             subject, record)
//	erasure_tombstones (seq, time, ids)    MergeTree  by seq
//	erasure_acks (aggregator, seen, at)    ReplacingMergeTree(at)  by aggregator
//
// record is the Record as audit.log has it. A suppress record's seq is its
// rank among the suppress rows of erasure_log (a Log table keeps the order
// rows were inserted in, read with one thread, as the rule registry's log),
// so every aggregator numbers the erasures alike: the suppression list's
// version and the tombstone cursor mean the same at all of them, and an
// edge or a sync client may fail over between them. Retention removes
// tombstones with ALTER … DELETE. An audit log left in data_dir/erasure
// (from before the state moved to the database) is read at Open, and the
// subjects it suppresses that the database does not are added to it; its
// tombstones are not moved.
//
// # Several aggregators
//
// On ClickHouse every aggregator reads erasure_log's new rows every
// Options.PollInterval (one second; edges poll GET /v1/suppressions far
// less often) and merges its suppress records into the set its ingest and
// its GET /v1/suppressions use, taking the gate exclusively as step 1 does.
// Then it acknowledges: a row in erasure_acks with seen, the last seq it
// suppresses, meaning that every later ingest of its own drops those
// subjects and every earlier one has finished. It also acknowledges at
// Open and at least every ten seconds (it is live), and at Close with seen
// the greatest uint64 (it holds up nothing).
//
// An erasure through A waits after step 1 until every other aggregator
// whose last acknowledgement is less than 30 seconds old has acknowledged
// its seq, up to Options.AckWait (30 seconds); then it erases. So by the
// time the store erases, no live aggregator is storing the subject's
// events or will store them, and the erasure removes every one that was
// stored: the window between A's addition and B's next poll (in which B's
// ingest still stores them) is closed. What remains:
//
//   - An aggregator that does not acknowledge within AckWait (its reads of
//     the database fail while its ingest still works, it stalls, or it
//     crashed less than 30 seconds before and cannot answer) is logged by
//     name, counted in edgetrack_erasure_unacknowledged_total, and the
//     erasure goes on: that aggregator may store the subject's events
//     until its next poll, and the erasure must be repeated to remove them.
//   - Liveness compares the acknowledging aggregator's clock with the
//     erasing one's: clocks more than 20 seconds apart can make a live
//     aggregator look stopped, and then it is not waited for.
//   - An aggregator that starts reads the whole log at Open, before it
//     serves, so it suppresses every subject from its first ingest.
//   - The ClickHouse store's own limit (store/clickhouse's doc, Erasure and
//     retention): an INSERT given up on may still land after the DELETE.
package erasure
