package clickhouse

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Connect opens a connection for a package that keeps tables of its own in
// the database dsn names (as Options.DSN), beside the store's: the rule
// registry and the erasure state. It returns the connection and the
// database, which every statement must name: the connection is made
// without it, since the database may not exist yet. Each query runs with
// one thread (max_threads 1), so that a table of the Log engine is read in
// the order its rows were inserted.
func Connect(ctx context.Context, dsn string) (driver.Conn, string, error) {
	opts, db, err := ParseDSN(dsn)
	if err != nil {
		return nil, "", fmt.Errorf("dsn: %w", err)
	}
	opts.Auth.Database = "default"
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.Settings == nil {
		opts.Settings = ch.Settings{}
	}
	opts.Settings["max_threads"] = 1
	conn, err := ch.Open(opts)
	if err == nil {
		err = conn.Ping(ctx)
		if err != nil {
			conn.Close()
		}
	}
	if err != nil {
		return nil, "", fmt.Errorf("connect to %s: %w", strings.Join(opts.Addr, ","), err)
	}
	return conn, db, nil
}

// SharedDSN is the DSN the aggregators' shared state (the rule registry, the
// erasure state) uses: dsn itself on one server; with a cluster, dsn with
// its address replaced by the cluster's first server (the first replica of
// the first shard in system.clusters), so that every aggregator on the
// cluster, whichever of its servers its own DSN names, reads and writes the
// same tables. Those are Log and MergeTree tables of that server, not
// replicated: while it is down, rule changes and erasures fail (ingest and
// queries go on through the store's cluster layout).
func SharedDSN(ctx context.Context, dsn, cluster string) (string, error) {
	if cluster == "" {
		return dsn, nil
	}
	conn, _, err := Connect(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	var host string
	var port uint16
	if err := conn.QueryRow(ctx, "SELECT host_address, port FROM system.clusters WHERE cluster = ? ORDER BY shard_num, replica_num LIMIT 1", cluster).Scan(&host, &port); err != nil {
		return "", fmt.Errorf("the first server of cluster %s: %w", cluster, err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("dsn: %w", err)
	}
	u.Host = net.JoinHostPort(host, strconv.Itoa(int(port)))
	return u.String(), nil
}

// Tables are a package's own versioned tables in the database, migrated as
// the store migrates its own (see the package doc) with a version table of
// their own, <Name>_schema_version.
type Tables struct {
	Name string // the prefix of the tables, and what the log and errors call them
	// Migrations[v-1] brings the tables from version v-1 to v. Each
	// statement can run again after an interrupted migration; the version
	// is recorded after the last. {db} stands for the database.
	Migrations [][]string
}

// Open connects to the server dsn names (Connect) and creates or migrates
// the tables in its database (Migrate).
func (t Tables) Open(ctx context.Context, dsn string, log *slog.Logger) (driver.Conn, string, error) {
	conn, db, err := Connect(ctx, dsn)
	if err != nil {
		return nil, "", err
	}
	if err := t.Migrate(ctx, conn, db, log); err != nil {
		conn.Close()
		return nil, "", fmt.Errorf("database %s: %w", db, err)
	}
	return conn, db, nil
}

// Expand puts db in place of {db} in q.
func Expand(q, db string) string { return strings.ReplaceAll(q, "{db}", db) }

// Migrate creates the database and the version table when missing, runs
// the migrations from the recorded version to the last, and refuses tables
// of a later version.
func (t Tables) Migrate(ctx context.Context, conn driver.Conn, db string, log *slog.Logger) error {
	vt := t.Name + "_schema_version"
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS {db}",
		"CREATE TABLE IF NOT EXISTS {db}." + vt + " (version UInt32, applied_at DateTime) ENGINE = MergeTree ORDER BY version",
	} {
		if err := conn.Exec(ctx, Expand(q, db)); err != nil {
			return fmt.Errorf("create: %w", err)
		}
	}
	last := uint32(len(t.Migrations))
	var v uint32
	if err := conn.QueryRow(ctx, "SELECT max(version) FROM "+db+"."+vt).Scan(&v); err != nil {
		return fmt.Errorf("read the %s schema version: %w", t.Name, err)
	}
	if v > last {
		return fmt.Errorf("the %s schema version %d is newer than this edgetrack's (%d): upgrade edgetrack", t.Name, v, last)
	}
	for ; v < last; v++ {
		for _, q := range t.Migrations[v] {
			if err := conn.Exec(ctx, Expand(q, db)); err != nil {
				return fmt.Errorf("migrate the %s tables to schema version %d: %w", t.Name, v+1, err)
			}
		}
		if err := InsertRow(ctx, conn, db+"."+vt+" (version, applied_at)", v+1, time.Now()); err != nil {
			return fmt.Errorf("record the %s schema version %d: %w", t.Name, v+1, err)
		}
		log.Info("schema migrated", "tables", t.Name, "database", db, "version", v+1)
	}
	return nil
}

// InsertRow sends one row to table, given as "db.name (columns)": a batch
// of one, since an INSERT with inline VALUES must not be sent.
func InsertRow(ctx context.Context, conn driver.Conn, table string, values ...any) error {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+table)
	if err != nil {
		return err
	}
	if err := b.Append(values...); err != nil {
		b.Abort()
		return err
	}
	return b.Send()
}

// Follow calls poll every interval until ctx ends: how a package follows
// the tables other aggregators write to. A failing poll is logged once
// ("reading <what> failed"), until one succeeds again.
func Follow(ctx context.Context, interval time.Duration, log *slog.Logger, what string, poll func(context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := poll(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil && !failing:
			log.Error("reading "+what+" failed; retrying", "error", err)
		case err == nil && failing:
			log.Info("reading " + what + " works again")
		}
		failing = err != nil
	}
}
