package syncer

import (
	"context"
	"database/sql"
	"strings"
)

// dialect is what differs between the SQL targets.
type dialect struct {
	name   string // as in messages: PostgreSQL, MySQL/MariaDB, SQL Server
	driver string // database/sql driver name
	ph     func(i int) string
	// maxParams bounds the placeholders of one statement.
	maxParams int
	// migrations, in order: migration i brings the schema to version i+1.
	migrations [][]string
	// schemaVersion reads the version (no rows: 0); createSchemaTable makes
	// the table holding it.
	createSchemaTable string
	// insertEvents inserts n rows of eventCols, leaving stored ones alone
	// (sqlTx; PostgreSQL COPYs them instead).
	insertEvents func(n int) string
	// withTx runs a batch's write in a transaction: withSQLTx, or for
	// PostgreSQL withPgxTx, whose transaction COPYs the events.
	withTx func(ctx context.Context, db *sql.DB, write func(batchTx) error) error
	// upsertMatches inserts or updates n rows of matchCols, keeping the
	// latest match per partner and partner id.
	upsertMatches func(n int) string
	// lockCursor reads a feed's cursor, locking its row for the transaction.
	lockCursor string
	// setCursor upserts a feed's cursor (feed, cursor, updated_at).
	setCursor string
}

var eventCols = []string{"event_id", "session_id", "category", "name", "event_time", "received_at", "source", "edge_id", "ip", "user_id", "data"}

var matchCols = []string{"partner", "partner_id", "uid", "matched_at"}

const schemaTable = "edgetrack_sync_schema"

func cols(c []string) string { return strings.Join(c, ", ") }

func prefixed(p string, c []string) string {
	out := make([]string, len(c))
	for i, x := range c {
		out[i] = p + x
	}
	return strings.Join(out, ", ")
}

var postgres = &dialect{
	name: "PostgreSQL", driver: "pgx", ph: dollar, maxParams: 65535, withTx: withPgxTx,
	createSchemaTable: `CREATE TABLE IF NOT EXISTS edgetrack_sync_schema (version INTEGER NOT NULL)`,
	migrations: [][]string{{
		`CREATE TABLE IF NOT EXISTS events (
			event_id TEXT PRIMARY KEY,
			session_id TEXT NOT NULL,
			category TEXT NOT NULL,
			name TEXT NOT NULL,
			event_time TIMESTAMPTZ NOT NULL,
			received_at TIMESTAMPTZ NOT NULL,
			source TEXT NOT NULL,
			edge_id TEXT NOT NULL,
			ip TEXT NOT NULL,
			user_id TEXT,
			data JSONB)`,
		`CREATE INDEX IF NOT EXISTS events_session ON events (session_id, event_time)`,
		`CREATE INDEX IF NOT EXISTS events_category_name ON events (category, name, event_time)`,
		`CREATE INDEX IF NOT EXISTS events_time ON events (event_time)`,
		`CREATE TABLE IF NOT EXISTS cookie_sync_matches (
			partner TEXT NOT NULL,
			partner_id TEXT NOT NULL,
			uid TEXT NOT NULL,
			matched_at TIMESTAMPTZ NOT NULL,
			PRIMARY KEY (partner, partner_id))`,
		`CREATE INDEX IF NOT EXISTS cookie_sync_matches_uid ON cookie_sync_matches (uid)`,
		`CREATE TABLE IF NOT EXISTS edgetrack_sync_state (
			feed TEXT PRIMARY KEY,
			feed_cursor TEXT NOT NULL,
			updated_at TIMESTAMPTZ NOT NULL)`,
	}},
	upsertMatches: func(n int) string {
		return "INSERT INTO cookie_sync_matches (" + cols(matchCols) + ") VALUES " + placeholderList(n, len(matchCols), dollar) +
			" ON CONFLICT (partner, partner_id) DO UPDATE SET uid = EXCLUDED.uid, matched_at = EXCLUDED.matched_at" +
			" WHERE cookie_sync_matches.matched_at <= EXCLUDED.matched_at"
	},
	lockCursor: `SELECT feed_cursor FROM edgetrack_sync_state WHERE feed = $1 FOR UPDATE`,
	setCursor: `INSERT INTO edgetrack_sync_state (feed, feed_cursor, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (feed) DO UPDATE SET feed_cursor = EXCLUDED.feed_cursor, updated_at = EXCLUDED.updated_at`,
}

// MySQL and MariaDB: ids and filter values are compared bytewise
// (utf8mb4_bin), as the aggregator does; the event store's values are at
// most 256 bytes, which VARCHAR(300) holds. Indexes are declared in CREATE
// TABLE, which both accept (MySQL has no CREATE INDEX IF NOT EXISTS).
var mysql = &dialect{
	name: "MySQL/MariaDB", driver: "mysql", ph: question, maxParams: 65535, withTx: withSQLTx,
	createSchemaTable: `CREATE TABLE IF NOT EXISTS edgetrack_sync_schema (version INT NOT NULL)`,
	migrations: [][]string{{
		`CREATE TABLE IF NOT EXISTS events (
			event_id VARCHAR(300) NOT NULL PRIMARY KEY,
			session_id VARCHAR(300) NOT NULL,
			category VARCHAR(300) NOT NULL,
			name VARCHAR(300) NOT NULL,
			event_time DATETIME(6) NOT NULL,
			received_at DATETIME(6) NOT NULL,
			source VARCHAR(32) NOT NULL,
			edge_id VARCHAR(300) NOT NULL,
			ip VARCHAR(64) NOT NULL,
			user_id VARCHAR(300) NULL,
			data JSON NULL,
			INDEX events_session (session_id, event_time),
			INDEX events_category_name (category, name, event_time),
			INDEX events_time (event_time)
		) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
		`CREATE TABLE IF NOT EXISTS cookie_sync_matches (
			partner VARCHAR(300) NOT NULL,
			partner_id VARCHAR(300) NOT NULL,
			uid VARCHAR(300) NOT NULL,
			matched_at DATETIME(6) NOT NULL,
			PRIMARY KEY (partner, partner_id),
			INDEX cookie_sync_matches_uid (uid)
		) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
		`CREATE TABLE IF NOT EXISTS edgetrack_sync_state (
			feed VARCHAR(64) NOT NULL PRIMARY KEY,
			feed_cursor VARCHAR(200) NOT NULL,
			updated_at DATETIME(6) NOT NULL
		) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`,
	}},
	insertEvents: func(n int) string {
		return "INSERT INTO events (" + cols(eventCols) + ") VALUES " + placeholderList(n, len(eventCols), question) +
			" ON DUPLICATE KEY UPDATE event_id = event_id"
	},
	// uid is assigned before matched_at: MySQL evaluates SET left to right,
	// so the comparison sees the stored time.
	upsertMatches: func(n int) string {
		return "INSERT INTO cookie_sync_matches (" + cols(matchCols) + ") VALUES " + placeholderList(n, len(matchCols), question) +
			" ON DUPLICATE KEY UPDATE uid = IF(VALUES(matched_at) >= matched_at, VALUES(uid), uid)," +
			" matched_at = GREATEST(matched_at, VALUES(matched_at))"
	},
	lockCursor: `SELECT feed_cursor FROM edgetrack_sync_state WHERE feed = ? FOR UPDATE`,
	setCursor: `INSERT INTO edgetrack_sync_state (feed, feed_cursor, updated_at) VALUES (?, ?, ?)
		ON DUPLICATE KEY UPDATE feed_cursor = VALUES(feed_cursor), updated_at = VALUES(updated_at)`,
}

// SQL Server: MERGE for upserts; at most 2,100 parameters per statement. Not
// run against a server on our machines (see the README).
var sqlserver = &dialect{
	name: "SQL Server", driver: "sqlserver", ph: atP, maxParams: 2000, withTx: withSQLTx,
	createSchemaTable: `IF OBJECT_ID(N'edgetrack_sync_schema', N'U') IS NULL CREATE TABLE edgetrack_sync_schema (version INT NOT NULL)`,
	migrations: [][]string{{
		`IF OBJECT_ID(N'events', N'U') IS NULL CREATE TABLE events (
			event_id NVARCHAR(300) COLLATE Latin1_General_100_BIN2 NOT NULL PRIMARY KEY,
			session_id NVARCHAR(300) COLLATE Latin1_General_100_BIN2 NOT NULL,
			category NVARCHAR(300) COLLATE Latin1_General_100_BIN2 NOT NULL,
			name NVARCHAR(300) COLLATE Latin1_General_100_BIN2 NOT NULL,
			event_time DATETIME2(6) NOT NULL,
			received_at DATETIME2(6) NOT NULL,
			source NVARCHAR(32) NOT NULL,
			edge_id NVARCHAR(300) NOT NULL,
			ip NVARCHAR(64) NOT NULL,
			user_id NVARCHAR(300) NULL,
			data NVARCHAR(MAX) NULL,
			INDEX events_session (session_id, event_time),
			INDEX events_category_name (category, name, event_time),
			INDEX events_time (event_time))`,
		`IF OBJECT_ID(N'cookie_sync_matches', N'U') IS NULL CREATE TABLE cookie_sync_matches (
			partner NVARCHAR(300) COLLATE Latin1_General_100_BIN2 NOT NULL,
			partner_id NVARCHAR(300) COLLATE Latin1_General_100_BIN2 NOT NULL,
			uid NVARCHAR(300) COLLATE Latin1_General_100_BIN2 NOT NULL,
			matched_at DATETIME2(6) NOT NULL,
			PRIMARY KEY (partner, partner_id),
			INDEX cookie_sync_matches_uid (uid))`,
		`IF OBJECT_ID(N'edgetrack_sync_state', N'U') IS NULL CREATE TABLE edgetrack_sync_state (
			feed NVARCHAR(64) NOT NULL PRIMARY KEY,
			feed_cursor NVARCHAR(200) NOT NULL,
			updated_at DATETIME2(6) NOT NULL)`,
	}},
	insertEvents: func(n int) string {
		return "MERGE INTO events WITH (HOLDLOCK) AS t USING (VALUES " + placeholderList(n, len(eventCols), atP) +
			") AS s (" + cols(eventCols) + ") ON t.event_id = s.event_id" +
			" WHEN NOT MATCHED THEN INSERT (" + cols(eventCols) + ") VALUES (" + prefixed("s.", eventCols) + ");"
	},
	upsertMatches: func(n int) string {
		return "MERGE INTO cookie_sync_matches WITH (HOLDLOCK) AS t USING (VALUES " + placeholderList(n, len(matchCols), atP) +
			") AS s (" + cols(matchCols) + ") ON t.partner = s.partner AND t.partner_id = s.partner_id" +
			" WHEN MATCHED AND t.matched_at <= s.matched_at THEN UPDATE SET uid = s.uid, matched_at = s.matched_at" +
			" WHEN NOT MATCHED THEN INSERT (" + cols(matchCols) + ") VALUES (" + prefixed("s.", matchCols) + ");"
	},
	lockCursor: `SELECT feed_cursor FROM edgetrack_sync_state WITH (UPDLOCK, HOLDLOCK) WHERE feed = @p1`,
	setCursor: `MERGE INTO edgetrack_sync_state WITH (HOLDLOCK) AS t USING (VALUES (@p1, @p2, @p3)) AS s (feed, feed_cursor, updated_at)
		ON t.feed = s.feed
		WHEN MATCHED THEN UPDATE SET feed_cursor = s.feed_cursor, updated_at = s.updated_at
		WHEN NOT MATCHED THEN INSERT (feed, feed_cursor, updated_at) VALUES (s.feed, s.feed_cursor, s.updated_at);`,
}
