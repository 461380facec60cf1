// Package store keeps the aggregator's events: idempotent, durable ingest by
// event id, lookup by id, paged newest-first queries by session, category,
// name and event time, counts of matching events, event counts per minute,
// hour and day kept at ingest (rollups), and a change feed of events in the
// order they were stored (Export).
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
//     MaxValueLen bytes, a NUL byte in any of those four, a string that is
//     not valid UTF-8 (which proto3 requires), and an event that does not
//     marshal. All but the first and the last are internal/storable's
//     rules, which edges check before they acknowledge an event.
//   - Events are never changed or deleted once stored, which is what lets a
//     query read an index entry and then fetch the event without a snapshot.
//   - The rollups count exactly the stored events: each newly stored event
//     adds one to its minute, hour and day, in the batch that stores it;
//     duplicates and rejected events add nothing.
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
//	'm' "layout"                          → "3"        key layout version
//	'm' "id"                              → 8 bytes    store id, in export cursors
//	'e' id                                → Event      primary: the marshalled event
//	't' T id                              → empty      all events, by time
//	's' session 0x00 T id                 → empty      by session (non-empty session)
//	'c' category 0x00 name 0x00 T id      → empty      by category and name (both non-empty)
//	'k' category 0x00 T id                → empty      by category (non-empty category)
//	'n' name 0x00 T id                    → empty      by name (non-empty name)
//	'r' W B category 0x00 name            → count      rollup: events in one bucket
//	'x' seq                               → id         export feed: stored order
//
// An event is written in one batch with its primary key and all of its index
// entries, so an index entry never exists without its event; a call to
// Ingest is one synced batch. Empty filter values get no index entry, because
// a query's "" means "any", never "empty".
//
// Rollups: W is the bucket width ('m' minute, 'h' hour, 'd' day), B the
// bucket's index — event time floor-divided by the width, so buckets are UTC
// and aligned to the unix epoch — as 8 bytes big-endian with the sign bit
// flipped (oldest first), then the category and name (empty ones too). The
// value is the number of stored events in that cell, 8 bytes big-endian.
// Ingest adds a batch's counts by read-modify-write under ingestMu, in the
// batch that stores the events (see rollupDeltas.apply); a Pebble merge
// operator would spare the reads, but a database records its merger's name
// and refuses to open with another, so adding one would strand databases
// already written. Layout 1 had no rollups; Open builds them from the events
// once and records layout 2 (migrateRollups).
//
// Because T follows the filter values, a forward scan over one index prefix
// is newest first and a time range [Start, End) is a single key range:
// from prefix+T(End)+1 (inclusive) to prefix+T(Start)+1 (exclusive).
//
// The export feed (Export, export.go) numbers stored events 1, 2, 3, … in
// the order of the commits that store them and, within one Ingest call, in
// the order given; seq is 8 bytes big-endian, written in the event's batch,
// and the next number is the last key's plus one. Duplicates get none.
// Layout 2 had no feed: Open numbers its events oldest event time first and
// gives the database its id (migrateFeed). An export cursor is the store id
// and the last seq passed over; a cursor of another store id is refused.
// Export waits for the next commit that stores events (a channel replaced
// at each one) when asked to long-poll.
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
//
// # Counting and skipping
//
// Count and Query.Offset (page N of a page-numbered API) never decode the
// events they count or skip, except where noted. A query without a session
// has its time range cut into whole days, hours and minutes, counted from the
// rollups, and at most two partial minutes at its ends, counted by their index
// keys; skipping walks the same pieces newest first and descends day → hour →
// minute → index keys into the one holding the first event of the page (see
// count.go). Cost: one rollup key per bucket, category and name in the range
// (days in the middle, up to 2·23 hours and 2·59 minutes at the ends) plus
// two minutes of index keys — independent of how many events match and of
// the page number. The page is read in a snapshot, so the rollups and index
// agree. A session query counts and skips by walking the session's index keys
// in the range (keys only); with a category or name as well, each key's
// event is read and checked: O(the session's events in the range).
//
// Stats reads the rollups of one width in the range: one key per bucket,
// category and name that has events.
package store
