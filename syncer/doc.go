// Package syncer streams the events an aggregator stores into another
// system: a PostgreSQL, MySQL/MariaDB or SQL Server database, or a webhook.
// `edgetrack sync` is its command line.
//
// It follows the aggregator's change feed (GET /v1/export): events in the
// order they were stored, after a cursor. Where the cursor lives decides
// what a crash costs:
//
//   - SQL targets write each batch's rows and the cursor after them in one
//     transaction, so a kill at any moment, a rerun or an aggregator restart
//     neither loses nor duplicates a row: exactly once. Rows are upserts by
//     event id (events never change) and, for cookie-sync matches, by partner
//     and partner id, the latest match winning.
//   - A webhook receives each batch until it answers 2xx (retried with
//     backoff and jitter, honouring Retry-After, with the same webhook-id on
//     every attempt); the cursor is written to the state directory after the
//     2xx. A crash between the two re-sends that batch once more with the
//     same webhook-id, for the receiver to drop: at least once, with a key
//     that makes it exactly once for a receiver that remembers ids. A batch
//     that fails every attempt is kept as a dead letter and the sync goes
//     on; Replay re-sends dead letters.
//
// Each set of feed filters (and aggregator URL) has its own cursor, so
// syncing another selection into the same target starts that selection from
// the beginning instead of skipping what an earlier one passed over.
package syncer
