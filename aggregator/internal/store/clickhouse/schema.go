package clickhouse

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// schemaVersion is the version of the tables this code reads and writes.
const schemaVersion = 2

// migrations[v-1] brings a database from version v-1 to v. Each step is a
// list of statements that can run again after an interrupted migration
// (IF NOT EXISTS; an ALTER TABLE … ADD COLUMN, which 18.16 cannot say IF
// NOT EXISTS of, runs only when the column is missing); the version is
// recorded after the last one. {db} stands for the database. The bucket of an event time t of width d is
// intDiv(t, d) floored for negative t, as store.Bucket.Index.
var migrations = [][]string{
	{ // 1: events, rollups, duplicates, meta
		`CREATE TABLE IF NOT EXISTS {db}.meta (key String, value String) ENGINE = MergeTree ORDER BY key`,
		`CREATE TABLE IF NOT EXISTS {db}.events (
			id String, seq UInt64, writer UInt64, event_time Int64,
			session String, category String, name String, body String
		) ENGINE = MergeTree ORDER BY id`,
		`CREATE TABLE IF NOT EXISTS {db}.duplicates (id String) ENGINE = ReplacingMergeTree ORDER BY id`,
		`CREATE TABLE IF NOT EXISTS {db}.rollups (
			width UInt8, bucket Int64, category String, name String, events Int64
		) ENGINE = SummingMergeTree(events) ORDER BY (width, bucket, category, name)`,
		`CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.rollups_mv TO {db}.rollups AS
		SELECT width, intDiv(event_time, d) - (event_time % d < 0) AS bucket, category, name, toInt64(count()) AS events
		FROM {db}.events
		ARRAY JOIN [toUInt8(1), toUInt8(2), toUInt8(3)] AS width,
			[toInt64(60000000000), toInt64(3600000000000), toInt64(86400000000000)] AS d
		GROUP BY width, bucket, category, name`,
	},
	{ // 2: the subjects of events, for Erase; lifecycle, for Erase and Expire
		// subjects is 1 when Ingest filled user_id and device_id; rows
		// of version 1 read 0, and Erase reads their bodies.
		`ALTER TABLE {db}.events ADD COLUMN user_id String`,
		`ALTER TABLE {db}.events ADD COLUMN device_id String`,
		`ALTER TABLE {db}.events ADD COLUMN subjects UInt8`,
		`CREATE TABLE IF NOT EXISTS {db}.lifecycle (
			token String, kind UInt8, canonical UInt8, id String, seq UInt64, writer UInt64,
			event_time Int64, category String, name String, claimed_at DateTime DEFAULT now()
		) ENGINE = MergeTree ORDER BY (token, kind, seq, writer)`,
	},
}

// addColumn matches a statement that adds a column: its table and column.
var addColumn = regexp.MustCompile(`^ALTER TABLE \{db\}\.(\w+)\b.*\bADD COLUMN (\w+) `)

// applied reports whether statement q of a migration is applied already
// where that cannot be said in it: an ADD COLUMN of a column that exists.
func (s *Store) applied(ctx context.Context, q string) (bool, error) {
	m := addColumn.FindStringSubmatch(q)
	if m == nil {
		return false, nil
	}
	var n uint64
	err := s.conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?", s.db, m[1], m[2]).Scan(&n)
	return n > 0, err
}

// migrate creates the database and the version table when missing, runs
// the migrations from the recorded version to schemaVersion, and refuses a
// database of a later version.
func (s *Store) migrate(ctx context.Context) error { return s.migrateTo(ctx, schemaVersion) }

// migrateTo is migrate up to version (tests make databases of earlier
// versions with it).
func (s *Store) migrateTo(ctx context.Context, version uint32) error {
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS {db}",
		"CREATE TABLE IF NOT EXISTS {db}.schema_version (version UInt32, applied_at DateTime) ENGINE = MergeTree ORDER BY version",
	} {
		if err := s.conn.Exec(ctx, s.expand(q)); err != nil {
			return fmt.Errorf("create: %w", err)
		}
	}
	var v uint32
	if err := s.conn.QueryRow(ctx, s.expand("SELECT max(version) FROM {db}.schema_version")).Scan(&v); err != nil {
		return fmt.Errorf("read the schema version: %w", err)
	}
	if v > version {
		return fmt.Errorf("schema version %d is newer than this edgetrack's (%d): upgrade edgetrack", v, version)
	}
	for ; v < version; v++ {
		for _, q := range migrations[v] {
			done, err := s.applied(ctx, q)
			if err != nil {
				return fmt.Errorf("migrate to schema version %d: %w", v+1, err)
			}
			if done {
				continue
			}
			if err := s.conn.Exec(ctx, s.expand(q)); err != nil {
				return fmt.Errorf("migrate to schema version %d: %w", v+1, err)
			}
		}
		b, err := s.conn.PrepareBatch(ctx, s.expand("INSERT INTO {db}.schema_version (version, applied_at)"))
		if err != nil {
			return fmt.Errorf("record schema version %d: %w", v+1, err)
		}
		if err := b.Append(v+1, time.Now()); err != nil {
			return fmt.Errorf("record schema version %d: %w", v+1, err)
		}
		if err := b.Send(); err != nil {
			return fmt.Errorf("record schema version %d: %w", v+1, err)
		}
		s.log.Info("store schema migrated", "backend", "clickhouse", "database", s.db, "version", v+1)
	}
	return nil
}

func (s *Store) expand(q string) string { return strings.ReplaceAll(q, "{db}", s.db) }
