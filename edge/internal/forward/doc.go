// Package forward ships the edge's spooled events to the aggregator.
//
// A [Forwarder] reads the spool in order, cuts batches by count, by bytes and
// by age, compresses them with zstd and POSTs them to the aggregator's
// /v1/ingest. It acknowledges entries in the spool only after the aggregator
// answered 200 for them, and moves to the dead letters exactly the entries the
// aggregator refused for good. Delivery is at-least-once: the aggregator drops
// ids it has already stored.
//
// # Invariants
//
// 1. Nothing is dropped silently. Every spool entry leaves the queue in one of
// two ways: [spool.Spool.Ack] after a 200 whose IngestResult accounts for every
// event of the batch and does not reject it, or [spool.Spool.DeadLetter] with
// a reason (undecodable value, event rejected in an IngestResult, batch
// rejected with 400, single event rejected with 413). The dead letters of a
// batch are written (synced) before the batch is acked, so a crash between the
// two only causes a resend.
//
// 2. Anything that is not proof that the events are bad is retried, forever,
// with backoff: network errors, timeouts, 401/403 (the edge's token is refused:
// a configuration problem, not the events' fault), 408, 429, 5xx, unknown
// statuses, and a 200 whose body does not decode or does not account for every
// event (stored + duplicates + rejected == events). Retrying the same batch is
// harmless because the aggregator de-duplicates by event id.
//
// 3. One batch is in flight at a time, and a batch is consecutive entries of
// one boot epoch (what one [spool.Spool.Read] returns). Batch.FirstSeq and
// Batch.LastSeq are the positions of the first and last event in it; entries
// between them may be missing when they were dead-lettered or acked earlier,
// so len(events) <= LastSeq-FirstSeq+1.
//
// 4. The read cursor lives only in memory. A new Run starts at the head of the
// queue, so whatever was not acked before a crash or a cancelled Run is sent
// again.
//
// 5. With several aggregators (Options.URL lists them), a batch goes to one
// at a time: the current one, until an attempt fails in a way that is
// retried; the retry goes to the next. Nothing else changes: the batch,
// its backoff, and what is acked. That is safe only when the aggregators
// share one store (aggregator.store.backend clickhouse), whose ingest is
// idempotent across them.
//
// # Batches on the wire
//
// The body is zstd(proto.Marshal(eventpb.Batch)). The spool values already are
// marshalled Events, so the forwarder checks that each one unmarshals and then
// appends it verbatim as a Batch.events field instead of marshalling it again;
// the bytes are the same a full proto.Marshal would produce, and fields a newer
// edge wrote are kept.
package forward
