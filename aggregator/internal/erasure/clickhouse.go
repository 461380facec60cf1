package erasure

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/edgetrack/edgetrack/aggregator/internal/store/clickhouse"
)

// chStorage keeps the erasure state in tables of the ClickHouse database
// the store uses, which several aggregators share (the package doc's
// Storage section). It owns its tables and their schema version.
//
// The audit log is a table of the Log engine, read with one thread: its
// rows keep the order they were inserted in, the same for every reader
// (as the rule registry's log, aggregator/internal/registry). A suppress
// record's seq is its rank among the suppress rows, so every aggregator
// numbers the erasures alike without agreeing on anything first: a writer
// inserts its row under a random id and reads the log on to find it. An
// erase record carries the seq its writer found.
type chStorage struct {
	conn driver.Conn
	db   string // validated by clickhouse.ParseDSN
	log  *slog.Logger
	id   string // this process, in erasure_acks

	// Under Erasures.followMu (or in load):
	pos int64  // rows of erasure_log read
	seq uint64 // suppress rows among them
}

var _ storage = (*chStorage)(nil)

// chTables are the erasure state's tables, with their version in
// erasure_schema_version.
var chTables = clickhouse.Tables{Name: "erasure", Migrations: [][]string{
	{ // 1: the audit log, the tombstones, the aggregators' acknowledgements
		`CREATE TABLE IF NOT EXISTS {db}.erasure_log (
			id String, time DateTime, action String, kind String, subject String, record String
		) ENGINE = Log`,
		`CREATE TABLE IF NOT EXISTS {db}.erasure_tombstones (
			seq UInt64, time DateTime, ids Array(String)
		) ENGINE = MergeTree ORDER BY seq`,
		`CREATE TABLE IF NOT EXISTS {db}.erasure_acks (
			aggregator String, seen UInt64, at Int64
		) ENGINE = ReplacingMergeTree(at) ORDER BY aggregator`,
	},
}}

// gone is the seen an aggregator acknowledges when it closes: it holds up
// no erasure.
const gone = math.MaxUint64

// openClickHouse connects to the server dsn names and creates or migrates
// the erasure tables in its database.
func openClickHouse(ctx context.Context, dsn string, log *slog.Logger) (*chStorage, error) {
	conn, db, err := chTables.Open(ctx, dsn, log)
	if err != nil {
		return nil, fmt.Errorf("erasure: clickhouse: %w", err)
	}
	return &chStorage{conn: conn, db: db, log: log, id: randomID()}, nil
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

func (s *chStorage) insert(ctx context.Context, table string, values ...any) error {
	return clickhouse.InsertRow(ctx, s.conn, s.db+"."+table, values...)
}

func (s *chStorage) load(ctx context.Context) ([]Record, error) {
	recs, _, err := s.rows(ctx)
	return recs, err
}

// rows reads the log's rows after the last read, numbering the suppress
// records, and returns them with their ids.
func (s *chStorage) rows(ctx context.Context) ([]Record, []string, error) {
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM "+s.db+".erasure_log").Scan(&n); err != nil {
		return nil, nil, fmt.Errorf("erasure: clickhouse: read the audit log: %w", err)
	}
	if int64(n) <= s.pos {
		return nil, nil, nil
	}
	rows, err := s.conn.Query(ctx, fmt.Sprintf("SELECT id, record FROM %s.erasure_log LIMIT %d, %d", s.db, s.pos, int64(1)<<62))
	if err != nil {
		return nil, nil, fmt.Errorf("erasure: clickhouse: read the audit log: %w", err)
	}
	defer rows.Close()
	var (
		recs []Record
		ids  []string
	)
	pos, seq := s.pos, s.seq
	for rows.Next() {
		var id, rec string
		if err := rows.Scan(&id, &rec); err != nil {
			return nil, nil, fmt.Errorf("erasure: clickhouse: read the audit log: %w", err)
		}
		var r Record
		if err := json.Unmarshal([]byte(rec), &r); err != nil {
			return nil, nil, fmt.Errorf("erasure: clickhouse: the audit log's row %d: %w", pos, err)
		}
		if r.Action == ActionSuppress {
			seq++
			r.Seq = seq
		}
		recs, ids = append(recs, r), append(ids, id)
		pos++
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("erasure: clickhouse: read the audit log: %w", err)
	}
	s.pos, s.seq = pos, seq
	return recs, ids, nil
}

// appendRow inserts r under a fresh id and returns the id.
func (s *chStorage) appendRow(ctx context.Context, r Record) (string, error) {
	id := randomID()
	rec, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("erasure: encoding an audit record: %w", err)
	}
	if err := s.insert(ctx, "erasure_log (id, time, action, kind, subject, record)", id, r.Time, r.Action, string(r.Kind), r.Subject, string(rec)); err != nil {
		return "", fmt.Errorf("erasure: clickhouse: append to the audit log: %w", err)
	}
	return id, nil
}

func (s *chStorage) suppress(ctx context.Context, r Record, _ uint64) (uint64, []Record, error) {
	r.Seq = 0 // its rank, as read back
	id, err := s.appendRow(ctx, r)
	if err != nil {
		return 0, nil, err
	}
	recs, ids, err := s.rows(ctx)
	if err != nil {
		return 0, nil, err
	}
	for i, got := range ids {
		if got == id {
			return recs[i].Seq, recs, nil
		}
	}
	return 0, recs, fmt.Errorf("erasure: clickhouse: the suppress record %s is not in the audit log after its INSERT", id)
}

func (s *chStorage) append(ctx context.Context, r Record) error {
	_, err := s.appendRow(ctx, r)
	return err
}

func (s *chStorage) read(ctx context.Context) ([]Record, error) {
	recs, _, err := s.rows(ctx)
	return recs, err
}

func (s *chStorage) writeTombstone(ctx context.Context, t Tombstone) error {
	if err := s.insert(ctx, "erasure_tombstones (seq, time, ids)", t.Seq, t.Time, t.IDs); err != nil {
		return fmt.Errorf("erasure: clickhouse: tombstone %d: %w", t.Seq, err)
	}
	return nil
}

func (s *chStorage) tombstones(ctx context.Context, after uint64, limit int) ([]Tombstone, error) {
	rows, err := s.conn.Query(ctx, "SELECT seq, time, ids FROM "+s.db+".erasure_tombstones WHERE seq > ? ORDER BY seq LIMIT 1 BY seq LIMIT ?", after, limit)
	if err != nil {
		return nil, fmt.Errorf("erasure: clickhouse: read tombstones: %w", err)
	}
	defer rows.Close()
	var out []Tombstone
	for rows.Next() {
		var t Tombstone
		if err := rows.Scan(&t.Seq, &t.Time, &t.IDs); err != nil {
			return nil, fmt.Errorf("erasure: clickhouse: read tombstones: %w", err)
		}
		t.Time = t.Time.UTC()
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("erasure: clickhouse: read tombstones: %w", err)
	}
	return out, nil
}

// removeTombstones deletes the old tombstones that are there (an ALTER …
// DELETE, which the server carries out in the background: readers are
// kept from them by Erasures.goneBefore at once). Several aggregators may
// do it at once; the mutation is idempotent.
func (s *chStorage) removeTombstones(ctx context.Context, old map[uint64]time.Time) ([]uint64, error) {
	if len(old) == 0 {
		return nil, nil
	}
	seqs := make([]uint64, 0, len(old))
	for n := range old {
		seqs = append(seqs, n)
	}
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT seq FROM "+s.db+".erasure_tombstones WHERE has(?, seq) ORDER BY seq", seqs)
	if err != nil {
		return nil, fmt.Errorf("erasure: clickhouse: read tombstones: %w", err)
	}
	defer rows.Close()
	var there []uint64
	for rows.Next() {
		var n uint64
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("erasure: clickhouse: read tombstones: %w", err)
		}
		there = append(there, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("erasure: clickhouse: read tombstones: %w", err)
	}
	if len(there) == 0 {
		return nil, nil
	}
	if err := s.conn.Exec(ctx, "ALTER TABLE "+s.db+".erasure_tombstones DELETE WHERE has(?, seq)", there); err != nil {
		return nil, fmt.Errorf("erasure: clickhouse: remove tombstones: %w", err)
	}
	return there, nil
}

// ack records that this aggregator suppresses every subject of the
// erasures up to seen, with its ingests that started earlier finished.
func (s *chStorage) ack(ctx context.Context, seen uint64, now time.Time) error {
	if err := s.insert(ctx, "erasure_acks (aggregator, seen, at)", s.id, seen, now.UnixNano()); err != nil {
		return fmt.Errorf("erasure: clickhouse: acknowledge erasure %d: %w", seen, err)
	}
	return nil
}

// lagging returns the other aggregators that acknowledged since since
// (they are live) but not yet erasure seq. An aggregator's seen only grows
// (gone is the greatest), so its greatest is its last, whatever its clock
// did between its acknowledgements.
func (s *chStorage) lagging(ctx context.Context, seq uint64, since time.Time) ([]string, error) {
	rows, err := s.conn.Query(ctx, "SELECT aggregator, max(seen) AS last FROM "+s.db+".erasure_acks GROUP BY aggregator HAVING max(at) > ? AND last < ? AND aggregator != ?", since.UnixNano(), seq, s.id)
	if err != nil {
		return nil, fmt.Errorf("erasure: clickhouse: read acknowledgements: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var (
			id   string
			seen uint64
		)
		if err := rows.Scan(&id, &seen); err != nil {
			return nil, fmt.Errorf("erasure: clickhouse: read acknowledgements: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

func (s *chStorage) shared() bool { return true }

func (s *chStorage) close() error { return s.conn.Close() }
