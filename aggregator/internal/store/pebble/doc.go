// Package pebble is the store.Store on an embedded Pebble database, the
// aggregator's default backend. It keeps the promises of package store (see
// its doc); this doc is about how: the key layout, what each call costs, and
// how databases of an earlier layout are migrated.
//
// A call to Ingest is one batch, committed with a sync before it returns.
// Events are never changed once stored; Expire (retention) and Erase (an
// erasure, erase.go) remove an event with all of its keys in one batch, and
// an erasure empties its feed entry. A query reads an index entry and then
// fetches the event without a snapshot, and passes over an entry whose event
// was removed in between. Pebble writes deletions as tombstones: the bytes
// leave the files when compactions rewrite them.
//
// # Key layout
//
// Every key starts with one byte that names its keyspace. Filter values
// (session, category, name) are followed by a 0x00 terminator; ingest rejects
// values that contain NUL, so a terminated value is never a prefix of another
// one. T is the inverted event time: 8 bytes, big-endian, of
// ^(uint64(t) ^ 1<<63) — the sign flip makes signed order unsigned, the
// complement makes later times sort first. The id always comes last and is
// not terminated: it is the rest of the key. Ids hold no NUL either, so no key
// lies between an index key and that key followed by 0x00.
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
//	'x' seq                               → id         export feed: stored order (empty once erased)
//
// An event is written in one batch with its primary key and all of its index
// entries, so an index entry never exists without its event; a call to
// Ingest is one synced batch. Empty filter values get no index entry, because
// a query's "" means "any", never "empty".
//
// Rollups: W is the bucket width ('m' minute, 'h' hour, 'd' day), B the
// bucket's index (store.Bucket.Index: event time floor-divided by the width,
// so buckets are UTC and aligned to the unix epoch) as 8 bytes big-endian
// with the sign bit flipped (oldest first), then the category and name
// (empty ones too). The value is the number of stored events in that cell, 8
// bytes big-endian. Ingest adds a batch's counts by read-modify-write under
// ingestMu, in the batch that stores the events (see rollupDeltas.apply); a
// Pebble merge operator would spare the reads, but a database records its
// merger's name and refuses to open with another, so adding one would strand
// databases already written.
//
// Because T follows the filter values, a forward scan over one index prefix
// is newest first and a time range [Start, End) is a single key range:
// from prefix+T(End)+1 (inclusive) to prefix+T(Start)+1 (exclusive).
//
// The export feed (Export, export.go) numbers stored events 1, 2, 3, … in
// the order of the commits that store them and, within one Ingest call, in
// the order given; seq is 8 bytes big-endian, written in the event's batch,
// and the next number is the last key's plus one. Duplicates get none. An
// export cursor is the store id and the last seq passed over; a cursor of
// another store id is refused. Export waits for the next commit that stores
// events (a channel replaced at each one) when asked to long-poll. One read
// passes over at most maxExportScan feed entries, so a filtered read of a
// large feed answers in bounded time.
//
// # Retention
//
// Expire (retention.go) lists the categories of stored events from the day
// rollups, and for each one with a retention walks the events older than its
// cutoff: for a category, the tail of its 'k' index (T sorts later times
// first, so events before the cutoff are one key range, from
// prefix+T(cutoff-1) to the prefix's end); for events without a category,
// the tail of the 't' index, reading each event and passing over other
// categories' (so a default retention costs a read of every older event of
// a category kept longer, on each pass). In synced batches of at most
// expireChunk events (a category's read and committed under ingestMu, so
// that no ingest adds to the range meanwhile; the time index's read without
// it and checked and committed under it), it deletes each event's primary key and its
// 't', 's', 'c' and 'n' entries, covers the 'k' entries it read with one
// range deletion, and decrements the event's minute, hour and day rollups
// in the same batch (a cell that reaches 0 is deleted). The feed's 'x'
// entries of removed events stay and are passed over by Export, except for
// the leading run of them, which trimFeed range-deletes — never the last
// entry of the feed, whose seq Open reads as the last number given out.
// Last, it compacts the key ranges it walked, so that their tombstones go;
// those of the primary, session and name keyspaces are scattered across
// them and left to Pebble's compactions.
//
// # Migrations
//
// Open records the layout version in a new database and migrates an older
// one a step at a time, refusing any other version (checkLayout):
//
//   - Layout 1 had no rollups: Open builds them from the events and records
//     layout 2 (migrateRollups). An interrupted migration starts over at the
//     next Open, first deleting what it wrote.
//   - Layout 2 had no feed: Open numbers its events oldest event time first
//     (the order they were stored in is not known), gives the database its
//     id, and records layout 3 (migrateFeed).
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
// index the query scans; the next page starts right after it. Next is only
// set when at least one more event matches (the scan looks one match ahead).
// A cursor is base64url of
//
//	version(1) kind(1) filters(8) T(8) id
//
// where kind is the index's keyspace byte and filters is an FNV-64a
// fingerprint of all of the query's filters and its time range. A cursor that
// does not decode, has an unknown version, or belongs to another index or to
// other filters is rejected with store.ErrBadCursor. The next page seeks
// straight to the position, so page N costs what page 1 costs (plus, for
// filters checked while scanning, rescanning the non-matching keys between
// the last event and the match found by the look-ahead).
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
// the page number. Count, and a page at an offset, read in one snapshot, so
// the rollups and index agree (also while Expire removes events). A session
// query counts and skips by walking the session's index keys
// in the range (keys only); with a category or name as well, each key's
// event is read and checked: O(the session's events in the range).
//
// Stats reads the rollups of one width in the range: one key per bucket,
// category and name that has events.
package pebble
