// Package clickhouse is the store.Store on a ClickHouse database, for
// deployments that outgrow one machine's disk or run several aggregators on
// one database (aggregator.store.backend: clickhouse). It keeps the promises
// of package store (see its doc; storetest.Run checks them here as for
// store/pebble), erasure (store.Eraser) and retention (store.Expirer)
// included; this doc is about how: the tables, what each call costs, and
// where it guarantees less than Pebble.
//
// It is written for ClickHouse 18.16 (what Debian ships, and what the tests
// run against) over the native protocol with clickhouse-go/v2, and uses only
// what later versions still have: MergeTree, SummingMergeTree,
// ReplacingMergeTree, a materialized view, LIMIT BY, uniqExact, argMin,
// external data, ALTER TABLE … DELETE and UPDATE (mutations) and
// system.mutations. Batch INSERTs name their columns, and no INSERT carries
// its data inline (both fail on 18.16 with this client).
//
// # Tables
//
// Open creates the database (the DSN's, or DefaultDatabase) and these
// tables when missing, and records the schema version:
//
//	schema_version (version, applied_at)          MergeTree         one row per migration applied
//	meta (key, value)                             MergeTree         'store_id' → 16 hex digits, in export cursors
//	events (id, seq, writer, event_time,          MergeTree         one row per stored copy; ORDER BY id
//	        session, category, name, body,
//	        user_id, device_id, subjects)
//	rollups (width, bucket, category, name, events) SummingMergeTree counts per minute (1), hour (2), day (3)
//	rollups_mv                                    materialized view events → rollups, at every INSERT,
//	                                              summed per cell within the inserted block
//	duplicates (id)                               ReplacingMergeTree ids with more than one row (see below)
//	lifecycle (token, kind, canonical, id, seq,   MergeTree         rows being removed by Erase and Expire
//	           writer, event_time, category,                        (see Erasure and retention)
//	           name, claimed_at)
//	writers (writer, mark, version, state, at)    ReplacingMergeTree each store's mark, for the feed (see
//	                                              The feed with several aggregators)
//
// body is the event's deterministic protobuf encoding; event_time is
// store.EventTime; session, category and name are copied out of it to be
// filtered on. seq is the export feed's order: this process gives
// max(last+1, unix microseconds << 10) under its ingest lock, so its own
// rows are numbered in the order they are inserted, and the rows of several
// aggregators interleave about as they were stored. writer is a random id
// of the process that inserted the row; a row is named by (seq, writer),
// which no two rows share. user_id and device_id are what an erasure of a
// user or device matches (subject.DataValue of the event's data, "" when
// it has none), filled by Ingest, which sets subjects to 1. bucket is
// event_time floor-divided by the width (store.Bucket.Index), computed by
// the view.
//
// Migrations: schema_version holds the versions applied; Open runs the
// steps from the highest one recorded to schemaVersion (each statement can
// run again, so an interrupted migration finishes at the next Open) and
// refuses a database of a later version. Version 1 is the layout above
// without the columns user_id, device_id and subjects and the table
// lifecycle, which version 2 adds; version 3 adds writers. An ADD COLUMN, which 18.16 cannot say IF
// NOT EXISTS of, runs only when the column is missing. The rows stored
// before version 2 keep subjects 0 and no user or device: Erase reads
// their bodies instead (below). Nothing rewrites them: a mutation that did
// would cost what an erasure costs, for every row.
// A step is written once for one server and for a cluster (schema.go: ddl,
// expanded by layout.expand; see Cluster); a database at the current
// version gets no DDL at Open.
//
// # Ingest and exactly once
//
// One Ingest call, under the process's ingest lock: look up the call's ids
// in events (sent as external data; one read of the primary key per id);
// INSERT the new ones in one block, synchronously — ClickHouse has written
// the rows, and the view has counted them in rollups, when it returns. Then,
// outside the lock, it looks the new ids up again (see below). The locked
// parts of the calls of one process run one at a time, so this process never
// inserts an id that is stored: the first copy wins, as with Pebble.
//
// Two aggregators on one database can both pass the look-up before either
// inserts, and then an id has two rows. Nothing in ClickHouse can hold that
// window shut (it has no transactions or conditional inserts), so the store
// makes the extra row harmless instead:
//
//   - The canonical copy of an id is its row with the least (seq, writer).
//     Get reads it; Query and IDPrefix keep one row per id (LIMIT 1 BY id,
//     the canonical one first); Count counts distinct ids (uniqExact); the
//     export feed passes a row only when it is the canonical copy among the
//     copies visible then (of two copies, the one read first either stays
//     canonical or sorts before the cursor when the other one appears).
//   - Whichever of the two aggregators looks its ids up second — after its
//     insert, or, when it stopped before that, the aggregator that gets the
//     events' resend (edges resend until acknowledged) — sees both rows and
//     records the id in duplicates. The one whose copy is not canonical
//     reports it as a duplicate.
//   - Rollups count rows, so they count the extra row too. Stats subtracts
//     every non-canonical row of the ids in duplicates from its own cell;
//     Query and Count leave those rows out as well (a copy with other
//     contents, such as another time, would not sort beside the canonical
//     one). events is a
//     plain MergeTree, not a ReplacingMergeTree, so that no merge ever
//     removes a row the rollups counted: the correction is the same before
//     and after merges.
//
// What this leaves: between the second insert and its recording (one
// look-up later, or until the resend when an aggregator dies in between)
// Stats counts the racing event twice; every other read is exact
// throughout. The duplicates table is empty unless aggregators race, and
// reading it costs every read a few sub-queries on empty tables.
//
// # Erasure and retention
//
// Erase and Expire remove rows the same way (a removal; the steps are on
// type removal in lifecycle.go): the rows to remove are claimed in the
// lifecycle table under a random token, one ALTER TABLE events DELETE
// (a mutation) deletes the rows claimed under it, and when the server has
// carried it out (system.mutations says is_done) the rollups are counted
// down by one INSERT of negative counts into their cells, from the claims:
// exactly the rows deleted, so Stats and Count agree again. Ids none of
// whose rows are left are deleted from duplicates (the copies that lost a
// race are claimed with the canonical copy, and counted down with it, so
// the correction Stats makes for them ends with them). The call returns
// when all of that is done: then nothing removed is in Get, Query, Count,
// Stats, IDPrefix or Export. Removals of one store run one at a time.
//
//   - Erase claims the rows of a session or uid by the session column, of a
//     user or device by user_id or device_id. Rows stored before schema
//     version 2 have none: the server picks those whose body holds the
//     value as it is (or a backslash, or every one for a value that is a
//     JSON object or array), and they are decoded and matched with
//     store.SubjectMatches. Once done, the ids in its claims are blanked
//     (an UPDATE), as an id can hold the session or uid.
//   - Expire claims every expired row in one INSERT … SELECT the server
//     runs (a scan of the category and event_time columns): per category
//     listed, and for the others the default, as store.Retention says. A
//     pass with nothing expired writes nothing. Counting the rows down
//     leaves a bucket the cutoff falls in counting exactly its newer
//     events, and cells wholly expired at zero, which merges drop.
//
// Cost: a mutation in 18.16 rewrites every part of events, whatever it
// deletes: each erasure, and each retention pass that removes something,
// writes the whole table once more (and needs that much free disk for a
// while), in the background pool of the server, and takes as long as that
// does; removals wait for each other. The old parts, which still
// hold the removed rows, are deleted by the server a few minutes after the
// mutation (its old_parts_lifetime), as Pebble's bytes leave its files when
// it compacts them. A retention pass with nothing expired reads two
// columns.
//
// Readers during a removal see each row stored or removed as the mutation
// reaches its part; Stats may count deleted rows until the count-down,
// never fewer than are stored. Where it guarantees less than Pebble:
//
//   - A removal whose wait ends early (its context, an error) has still
//     removed its rows (the server goes on with the mutation); the store's
//     next removal counts them down first. A process that stops before
//     that (a crash, a restart) leaves the rollups counting those rows,
//     and nothing repairs that yet.
//   - An event whose INSERT the aggregator gave up on (an error after the
//     server got the rows) may still be written after an erasure's DELETE
//     was submitted; then it stays. The aggregator's suppression keeps the
//     subject's later events out; such an event needs the erasure again.
//   - Several aggregators on one database may remove the same rows at
//     once (their retention passes do): each claims them, and the one whose
//     DELETE has the least number (mutations are applied in that order)
//     removes them, counts them down and reports them; the others record
//     them as lost. A removal reads the other claims right after its own
//     DELETE, and claims are deleted claimGrace (an hour) after their
//     removal ended, so that holds unless a removal stalls for that long
//     between its claims and its DELETE.
//
// If the feed's last rows are removed, their highest seq is recorded in
// meta (feed_end), so that Open does not give it out again.
//
// # Durability
//
// Ingest returns when the server has written the rows to its filesystem:
// they survive a restart or crash of the ClickHouse server and of the
// aggregator. ClickHouse 18.16 does not fsync a part before answering an
// INSERT, so a power loss of the server's machine can lose the rows of the
// last seconds; with a cluster, Options.AckReplicas of 2 or more
// acknowledges an event only once that many servers hold it (see
// Cluster). The materialized view runs inside the INSERT, after the rows
// are written: if the server fails between the two, the INSERT fails,
// Ingest returns an error, and the resend finds the events stored, so the
// rollups miss that INSERT's events — all of them, and an INSERT can carry
// hundreds: a server killed under load did so in about a third of the runs
// of TestClickHouseCluster, which allows it. Nothing repairs that yet.
//
// # Costs
//
//   - Ingest: two id look-ups (the primary key) and one INSERT per call,
//     plus the view's rollup rows (three per event, summed by the server
//     as parts merge), and a parse of each event's data for user_id and
//     device_id. Every INSERT makes a part: send batches, not single
//     events.
//   - Get, IDPrefix: the primary key.
//   - Query, Count: events is ordered by id, so a filter on session,
//     category, name or time reads those columns of the whole table (which
//     ClickHouse does at hundreds of millions of values a second per core,
//     but it is a scan), then sorts the matches; page N costs what page 1
//     costs plus skipping, and a cursor is the position (event_time, id)
//     of the last event of a page, base64url of version(1) filters(8)
//     event_time(8) id, tied to an FNV-64a fingerprint of the filters and
//     time range.
//   - Stats: rollups, whose primary key is (width, bucket, category, name):
//     one range of one width, never the events.
//   - Erase, Expire: a mutation each that rewrites the whole events table
//     (see Erasure and retention); finding a user's or device's rows reads
//     two columns, and the bodies of rows of schema version 1 that can
//     hold the value.
//   - Export: the feed is rows in (seq, writer) order after the cursor,
//     filtered, up to the end the feed had when the read began; a read
//     scans the seq column. The cursor is base64url of version(1) store
//     id(8) seq(8) writer(8), and a read first reads the marks of the
//     other writers (a GROUP BY of the writers table, one row per store
//     that ever opened the database after merges). A long-poll wakes when
//     this process inserts, and looks every Options.PollInterval for the
//     rows of other aggregators. A store records its mark (an INSERT of
//     one row, under the ingest lock) each PollInterval beside other
//     aggregators (see The feed with several aggregators).
//
// # Several aggregators
//
// Several aggregators on one database store each event once and agree on
// every answer (TestTwoStoresConcurrently; TestRacingAggregators for the
// races above; in cmd/edgetrack, TestTwoAggregatorsOneClickHouse with one
// of two aggregator processes killed under load, TestEdgeFailsOver, an
// edge listing both in edge.aggregator_url, and TestClickHouseCluster, on
// two replicas of a cluster), and a feed cursor of one is
// valid at the others (it names the database); the feed followed at any of
// them brings every event once (see The feed with several aggregators,
// below, for what that waits for). Their retention passes and erasures remove each
// row once (see Erasure and retention); the suppression list of erased
// subjects, the erasures' audit records and their tombstones are shared
// too, in tables of package erasure (erasure_*), and an erasure through one
// waits until the others suppress the subject before it erases
// (aggregator/internal/erasure's doc, Several aggregators).
//
// # The feed with several aggregators
//
// The feed is in (seq, writer) order, and a reader's cursor passes every
// position before it, so no row may become visible behind a cursor: an
// aggregator whose INSERT of lower seqs landed after a reader passed higher
// ones of another's (a slower INSERT; a clock behind the other's) would be
// skipped. Each store is therefore a writer with a mark, recorded in the
// writers table (writers.go): every row it inserted below its mark is
// visible, and every row it inserts later has a seq at or above it. A
// store records its mark under its ingest lock (no INSERT of its own in
// flight), at the seq it would give next, and goes on from there: every
// PollInterval while another writer is live, else every quarter of
// WriterTimeout (it looks for others every PollInterval). A feed read passes no seq at or above its horizon: the least
// of its own store's part (the seqs below it are its rows, all written)
// and the marks of the other writers, read after that part was taken.
//
//   - Starting: a store first records that it is pending, which holds every
//     feed read back, then reads the highest mark any writer recorded and
//     the highest seq stored, and gives out seqs above both. A read that
//     did not see it pending read marks no higher than those, so it passed
//     no seq the new store gives out — however its clock disagrees.
//   - Stopping: Close records that the store is closed; feed reads stop
//     waiting for it at once. A store that stops without that (killed, or
//     cut off from the server) holds every feed back for
//     Options.WriterTimeout (aggregator.store.clickhouse.writer_timeout,
//     30 s) after its last mark, by the server's clock; then reads take it
//     for gone.
//   - A store whose last recorded mark is older than half of WriterTimeout
//     (its INSERTs of marks failed) registers again, as when starting,
//     before its next INSERT of events: reads may have taken it for gone.
//   - What it costs: the feed lags the rows of another aggregator by up to
//     PollInterval (its next mark), and by as much as the clocks of the
//     aggregators disagree (a clock an hour ahead makes its rows wait an
//     hour for the others' marks); an aggregator that read its own rows
//     only, as with one aggregator, has no lag. One INSERT of a mark per
//     store per PollInterval beside other aggregators (alone, per quarter
//     of WriterTimeout), and one read of the writers table per
//     PollInterval.
//   - What it assumes: an INSERT of events lands within half of
//     WriterTimeout of its start, or never (one the client gave up on that
//     the server writes later, as under Erasure and retention, could land
//     behind a cursor); and every aggregator on the database records marks:
//     an aggregator of schema version 2 left running beside one of version
//     3 does not, and reads may pass its rows as before. Upgrade them all
//     together.
//
// The rule registry and the erasure state of an aggregator on ClickHouse
// live in the same database, in tables of their own (registry_*,
// erasure_*, each with its own schema version) that packages registry and
// erasure create and migrate with Connect and Tables (tables.go); every
// aggregator on the database serves the same rule versions and suppresses
// the same subjects (see registry's doc, Storage, and erasure's).
//
// # Cluster
//
// With Options.Cluster (aggregator.store.clickhouse.cluster), the tables
// live on a cluster of the server's remote_servers, whose servers need
// ZooKeeper and the macros shard and replica (scripts/clickhouse-cluster.sh
// writes such a config; `make clickhouse-cluster` runs two replicas of one
// shard on loopback).
//
// Tables. Every DDL statement runs ON CLUSTER, and each table above is two
// on every server: NAME_local, the Replicated variant of its engine
// (ReplicatedMergeTree, ReplicatedSummingMergeTree(events),
// ReplicatedReplacingMergeTree) at ZooKeeper path
// /clickhouse/tables/{shard}/DATABASE/NAME as replica {replica}; and NAME,
// a Distributed table over the NAME_local of every shard, sharded by
// cityHash64(id) for events and duplicates (the copies of an id and its
// record on one shard) and rand() for the others. The store reads and
// writes NAME, so its statements are those of one server. The view is on
// every server, from its events_local to its rollups_local: it counts a
// row once, on the server that takes the INSERT, and replicas fetch the
// rollup rows as they fetch the events (a view never runs for a fetched
// part). ON CLUSTER DDL waits for every server: a database is created, or
// migrated, while all of them answer. A database is of one layout: Open
// refuses one made for the other.
//
// Writes and reads. INSERTs go through the Distributed tables with
// insert_distributed_sync: one returns when the shard's server (this one,
// when it is a replica of the shard) has written the rows, and ZooKeeper
// brings them to the shard's other replicas. Reads go through them too:
// one replica of each shard answers (this server, when it is one and has
// not fallen more than max_replica_delay_for_distributed_queries behind),
// and a subquery over the store's tables is a GLOBAL one (in, notIn). A
// server that has not fetched a part yet answers without its rows: each
// answer is exact for the rows the server it reads holds — one row per id,
// the canonical one among those it has — and Stats is exact once the
// server has both copies of a raced id, their rollups and the record.
//
// Exactly once. The look-ups of Ingest, before and after the INSERT, do
// not read the Distributed table: they read every server's own
// events_local, over a connection to each (the host and port of
// system.clusters, with the DSN's user and options), and count the copies
// found anywhere (cluster.copies). An INSERT that returned has written its
// rows to one server at least, so every later look-up sees them, however
// far replication lags: the rule everything under "Ingest and exactly
// once" rests on holds as on one server, and so does the argument — of two
// INSERTs of one id racing on two servers, whichever looks up second
// finds both copies and records the id in duplicates, and the resend of an
// aggregator that stopped before it could looks on every server too. What
// it costs: each Ingest reads every server twice (ids as external data,
// the primary key; more while it waits for AckReplicas), and ingest needs
// every server of the cluster to answer. While one does not, Ingest fails (the edges keep the batches and
// send them again), as no look-up could tell which copies the missing
// server holds; reads go on while one replica of each shard answers.
// Exact answers without transactions or conditional inserts cost that
// availability; recording the ids checked while a server was away, to
// check them again when it is back, would buy it back and is not done.
//
// Durability. With Options.AckReplicas (aggregator.store.clickhouse.
// ack_replicas) N of 2 or more, Ingest answers only once a copy of every
// event of the call, those stored before included, is on N servers of its
// shard, looking every few milliseconds (awaitReplicas; at most 30 s,
// then an error the edges retry): the events survive the loss of N-1 of
// those servers' disks. The rollups replicate apart and are not waited
// for: a server lost with its disk before a replica fetched its rollup
// rows leaves Stats short by them. This is not ClickHouse's insert_quorum,
// which 18.16 applies to the view's INSERT into rollups as well and which
// it takes for one INSERT into a table at a time: an INSERT of a second
// aggregator is refused after its events are written, losing its rollups.
// A server killed and started again takes its replicas back once its
// ZooKeeper session has expired (session_timeout_ms); until then it is
// read-only, and ingest waits.
//
// Erasure and retention are not carried out on a cluster yet: Erase and
// Expire answer ErrClusterRemoval, and the configuration refuses retention
// with a cluster. (Their mutations would have to run ON CLUSTER on every
// server's own tables, and their claims be read from every server.) The
// rule registry and the erasure state live on the cluster's first server
// (SharedDSN), whichever server an aggregator's DSN names: their tables are
// not replicated, so while that server is down rule changes fail and edges
// keep the versions they run.
//
// The feed (Export) reads through the Distributed table like every read,
// and a server that lags answers without the rows it has not fetched, which
// a cursor may then pass. The marks (writers) replicate apart from the
// events, so a server can hold another aggregator's mark before the rows
// below it: the promise of The feed with several aggregators holds on a
// cluster only where every aggregator's DSN names the same server, a
// replica of the (one) shard, which then takes every INSERT and answers
// every read itself. With aggregators on different servers, or several
// shards, the feed can skip events while replication lags: follow it on a
// single server instead (waiting, before a mark is recorded, until every
// replica holds the rows below it would lift this, and is not done).
// A store starting on a cluster reads the highest seqs and marks of every
// server's own tables; while one does not answer, it is pending (and holds
// every feed back) until it can, as its Ingest fails then anyway.
package clickhouse
