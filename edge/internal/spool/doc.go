// Package spool is the edge's durable FIFO of accepted events, stored in
// Pebble.
//
// An HTTP handler calls [Spool.Append] with the events of one request and may
// answer the client 2xx only after Append returned nil. A forwarder calls
// [Spool.Read] (and [Spool.Wait] when idle), ships the entries, and calls
// [Spool.Ack] once the aggregator has durably stored them; [Spool.Tail] tells
// it where the queue ends, to wait for what is there now. Entries the
// aggregator will never accept are moved aside with [Spool.DeadLetter], listed
// with [Spool.DeadLetters], and either sent again with [Spool.Replay] or dropped
// with [Spool.Purge].
//
// # Keys
//
//	"m/epoch"                        boot epoch, 8 bytes big-endian
//	'q' | epoch (8 BE) | seq (8 BE)  queue entry; value = the appended bytes
//	'd' | epoch (8 BE) | seq (8 BE)  dead letter, keyed by its queue position;
//	                                 value = version | at | reason | bytes
//
// Big-endian integers make Pebble's bytewise order the [Position] order, so a
// forward scan of the 'q' prefix is the FIFO: entries of older epochs (left
// over from before a restart or a crash) come first.
//
// # Invariants
//
// 1. A position is never reused. [Open] computes the new epoch as one more than
// the largest epoch found in the meta key or in any key, and writes it with a
// synced write before any Append can run. Sequence numbers restart at 1 in
// each epoch. A crash can lose the unsynced tail of an epoch, but the next
// boot uses a new epoch, so a lost position is never handed out again and two
// different events never share a position, not even across crashes. A failed
// write is handled like a crash: Pebble keeps the WAL's error for every later
// commit, so the spool closes and reopens it (Spool.reopen, with every other
// operation shut out) and starts a new epoch the same way; until then Ready
// and every write report the failure.
//
// 2. Append returns nil only when every value it stored is in a synced WAL.
// This is the durability contract of the edge: a 2xx means the events survive
// a crash of the process or the machine.
//
// 3. Readers see the queue as a gap-free prefix of the commit order: a reader
// never sees seq N+1 of an epoch without seq N (unless N was already acked or
// dead-lettered). Append allocates sequence numbers and hands its batch to
// Pebble's commit pipeline (DB.ApplyNoSyncWait) while holding Spool.mu, so the
// commit order equals the sequence order, and Pebble publishes batches for
// reading in commit order. The fsync is waited for after the mutex is released
// (Batch.SyncWait): while one WAL sync is in flight the next Appends queue up
// behind it and the following sync covers all of them (group commit). There
// is never one fsync per Append under a lock. Replay takes new positions
// through the same path.
//
// A consequence is that a reader may see an entry whose fsync is still in
// flight. That is safe: if the machine crashes before the sync, the client never
// got its 2xx and sends again, and if the entry was already shipped the
// aggregator drops the duplicate by event id. It also means the forwarder does
// not wait for fsyncs.
//
// 4. Ack removes [head, through] with one DeleteRange, where head is the first
// position that may still be live. Successive Acks therefore write disjoint
// range tombstones; tombstones that all start at the beginning of the queue
// would stack up in the memtable quadratically. Acks are not synced: a lost Ack
// only means entries are read and sent again, and the aggregator de-duplicates.
//
// 5. The counters behind [Spool.Stats] and the quota are exact: they are
// computed by a scan at Open and then changed only by the operation that changed
// the data, by exactly the bytes it moved. Append is the only operation that
// grows the total and does so under Spool.mu after its quota check, so
// concurrent Appends cannot overshoot the quota together. The operations that
// remove or move entries (Ack, DeadLetter, Replay, Purge) are serialised by
// Spool.adminMu and look at what is stored before changing it; Ack clamps its
// range to the last position already published, so it never deletes an entry
// whose Append has not been counted yet. When an operation moves bytes between
// the queue and the dead letters it adds before it subtracts, so a concurrent
// quota check can only see too much, never too little.
//
// 6. A dead letter is moved out of the queue with one synced batch (delete from
// the queue, write the dead letter), so an entry is always in exactly one of
// the two places. Replay moves dead letters back to the tail of the queue with
// new positions through the same ordered path as Append.
//
// # Lifetimes
//
// Append copies the values before it returns; the caller may reuse them.
// Entries and dead letters returned by Read and DeadLetters own their Value.
package spool
