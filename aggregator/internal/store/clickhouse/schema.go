package clickhouse

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// schemaVersion is the version of the tables this code reads and writes.
const schemaVersion = 3

// migrations[v-1] brings a database from version v-1 to v. Each step is a
// list of statements that can run again after an interrupted migration
// (IF NOT EXISTS; an ADD COLUMN, which 18.16 cannot say IF NOT EXISTS of,
// runs only when the column is missing); the version is recorded after the
// last one. A statement
// is written once for both layouts, one server and a cluster (see ddl). The
// bucket of an event time t of width d is intDiv(t, d) floored for negative
// t, as store.Bucket.Index.
var migrations = [][]ddl{
	{ // 1: events, rollups, duplicates, meta
		table("meta", "key String, value String", "MergeTree", "ORDER BY key", "rand()"),
		table("events", `
			id String, seq UInt64, writer UInt64, event_time Int64,
			session String, category String, name String, body String
		`, "MergeTree", "ORDER BY id", "cityHash64(id)"),
		table("duplicates", "id String", "ReplacingMergeTree", "ORDER BY id", "cityHash64(id)"),
		table("rollups", `
			width UInt8, bucket Int64, category String, name String, events Int64
		`, "SummingMergeTree(events)", "ORDER BY (width, bucket, category, name)", "rand()"),
		// With a cluster the view is on each server's own events table and
		// writes into its own rollups table, which replicates them: it runs
		// once per INSERT, on the server that takes it, never for a part a
		// replica fetches.
		stmt(`CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.rollups_mv{on_cluster} TO {db}.rollups{local} AS
		SELECT width, intDiv(event_time, d) - (event_time % d < 0) AS bucket, category, name, toInt64(count()) AS events
		FROM {db}.events{local}
		ARRAY JOIN [toUInt8(1), toUInt8(2), toUInt8(3)] AS width,
			[toInt64(60000000000), toInt64(3600000000000), toInt64(86400000000000)] AS d
		GROUP BY width, bucket, category, name`),
	},
	{ // 2: the subjects of events, for Erase; lifecycle, for Erase and Expire
		// subjects is 1 when Ingest filled user_id and device_id; rows
		// of version 1 read 0, and Erase reads their bodies.
		alterTable("events", "ADD COLUMN user_id String"),
		alterTable("events", "ADD COLUMN device_id String"),
		alterTable("events", "ADD COLUMN subjects UInt8"),
		table("lifecycle", `
			token String, kind UInt8, canonical UInt8, id String, seq UInt64, writer UInt64,
			event_time Int64, category String, name String, claimed_at DateTime DEFAULT now()
		`, "MergeTree", "ORDER BY (token, kind, seq, writer)", "rand()"),
	},
	{ // 3: writers, the feed's horizon with several aggregators (writers.go)
		table("writers", `
			writer UInt64, mark UInt64, version UInt64, state UInt8, at DateTime DEFAULT now()
		`, "ReplacingMergeTree(version)", "ORDER BY writer", "writer"),
	},
}

// versionTable records the migrations applied; migrate creates it before
// the first.
var versionTable = table("schema_version", "version UInt32, applied_at DateTime", "MergeTree", "ORDER BY version", "rand()")

// A ddl is one statement of a migration, expanded for the store's layout
// by layout.expand:
//
//   - table(name, …) creates a table. On one server it is the table
//     itself. With a cluster it is two tables on every server (ON CLUSTER):
//     name_local, the engine's Replicated variant, whose ZooKeeper path
//     /clickhouse/tables/{shard}/DATABASE/name and replica name {replica}
//     are the server's macros; and name, a Distributed table over the
//     name_local of every shard, which the store reads and writes, sharded
//     by shardBy (rows of one id on one shard).
//   - alterTable(name, change) changes a table declared by table: on one
//     server ALTER TABLE name change; with a cluster the ALTER of
//     name_local ON CLUSTER (one replica of each shard runs it, ZooKeeper
//     replicates it), then the Distributed table made again over the new
//     columns (ClickHouse refuses an ALTER of it ON CLUSTER).
//   - stmt(sql) is any other statement, with {db} for the database,
//     {on_cluster} for " ON CLUSTER name" (nothing on one server) and
//     {local} for "_local" (nothing on one server), to name a server's own
//     table where that is meant (materialized views, mutations).
type ddl struct {
	table                 string // table and alterTable
	columns, engine, keys string // table
	shardBy               string // table
	change                string // alterTable
	sql                   string // stmt
}

func table(name, columns, engine, keys, shardBy string) ddl {
	return ddl{table: name, columns: strings.TrimSpace(columns), engine: engine, keys: keys, shardBy: shardBy}
}

func alterTable(name, change string) ddl { return ddl{table: name, change: change} }

func stmt(sql string) ddl { return ddl{sql: sql} }

// layout is where the store's tables live: one server (cluster "") or the
// servers of a cluster of the server's remote_servers.
type layout struct {
	db, cluster string
}

// expand returns the statements that carry d out.
func (l layout) expand(d ddl) []string {
	switch {
	case d.sql != "":
		return []string{l.fill(d.sql)}
	case d.change == "" && l.cluster == "":
		return []string{l.fill(fmt.Sprintf("CREATE TABLE IF NOT EXISTS {db}.%s (%s) ENGINE = %s %s", d.table, d.columns, d.engine, d.keys))}
	case d.change == "":
		return []string{
			l.fill(fmt.Sprintf("CREATE TABLE IF NOT EXISTS {db}.%s_local{on_cluster} (%s) ENGINE = %s %s",
				d.table, d.columns, l.replicated(d.table, d.engine), d.keys)),
			l.distributed(d.table, d.shardBy),
		}
	case l.cluster == "":
		return []string{l.fill(fmt.Sprintf("ALTER TABLE {db}.%s %s", d.table, d.change))}
	default:
		return []string{
			l.fill(fmt.Sprintf("ALTER TABLE {db}.%s_local{on_cluster} %s", d.table, d.change)),
			l.fill(fmt.Sprintf("DROP TABLE IF EXISTS {db}.%s{on_cluster}", d.table)),
			l.distributed(d.table, shardKey(d.table)),
		}
	}
}

// replicated is the Replicated variant of engine (MergeTree,
// SummingMergeTree(events), …) for the local table of name.
func (l layout) replicated(name, engine string) string {
	kind, args, _ := strings.Cut(strings.TrimSuffix(engine, ")"), "(")
	zk := fmt.Sprintf("'/clickhouse/tables/{shard}/%s/%s', '{replica}'", l.db, name)
	if args != "" {
		zk += ", " + args
	}
	return "Replicated" + kind + "(" + zk + ")"
}

func (l layout) distributed(name, shardBy string) string {
	return l.fill(fmt.Sprintf("CREATE TABLE IF NOT EXISTS {db}.%[1]s{on_cluster} AS {db}.%[1]s_local ENGINE = Distributed(%[2]s, %[3]s, %[1]s_local, %[4]s)",
		name, l.cluster, l.db, shardBy))
}

func (l layout) fill(q string) string {
	onCluster, local := "", ""
	if l.cluster != "" {
		onCluster, local = " ON CLUSTER "+l.cluster, "_local"
	}
	return strings.NewReplacer("{db}", l.db, "{on_cluster}", onCluster, "{local}", local).Replace(q)
}

// shardKey is the sharding key a table was declared with.
func shardKey(name string) string {
	for _, step := range migrations {
		for _, d := range step {
			if d.table == name && d.change == "" {
				return d.shardBy
			}
		}
	}
	panic("clickhouse: no table " + name + " in the migrations")
}

// migrate creates the database and the version table when missing, runs
// the migrations from the recorded version to schemaVersion, and refuses a
// database of a later version or of the other layout. A database at the
// current version gets no DDL: with a cluster, DDL waits for every server,
// and an aggregator must start while one is down.
func (s *Store) migrate(ctx context.Context) error { return s.migrateTo(ctx, schemaVersion) }

// migrateTo is migrate up to version (tests make databases of earlier
// versions with it).
func (s *Store) migrateTo(ctx context.Context, version uint32) error {
	var exists uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = 'schema_version'", s.db).Scan(&exists); err != nil {
		return fmt.Errorf("look for the schema version: %w", err)
	}
	if exists == 0 {
		for _, q := range append([]string{s.layout.fill("CREATE DATABASE IF NOT EXISTS {db}{on_cluster}")}, s.layout.expand(versionTable)...) {
			if err := s.conn.Exec(ctx, q); err != nil {
				return fmt.Errorf("create: %w", err)
			}
		}
	}
	var v uint32
	if err := s.conn.QueryRow(ctx, s.layout.fill("SELECT max(version) FROM {db}.schema_version")).Scan(&v); err != nil {
		return fmt.Errorf("read the schema version: %w", err)
	}
	if err := s.checkLayout(ctx); err != nil {
		return err
	}
	if v > schemaVersion {
		return fmt.Errorf("schema version %d is newer than this edgetrack's (%d): upgrade edgetrack", v, schemaVersion)
	}
	for ; v < version; v++ {
		for _, d := range migrations[v] {
			done, err := s.applied(ctx, d)
			if err != nil {
				return fmt.Errorf("migrate to schema version %d: %w", v+1, err)
			}
			if done {
				continue
			}
			for _, q := range s.layout.expand(d) {
				if err := s.conn.Exec(ctx, q); err != nil {
					return fmt.Errorf("migrate to schema version %d: %w", v+1, err)
				}
			}
		}
		err := s.send(ctx, s.layout.fill("INSERT INTO {db}.schema_version (version, applied_at)"), func(b batch) error {
			return b.Append(v+1, time.Now())
		})
		if err != nil {
			return fmt.Errorf("record schema version %d: %w", v+1, err)
		}
		s.log.Info("store schema migrated", "backend", "clickhouse", "database", s.db, "version", v+1)
	}
	return nil
}

// addColumn matches a change that adds a column, and names the column.
var addColumn = regexp.MustCompile(`^ADD COLUMN (\w+) `)

// applied reports whether d is applied already where that cannot be said
// in it: an ADD COLUMN of a column that exists (on a cluster, in the
// server's own table).
func (s *Store) applied(ctx context.Context, d ddl) (bool, error) {
	m := addColumn.FindStringSubmatch(d.change)
	if m == nil {
		return false, nil
	}
	var n uint64
	err := s.conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?",
		s.db, s.layout.fill(d.table+"{local}"), m[1]).Scan(&n)
	return n > 0, err
}

// checkLayout refuses a database whose tables are of the other layout: one
// created on one server, opened with a cluster (its tables are not
// replicated), or the reverse (its events table is a Distributed one, whose
// inserts are not synchronous without the cluster's settings).
func (s *Store) checkLayout(ctx context.Context) error {
	var engine string
	err := s.conn.QueryRow(ctx, "SELECT engine FROM system.tables WHERE database = ? AND name = 'events'", s.db).Scan(&engine)
	if errors.Is(err, sql.ErrNoRows) { // not created yet: the migration does
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the events table's engine: %w", err)
	}
	switch distributed := engine == "Distributed"; {
	case s.layout.cluster != "" && !distributed:
		return fmt.Errorf("its tables were created on one server (events is a %s table), not on cluster %s: a cluster needs a database of its own", engine, s.layout.cluster)
	case s.layout.cluster == "" && distributed:
		return fmt.Errorf("its tables were created on a cluster: set the cluster (aggregator.store.clickhouse.cluster) to open it")
	}
	return nil
}
