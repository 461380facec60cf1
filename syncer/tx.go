package syncer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// batchTx is the transaction one batch is written in: database/sql's for
// MySQL and SQL Server, pgx's own for PostgreSQL, whose COPY database/sql
// cannot reach.
type batchTx interface {
	exec(ctx context.Context, q string, args ...any) error
	// cursor runs q (the dialect's lockCursor) for feed: "" when there is none.
	cursor(ctx context.Context, q, feed string) (string, error)
	// insertEvents inserts the rows, leaving events already stored alone.
	insertEvents(ctx context.Context, d *dialect, rows []row) error
	commit(ctx context.Context) error
}

// withSQLTx runs write in a database/sql transaction, rolled back unless
// write commits it.
func withSQLTx(ctx context.Context, db *sql.DB, write func(batchTx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return write(sqlTx{tx})
}

type sqlTx struct{ tx *sql.Tx }

func (t sqlTx) exec(ctx context.Context, q string, args ...any) error {
	_, err := t.tx.ExecContext(ctx, q, args...)
	return err
}

func (t sqlTx) cursor(ctx context.Context, q, feed string) (string, error) {
	var c string
	if err := t.tx.QueryRowContext(ctx, q, feed).Scan(&c); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	return c, nil
}

// insertEvents sends multi-row INSERTs of as many rows as the dialect's
// parameter limit allows.
func (t sqlTx) insertEvents(ctx context.Context, d *dialect, rows []row) error {
	per := d.maxParams / len(eventCols)
	for len(rows) > 0 {
		n := min(len(rows), per)
		args := make([]any, 0, n*len(eventCols))
		for _, r := range rows[:n] {
			args = append(args, r.args()...)
		}
		if err := t.exec(ctx, d.insertEvents(n), args...); err != nil {
			return fmt.Errorf("inserting %d events: %w", n, err)
		}
		rows = rows[n:]
	}
	return nil
}

func (t sqlTx) commit(context.Context) error { return t.tx.Commit() }

// withPgxTx runs write in a pgx transaction on one of db's connections.
func withPgxTx(ctx context.Context, db *sql.DB, write func(batchTx) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		tx, err := dc.(*stdlib.Conn).Conn().Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		return write(pgxTx{tx})
	})
}

type pgxTx struct{ tx pgx.Tx }

func (t pgxTx) exec(ctx context.Context, q string, args ...any) error {
	_, err := t.tx.Exec(ctx, q, args...)
	return err
}

func (t pgxTx) cursor(ctx context.Context, q, feed string) (string, error) {
	var c string
	if err := t.tx.QueryRow(ctx, q, feed).Scan(&c); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return "", err
	}
	return c, nil
}

// insertEvents COPYs the rows into events, inside a savepoint. The cursor
// in the same transaction keeps a feed from sending an event twice, so that
// is nearly always all; when a row is there already (another feed, or a
// cursor reset, wrote it) COPY fails as a whole, and the rows go through a
// staging table and INSERT … ON CONFLICT DO NOTHING instead. Plain COPY is
// the fast path: see BenchmarkSync in bench/results.
func (t pgxTx) insertEvents(ctx context.Context, _ *dialect, rows []row) error {
	src := func() pgx.CopyFromSource {
		return pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) { return rows[i].args(), nil })
	}
	sp, err := t.tx.Begin(ctx)
	if err != nil {
		return err
	}
	_, err = sp.CopyFrom(ctx, pgx.Identifier{"events"}, eventCols, src())
	if err == nil {
		return sp.Commit(ctx)
	}
	var pe *pgconn.PgError
	if rerr := sp.Rollback(ctx); rerr != nil || !errors.As(err, &pe) || pe.Code != pgerrcode.UniqueViolation {
		return fmt.Errorf("copying %d events: %w", len(rows), err)
	}
	const staging = "edgetrack_sync_staging"
	if err := t.exec(ctx, "CREATE TEMPORARY TABLE IF NOT EXISTS "+staging+
		" (LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"); err != nil {
		return fmt.Errorf("creating the staging table: %w", err)
	}
	if _, err := t.tx.CopyFrom(ctx, pgx.Identifier{staging}, eventCols, src()); err != nil {
		return fmt.Errorf("copying %d events: %w", len(rows), err)
	}
	if err := t.exec(ctx, "INSERT INTO events ("+cols(eventCols)+") SELECT "+cols(eventCols)+" FROM "+staging+
		" ON CONFLICT (event_id) DO NOTHING"); err != nil {
		return fmt.Errorf("inserting %d events: %w", len(rows), err)
	}
	return nil
}

func (t pgxTx) commit(ctx context.Context) error { return t.tx.Commit(ctx) }
