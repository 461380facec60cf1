// Package store is the aggregator's event store: the Store interface, the
// types it speaks in, and the promises every backend keeps. It knows nothing
// about the engine behind it. The engines are subpackages: store/pebble, an
// embedded Pebble database, is the default; store/clickhouse keeps events in
// a ClickHouse database, for deployments that outgrow one machine.
// store/storetest is the conformance suite of the promises below; every
// backend's tests run it (storetest.Run).
//
// A Store keeps events: idempotent, durable ingest by event id, lookup by id,
// paged newest-first queries by session, category, name and event time,
// counts of matching events, event counts per minute, hour and day (Stats),
// and a change feed of events in the order they were stored (Export).
//
// # What every backend promises
//
// Ingest:
//
//   - Ingest returns only after the stored events are durable: an event it
//     reported as stored survives a crash and a restart.
//   - An id is stored at most once. The first copy that arrives wins; later
//     copies, also within the same call or from concurrent calls, count as
//     duplicates and are not compared with the stored one.
//   - Every event given is counted once: Stored + Duplicates +
//     len(Rejected) == len(events).
//   - Events that can never be stored are reported as a Rejection (their
//     index in the call, their id and the reason) and skipped; the rest of
//     the call proceeds. They are: a nil event, an empty id, an id over
//     MaxIDLen bytes, a session, category or name over MaxValueLen bytes, a
//     NUL byte in any of those four, a string that is not valid UTF-8 (which
//     proto3 requires), and an event that does not encode. Problem names
//     all but the last; all but the first and the last are
//     internal/storable's rules, which edges check before they acknowledge
//     an event, so a backend that could hold such an event still rejects it.
//   - When Ingest returns an error, none of its events may be taken as
//     stored (the caller sends them again, which idempotence makes safe); a
//     context done before the call stores nothing.
//   - Events are never changed once stored. They are removed only by
//     retention (below) and by an erasure (Eraser, erase.go), which have
//     promises of their own.
//
// Reading:
//
//   - Get returns the stored copy of an event, or ErrNotFound.
//   - Event time is client_time when it is > 0, else received_at (both unix
//     nanoseconds; EventTime). Query returns the events that Query.Matches,
//     ordered by event time, newest first, and by id (bytewise ascending)
//     among events with the same time; filters combine with AND and "" means
//     any. A filter value no stored event can have (ValidFilter) selects
//     nothing.
//   - A page holds at most Query.PageSize events. Next is set only when at
//     least one more event matches, so no page after the first is empty.
//   - A cursor (Result.Next) is opaque. It stands for a position in that
//     order: the next page starts right after the last event returned, so an
//     event ingested meanwhile shows up on a later page when it sorts after
//     that position and not when it sorts before. A cursor is accepted only
//     with the filters and time range of the query that returned it (the
//     Limit may change); with others, or when it is no cursor at all, Query
//     fails with ErrBadCursor.
//   - Offset skips that many matching events; a negative one, or one with a
//     cursor, is an error. The cursor of a page at an offset continues it.
//   - Count is exact: the number of events Query pages through.
//   - Stats counts exactly the stored events, from counters (rollups) kept
//     at ingest: duplicates and rejected events add nothing. Buckets are
//     aligned to the unix epoch (Bucket.Index); a query gets the buckets
//     that overlap its range, series sorted by category and then name,
//     points oldest first, no empty buckets. An unknown Bucket is an error.
//   - IDPrefix returns events whose ids start with the prefix, in id order,
//     at most limit (<= 0 or over MaxLimit means MaxLimit); an empty prefix
//     is an error.
//
// The export feed (Export):
//
//   - It holds each stored event exactly once, in the order stored: the
//     events of one Ingest call after those of every call that returned
//     before it began, and within one call in the order given. Duplicates
//     and rejected events are not in it.
//   - Every result has a Next, also one without events, after what it
//     returned or passed over; After == "" starts at the first event ever
//     stored. A cursor stays valid across restarts of the store. A cursor
//     of another store (a data directory or database replaced, another
//     aggregator's) is refused with ErrBadCursor instead of skipping or
//     repeating events.
//   - With Wait it long-polls: it returns as soon as a matching event is
//     stored, or with no events once Wait has passed, or when the context
//     ends or the store closes, with what it read so far.
//
// Retention (Expire), for a backend that implements the optional Expirer
// (storetest.Run checks these promises when it does, and skips them when
// not):
//
//   - Expire removes exactly the events that Retention.Expired calls
//     expired at its now — older, by EventTime, than the retention of
//     their category — and nothing else: newer events, categories kept
//     forever and every other category are untouched.
//   - Once it has returned, a removed event is in no answer: Get says
//     ErrNotFound; Query, Count, Query.Offset, IDPrefix and Export do not
//     have it; Stats no longer counts it (the counters are decremented with
//     the removal, so Stats and Count keep counting exactly the stored
//     events, and counts of older buckets are not kept longer than their
//     events).
//   - While a pass runs, each event is stored or removed as a whole:
//     queries, counts and reads of the feed go on without errors, and an
//     event removed while a page is read is left out of it.
//   - The export feed passes over removed events. Cursors stay valid and
//     positions keep their meaning: a reader after a removed event's
//     position never gets it, one that read it before keeps what it read
//     (a sync target keeps its rows: retention is the store's, not the
//     targets'), and events stored later come after every cursor given
//     out, across restarts too.
//   - An event sent again after it was removed is new to the store: it is
//     stored, with a new position in the feed, and removed by the next pass
//     if it is still expired. A reader whose cursor is before the removed
//     copy's old position may then get it at both positions (sinks upsert
//     by id).
//   - A pass that stops (an error, a context done, a crash) leaves every
//     event whole, stored or removed; the next pass goes on.
//
// Every backend:
//
//   - is safe for concurrent use;
//   - reports in Ready whether it can serve requests;
//   - waits in Close for calls in flight; after Close every call returns
//     ErrClosed, and closing again is harmless.
//
// # What is each backend's own
//
// How events are laid out, what each call costs, how cursors are encoded,
// how the data of an earlier version is migrated, and the metrics a backend
// exports are its own, documented in its package. store/pebble's doc gives
// its key layout, whose keys end a session, category or name with a NUL byte
// and end with the id (the reason for the NUL rule and the length limits;
// every backend keeps them all the same), and the cost of every call.
package store
