// Package store keeps the aggregator's events: idempotent, durable ingest by
// event id, lookup by id, and paged, newest-first queries by session,
// category, name and event time.
//
// The Store interface knows nothing about the engine behind it. Pebble (an
// embedded Pebble database, the default) is the one implementation so far; a
// ClickHouse one is meant to follow for deployments that outgrow one machine.
//
// # Contract
//
//   - Ingest returns only after the stored events are synced to disk.
//   - An id is stored at most once. The first copy that arrives wins; later
//     copies, also within the same call or from concurrent calls, count as
//     duplicates and are not compared with the stored one.
//   - Events that can never be stored are reported as a Rejection and
//     skipped; the rest of the call proceeds. They are: a nil event, an empty
//     id, an id over MaxIDLen bytes, a session, category or name over
//     MaxValueLen bytes, a NUL byte in any of those four, and an event that
//     does not marshal (proto3 strings must be valid UTF-8).
//   - Events are never changed or deleted once stored, which is what lets a
//     query read an index entry and then fetch the event without a snapshot.
//
// Event time is client_time when it is > 0, else received_at (both unix
// nanoseconds). Query results are ordered by event time, newest first, and
// by id (bytewise ascending) among events with the same time. Every index
// below sorts in that same order, so the order does not depend on which index
// a query uses.
//
// # Pebble key layout
//
// Every key starts with one byte that names its keyspace. Filter values
// (session, category, name) are followed by a 0x00 terminator; ingest rejects
// values that contain NUL, so a terminated value is never a prefix of another
// one. T is the inverted event time: 8 bytes, big-endian, of
// ^(uint64(t) ^ 1<<63) — the sign flip makes signed order unsigned, the
// complement makes later times sort first. The id always comes last and is
// not terminated: it is the rest of the key.
//
//	'm' "layout"                          → "1"        key layout version
//	'e' id                                → Event      primary: the marshalled event
//	't' T id                              → empty      all events, by time
//	's' session 0x00 T id                 → empty      by session (non-empty session)
//	'c' category 0x00 name 0x00 T id      → empty      by category and name (both non-empty)
//	'k' category 0x00 T id                → empty      by category (non-empty category)
//	'n' name 0x00 T id                    → empty      by name (non-empty name)
//
// An event is written in one batch with its primary key and all of its index
// entries, so an index entry never exists without its event; a call to
// Ingest is one synced batch. Empty filter values get no index entry, because
// a query's "" means "any", never "empty".
//
// Because T follows the filter values, a forward scan over one index prefix
// is newest first and a time range [Start, End) is a single key range:
// from prefix+T(End)+1 (inclusive) to prefix+T(Start)+1 (exclusive).
//
// # Queries
//
// Query picks the most selective index its filters allow: session, then
// category+name, then category, then name, then time. It scans that index in
// the time range and checks the remaining filters (for example the category
// of a session+category query) on the fetched events. A filter value no
// stored event can have (with NUL, or too long) selects nothing.
//
// A cursor (Result.Next) is the position of the last event of a page in the
// index the query scans; the next page starts right after it, so an event
// ingested meanwhile that sorts after that position shows up on a later page.
// Next is only set when at least one more event matches (the scan looks one
// match ahead), so no page after the first is empty. A cursor is base64url of
//
//	version(1) kind(1) filters(8) T(8) id
//
// where kind is the index's keyspace byte and filters is an FNV-64a
// fingerprint of all of the query's filters and its time range. A cursor that
// does not decode, has an unknown version, or belongs to another index or to
// other filters is rejected with ErrBadCursor. The next page seeks straight to
// the position, so page N costs what page 1 costs (plus, for filters checked
// while scanning, rescanning the non-matching keys between the last event and
// the match found by the look-ahead).
package store
