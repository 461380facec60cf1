package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// schemaVersion is the version of the tables this code reads and writes.
const schemaVersion = 1

// migrations[v-1] brings a database from version v-1 to v. Each step is a
// list of statements that can run again after an interrupted migration
// (IF NOT EXISTS); the version is recorded after the last one. {db} stands
// for the database. The bucket of an event time t of width d is
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
}

// migrate creates the database and the version table when missing, runs
// the migrations from the recorded version to schemaVersion, and refuses a
// database of a later version.
func (s *Store) migrate(ctx context.Context) error {
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
	if v > schemaVersion {
		return fmt.Errorf("schema version %d is newer than this edgetrack's (%d): upgrade edgetrack", v, schemaVersion)
	}
	for ; v < schemaVersion; v++ {
		for _, q := range migrations[v] {
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
