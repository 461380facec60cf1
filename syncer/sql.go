package syncer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"  // driver "pgx"
	_ "github.com/microsoft/go-mssqldb" // driver "sqlserver"
)

// SQLTarget writes events into a database: the events and
// cookie_sync_matches tables, and the cursor in edgetrack_sync_state, each
// batch in one transaction.
type SQLTarget struct {
	db   *sql.DB
	d    *dialect
	feed string // FeedKey
	// cursor is the one this process last read or wrote; a transaction
	// that finds another one in the table stops (another sync runs).
	cursor string
	erased uint64 // the erasure cursor
}

// sqlDSN maps a target URL to its dialect and driver DSN:
//
//	postgres://user:pass@host:5432/db?sslmode=disable  (also postgresql://)
//	mysql://user:pass@host:3306/db                     (MySQL and MariaDB)
//	sqlserver://user:pass@host:1433/instance/db        (instance optional)
func sqlDSN(target string) (*dialect, string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, "", fmt.Errorf("target %q is not a URL: %w", redact(target), err)
	}
	switch u.Scheme {
	case "postgres", "postgresql":
		return postgres, target, nil
	case "mysql":
		c := gomysql.NewConfig()
		c.User = u.User.Username()
		c.Passwd, _ = u.User.Password()
		c.Net, c.Addr = "tcp", u.Host
		if u.Port() == "" {
			c.Addr = u.Host + ":3306"
		}
		c.DBName = strings.TrimPrefix(u.Path, "/")
		c.ParseTime, c.Loc = true, time.UTC
		c.Params = map[string]string{}
		for k, v := range u.Query() {
			c.Params[k] = v[0]
		}
		if c.DBName == "" {
			return nil, "", fmt.Errorf("target %s names no database: mysql://user:pass@host:3306/db", redact(target))
		}
		return mysql, c.FormatDSN(), nil
	case "sqlserver":
		parts := strings.Split(strings.Trim(u.Path, "/"), "/")
		out := *u
		q := out.Query()
		switch len(parts) {
		case 1:
			out.Path = ""
			q.Set("database", parts[0])
		case 2:
			out.Path = "/" + parts[0]
			q.Set("database", parts[1])
		default:
			return nil, "", fmt.Errorf("target %s: want sqlserver://user:pass@host:1433/instance/db", redact(target))
		}
		if q.Get("database") == "" {
			return nil, "", fmt.Errorf("target %s names no database", redact(target))
		}
		out.RawQuery = q.Encode()
		return sqlserver, out.String(), nil
	}
	return nil, "", fmt.Errorf("target %s: unknown scheme %q: use postgres://, mysql://, sqlserver://, http:// or https://", redact(target), u.Scheme)
}

// redact hides a URL's password for messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// OpenSQL connects to the target database, checks the login, and creates or
// migrates the tables. feed names the cursor (see FeedKey).
func OpenSQL(ctx context.Context, target, feed string) (*SQLTarget, error) {
	d, dsn, err := sqlDSN(target)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(d.driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", d.name, redact(target), err)
	}
	db.SetMaxOpenConns(2)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s %s refuses the connection: %w", d.name, redact(target), err)
	}
	t := &SQLTarget{db: db, d: d, feed: feed}
	if err := t.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s %s: creating the tables: %w", d.name, redact(target), err)
	}
	readCursor := strings.Replace(d.lockCursor, " FOR UPDATE", "", 1)
	if err := db.QueryRowContext(ctx, readCursor, feed).Scan(&t.cursor); err != nil && !errors.Is(err, sql.ErrNoRows) {
		db.Close()
		return nil, fmt.Errorf("%s %s: reading the cursor: %w", d.name, redact(target), err)
	}
	var erased string
	if err := db.QueryRowContext(ctx, readCursor, erasureFeed(feed)).Scan(&erased); err != nil && !errors.Is(err, sql.ErrNoRows) {
		db.Close()
		return nil, fmt.Errorf("%s %s: reading the erasure cursor: %w", d.name, redact(target), err)
	}
	if t.erased, err = parseErasureCursor(erased); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s %s: %w", d.name, redact(target), err)
	}
	return t, nil
}

// migrate brings the schema to the newest version, one migration per
// transaction (DDL is transactional on PostgreSQL and SQL Server; on MySQL
// each statement is idempotent instead).
func (t *SQLTarget) migrate(ctx context.Context) error {
	if _, err := t.db.ExecContext(ctx, t.d.createSchemaTable); err != nil {
		return err
	}
	var version int
	if err := t.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM "+schemaTable).Scan(&version); err != nil {
		return err
	}
	if version > len(t.d.migrations) {
		return fmt.Errorf("the schema is at version %d, newer than this edgetrack knows (%d): upgrade edgetrack", version, len(t.d.migrations))
	}
	for v := version; v < len(t.d.migrations); v++ {
		tx, err := t.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for _, stmt := range t.d.migrations[v] {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				tx.Rollback()
				return fmt.Errorf("migration %d: %w", v+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s (version) VALUES (%d)", schemaTable, v+1)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// Cursor is where the feed continues: the one stored with the last batch.
func (t *SQLTarget) Cursor() string { return t.cursor }

// ErrCursorMoved means another sync of the same feed into the same target
// wrote a cursor: two would race, so this one stops.
var ErrCursorMoved = errors.New("another sync of this feed into this target moved the cursor; run one at a time")

// Write stores events and the cursor next after them in one transaction.
func (t *SQLTarget) Write(ctx context.Context, events []Event, next string) error {
	rows := make([]row, 0, len(events))
	var matches []match
	for _, e := range events {
		r, err := toRow(e)
		if err != nil {
			return err
		}
		rows = append(rows, r)
		if m, ok := toMatch(e, r); ok {
			matches = append(matches, m)
		}
	}
	matches = latestMatches(matches)

	write := func(tx batchTx) error {
		stored, err := tx.cursor(ctx, t.d.lockCursor, t.feed)
		if err != nil {
			return fmt.Errorf("reading the cursor: %w", err)
		}
		if stored != t.cursor {
			return ErrCursorMoved
		}
		if err := tx.insertEvents(ctx, t.d, rows); err != nil {
			return err
		}
		per := t.d.maxParams / len(matchCols)
		for ms := matches; len(ms) > 0; {
			n := min(len(ms), per)
			args := make([]any, 0, n*len(matchCols))
			for _, m := range ms[:n] {
				args = append(args, m.partner, m.partnerID, m.uid, m.at)
			}
			if err := tx.exec(ctx, t.d.upsertMatches(n), args...); err != nil {
				return fmt.Errorf("upserting %d cookie-sync matches: %w", n, err)
			}
			ms = ms[n:]
		}
		if err := tx.exec(ctx, t.d.setCursor, t.feed, next, time.Now().UTC()); err != nil {
			return fmt.Errorf("writing the cursor: %w", err)
		}
		return tx.commit(ctx)
	}
	if err := t.d.withTx(ctx, t.db, write); err != nil {
		return err
	}
	t.cursor = next
	return nil
}

// ErasureCursor implements Target.
func (t *SQLTarget) ErasureCursor() uint64 { return t.erased }

// Erase deletes the erased events (and the cookie-sync matches they were)
// and stores the erasure cursor, in one transaction. The cursor is a row of
// edgetrack_sync_state of its own (erasureFeed).
func (t *SQLTarget) Erase(ctx context.Context, e Erasure) error {
	ef := erasureFeed(t.feed)
	write := func(tx batchTx) error {
		stored, err := tx.cursor(ctx, t.d.lockCursor, ef)
		if err != nil {
			return fmt.Errorf("reading the erasure cursor: %w", err)
		}
		if n, err := parseErasureCursor(stored); err != nil || n != t.erased {
			return ErrCursorMoved
		}
		per := t.d.maxParams
		for ids := e.IDs; len(ids) > 0; {
			n := min(len(ids), per)
			args := make([]any, n)
			for i, id := range ids[:n] {
				args[i] = id
			}
			if err := tx.exec(ctx, "DELETE FROM events WHERE event_id IN ("+placeholders(n, t.d.ph)+")", args...); err != nil {
				return fmt.Errorf("deleting %d erased events: %w", n, err)
			}
			ids = ids[n:]
		}
		for _, id := range e.IDs {
			if m, ok := matchOfID(id); ok {
				if err := tx.exec(ctx, "DELETE FROM cookie_sync_matches WHERE partner = "+t.d.ph(1)+" AND partner_id = "+t.d.ph(2)+" AND uid = "+t.d.ph(3),
					m.partner, m.partnerID, m.uid); err != nil {
					return fmt.Errorf("deleting an erased cookie-sync match: %w", err)
				}
			}
		}
		if err := tx.exec(ctx, t.d.setCursor, ef, strconv.FormatUint(e.Seq, 10), time.Now().UTC()); err != nil {
			return fmt.Errorf("writing the erasure cursor: %w", err)
		}
		return tx.commit(ctx)
	}
	if err := t.d.withTx(ctx, t.db, write); err != nil {
		return err
	}
	t.erased = e.Seq
	return nil
}

// Close closes the connections.
func (t *SQLTarget) Close() error { return t.db.Close() }

// Redact hides a URL's password, for messages and logs.
func Redact(s string) string { return redact(s) }
