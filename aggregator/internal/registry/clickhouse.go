package registry

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/edgetrack/edgetrack/aggregator/internal/store/clickhouse"
	"github.com/edgetrack/edgetrack/internal/ruleapi"
)

// chStorage keeps the registry in tables of the ClickHouse database the
// store uses, which several aggregators may share (the package doc's
// Storage section). It owns its tables and their schema version, apart
// from the store's.
//
// The log is a table of the Log engine: it keeps rows in the order they
// were inserted, an INSERT holds the table's lock, and a read with one
// thread returns the rows in that order (the connection sets max_threads
// to 1; with more threads a read interleaves stretches of the table). A
// row's position is therefore the same for every reader, and no row is
// ever inserted before one that is there: that is what lets append know
// whether its entry is at the position it claimed without a transaction.
type chStorage struct {
	conn driver.Conn
	db   string // validated by clickhouse.ParseDSN
	log  *slog.Logger
}

var _ storage = (*chStorage)(nil)

// chTables are the registry's tables and their migrations, run as
// store/clickhouse runs its own (clickhouse.Tables), with their version in
// registry_schema_version.
var chTables = clickhouse.Tables{Name: "registry", Migrations: [][]string{
	{ // 1: the log, modules, vectors, edges' reports
		`CREATE TABLE IF NOT EXISTS {db}.registry_log (
			base UInt64, id String, time DateTime, action String, rule String, entry String
		) ENGINE = Log`,
		`CREATE TABLE IF NOT EXISTS {db}.registry_modules (
			hash String, wasm String, stored_at DateTime DEFAULT now()
		) ENGINE = ReplacingMergeTree ORDER BY hash`,
		`CREATE TABLE IF NOT EXISTS {db}.registry_vectors (
			hash String, json String, stored_at DateTime DEFAULT now()
		) ENGINE = ReplacingMergeTree ORDER BY hash`,
		`CREATE TABLE IF NOT EXISTS {db}.registry_edges (
			edge String, reported_at Int64, rules String
		) ENGINE = ReplacingMergeTree(reported_at) ORDER BY edge`,
	},
}}

// openClickHouse connects to the server dsn names (as
// aggregator.store.clickhouse.dsn) and creates or migrates the registry's
// tables in its database. The connection reads with one thread: the log's
// order, see chStorage.
func openClickHouse(ctx context.Context, dsn string, log *slog.Logger) (*chStorage, error) {
	conn, db, err := chTables.Open(ctx, dsn, log)
	if err != nil {
		return nil, fmt.Errorf("registry: clickhouse: %w", err)
	}
	return &chStorage{conn: conn, db: db, log: log}, nil
}

// insert sends one row to table, given as "name (columns)".
func (s *chStorage) insert(ctx context.Context, table string, values ...any) error {
	return clickhouse.InsertRow(ctx, s.conn, s.db+"."+table, values...)
}

// load reads the whole log and every edge's last report.
func (s *chStorage) load(ctx context.Context) (stored, error) {
	entries, end, err := s.entries(ctx, 0)
	if err != nil {
		return stored{}, err
	}
	edges, err := s.reports(ctx, nil)
	if err != nil {
		return stored{}, err
	}
	return stored{log: entries, end: end, edges: edges}, nil
}

// entries reads the log's rows from position from on, in insertion order. A
// row counts when its base, the position its writer claimed, is its
// position.
func (s *chStorage) entries(ctx context.Context, from int64) ([]AuditEntry, int64, error) {
	// Most reads find nothing new: counting reads one small column.
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM "+s.db+".registry_log").Scan(&n); err != nil {
		return nil, 0, fmt.Errorf("registry: clickhouse: read the log: %w", err)
	}
	if int64(n) <= from {
		return nil, from, nil
	}
	rows, err := s.conn.Query(ctx, fmt.Sprintf("SELECT base, entry FROM %s.registry_log LIMIT %d, %d", s.db, from, int64(1)<<62))
	if err != nil {
		return nil, 0, fmt.Errorf("registry: clickhouse: read the log: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	pos := from
	for rows.Next() {
		var (
			base  uint64
			entry string
		)
		if err := rows.Scan(&base, &entry); err != nil {
			return nil, 0, fmt.Errorf("registry: clickhouse: read the log: %w", err)
		}
		if int64(base) == pos {
			var e AuditEntry
			if err := json.Unmarshal([]byte(entry), &e); err != nil {
				return nil, 0, fmt.Errorf("registry: clickhouse: the log's entry %d: %w", pos, err)
			}
			out = append(out, e)
		}
		pos++
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("registry: clickhouse: read the log: %w", err)
	}
	return out, pos, nil
}

// append inserts e with base at and a random id, and reads back which row
// is at position at.
func (s *chStorage) append(ctx context.Context, at int64, e AuditEntry) (bool, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return false, err
	}
	id := hex.EncodeToString(b[:])
	entry, err := json.Marshal(e)
	if err != nil {
		return false, fmt.Errorf("registry: encoding a log entry: %w", err)
	}
	if err := s.insert(ctx, "registry_log (base, id, time, action, rule, entry)", uint64(at), id, e.Time, e.Action, e.Rule, string(entry)); err != nil {
		return false, fmt.Errorf("registry: clickhouse: append to the log: %w", err)
	}
	var got string
	if err := s.conn.QueryRow(ctx, fmt.Sprintf("SELECT id FROM %s.registry_log LIMIT %d, 1", s.db, at)).Scan(&got); err != nil {
		return false, fmt.Errorf("registry: clickhouse: read back the log's entry %d: %w", at, err)
	}
	return got == id, nil
}

func (s *chStorage) putModule(ctx context.Context, hash string, wasm []byte) error {
	return s.putOnce(ctx, "registry_modules", "wasm", hash, wasm)
}

func (s *chStorage) putVectors(ctx context.Context, hash string, b []byte) error {
	return s.putOnce(ctx, "registry_vectors", "json", hash, b)
}

// putOnce inserts data by hash unless a row has the hash (the bytes are
// its content, so they are the same).
func (s *chStorage) putOnce(ctx context.Context, table, column, hash string, data []byte) error {
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT count() FROM "+s.db+"."+table+" WHERE hash = ?", hash).Scan(&n); err != nil {
		return fmt.Errorf("registry: clickhouse: %s: %w", table, err)
	}
	if n > 0 {
		return nil
	}
	if err := s.insert(ctx, table+" (hash, "+column+")", hash, string(data)); err != nil {
		return fmt.Errorf("registry: clickhouse: store %s in %s: %w", short(hash), table, err)
	}
	return nil
}

func (s *chStorage) module(ctx context.Context, hash string) ([]byte, error) {
	var wasm string
	err := s.conn.QueryRow(ctx, "SELECT wasm FROM "+s.db+".registry_modules WHERE hash = ? LIMIT 1", hash).Scan(&wasm)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("registry: module %s: not in the database", short(hash))
	}
	if err != nil {
		return nil, fmt.Errorf("registry: clickhouse: module %s: %w", short(hash), err)
	}
	return []byte(wasm), nil
}

func (s *chStorage) moduleInfo(ctx context.Context, hash string) (int, time.Time, error) {
	var (
		size uint64
		at   time.Time
	)
	err := s.conn.QueryRow(ctx, "SELECT length(wasm), stored_at FROM "+s.db+".registry_modules WHERE hash = ? LIMIT 1", hash).Scan(&size, &at)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("clickhouse: %w", err)
	}
	return int(size), at.UTC(), nil
}

// writeIndex: the log is the index.
func (s *chStorage) writeIndex(*index) error { return nil }

// saveReport inserts a row; the newest report of an edge is the one with
// the greatest reported_at.
func (s *chStorage) saveReport(ctx context.Context, edge string, rep edgeReport) error {
	rules, err := json.Marshal(rep.Rules)
	if err != nil {
		return fmt.Errorf("registry: encoding a status report: %w", err)
	}
	if err := s.insert(ctx, "registry_edges (edge, reported_at, rules)", edge, rep.Reported.UnixNano(), string(rules)); err != nil {
		return fmt.Errorf("registry: clickhouse: record the status of edge %s: %w", edge, err)
	}
	return nil
}

// maxReportsByName bounds the edges reports reads by name; with more, it
// reads every edge's report.
const maxReportsByName = 1000

// reports reads the time of every edge's last report, and then the reports
// that are newer than have's (all when have is nil).
func (s *chStorage) reports(ctx context.Context, have map[string]time.Time) (map[string]*edgeReport, error) {
	var newer []string
	if have != nil {
		rows, err := s.conn.Query(ctx, "SELECT edge, max(reported_at) FROM "+s.db+".registry_edges GROUP BY edge")
		if err != nil {
			return nil, fmt.Errorf("registry: clickhouse: read edges' reports: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				edge string
				at   int64
			)
			if err := rows.Scan(&edge, &at); err != nil {
				return nil, fmt.Errorf("registry: clickhouse: read edges' reports: %w", err)
			}
			if t, ok := have[edge]; !ok || at > t.UnixNano() {
				newer = append(newer, edge)
			}
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("registry: clickhouse: read edges' reports: %w", err)
		}
		if len(newer) == 0 {
			return nil, nil
		}
	}
	q, args := "SELECT edge, max(reported_at), argMax(rules, reported_at) FROM "+s.db+".registry_edges", []any(nil)
	if have != nil && len(newer) <= maxReportsByName {
		q, args = q+" WHERE has(?, edge)", []any{newer}
	}
	rows, err := s.conn.Query(ctx, q+" GROUP BY edge", args...)
	if err != nil {
		return nil, fmt.Errorf("registry: clickhouse: read edges' reports: %w", err)
	}
	defer rows.Close()
	out := map[string]*edgeReport{}
	for rows.Next() {
		var (
			edge, rules string
			at          int64
		)
		if err := rows.Scan(&edge, &at, &rules); err != nil {
			return nil, fmt.Errorf("registry: clickhouse: read edges' reports: %w", err)
		}
		rep := &edgeReport{Rules: map[string]ruleapi.RuleStatus{}, Reported: time.Unix(0, at).UTC()}
		if err := json.Unmarshal([]byte(rules), &rep.Rules); err != nil {
			return nil, fmt.Errorf("registry: clickhouse: the report of edge %s: %w", edge, err)
		}
		rep.LastSeen = rep.Reported
		out[edge] = rep
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("registry: clickhouse: read edges' reports: %w", err)
	}
	return out, nil
}

func (s *chStorage) shared() bool { return true }

func (s *chStorage) close() error { return s.conn.Close() }
