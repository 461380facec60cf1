package clickhouse

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// Options configure a ClickHouse store.
type Options struct {
	// DSN names the server and the database:
	// clickhouse://[user[:password]@]host:port/database[?options], the
	// native protocol (port 9000). The database is created when missing;
	// without one in the DSN it is DefaultDatabase. The options are
	// clickhouse-go's (dial_timeout, read_timeout, compress, secure, …).
	DSN string
	// Registerer receives the store's metrics (edgetrack_store_*, as
	// store/pebble's); nil registers nothing.
	Registerer prometheus.Registerer
	// Logger receives the store's messages; nil means slog.Default().
	Logger *slog.Logger
	// PollInterval is how often a long-polling Export looks for events
	// stored by other aggregators on the same database (its own wake it at
	// once); <= 0 means DefaultPollInterval.
	PollInterval time.Duration
	// Cluster names a cluster of the server's remote_servers (its config;
	// the server needs ZooKeeper and the macros shard and replica). The
	// tables are then created ON CLUSTER, replicated, and read and written
	// through Distributed tables; the package doc (Cluster) says what that
	// guarantees and costs. The DSN names one of the cluster's servers
	// (any: each aggregator may use another). "" keeps everything on the
	// DSN's server. A database is of one layout: it cannot be opened with
	// the other.
	Cluster string
	// AckReplicas, with a Cluster, is how many servers of its shard hold
	// an event when Ingest acknowledges it: 0 or 1, the server that took
	// the INSERT (the shard's other replicas fetch the rows shortly
	// after); N, N of them, which survives the loss of N-1 servers' disks
	// and costs each Ingest the wait for replication. It may not exceed
	// the replicas of a shard. (Not ClickHouse's insert_quorum, which
	// 18.16 applies to the rollups' view as well, refusing concurrent
	// INSERTs after their events are written.)
	AckReplicas int
	// WriterTimeout is how long the export feeds of the other aggregators
	// on the database wait for one that stopped without closing its store
	// (killed, or cut off from the server) before they pass the events
	// stored after its last; <= 0 means DefaultWriterTimeout. An INSERT
	// must not take longer than half of it (package doc: The feed with
	// several aggregators).
	WriterTimeout time.Duration
}

// DefaultDatabase is the database of a DSN that names none.
const DefaultDatabase = "edgetrack"

// DefaultPollInterval: see Options.PollInterval.
const DefaultPollInterval = time.Second

// validName is what the store accepts as a database or cluster name: it is
// written into statements unquoted.
var validName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,99}$`)

// ParseDSN checks dsn as Options.DSN and returns the client's options and
// the database it names (DefaultDatabase when it names none). Config
// validation calls it too.
func ParseDSN(dsn string) (*ch.Options, string, error) {
	if !strings.HasPrefix(dsn, "clickhouse://") {
		return nil, "", errors.New("want clickhouse://host:port/database (the native protocol, port 9000)")
	}
	opts, err := ch.ParseDSN(dsn)
	if err != nil {
		return nil, "", err
	}
	if opts.Protocol != ch.Native {
		return nil, "", errors.New("only the native protocol is supported (clickhouse://host:9000/database)")
	}
	db := opts.Auth.Database
	if db == "" {
		db = DefaultDatabase
	}
	if !validName.MatchString(db) {
		return nil, "", fmt.Errorf("database name %q: want letters, digits and _ (not starting with a digit)", db)
	}
	return opts, db, nil
}

// Store is a store.Store on a ClickHouse database; the package doc gives
// its tables and what each call costs.
//
// Exactly-once ingest rests on two things. Within one process, ingestMu
// holds the window between reading which ids exist and inserting the
// missing ones shut, so this store never inserts an id it or an earlier
// call of it stored; and sequence numbers (the feed's order) are given
// under it, so they follow the order of the inserts. Across processes on
// one database (several aggregators), nothing can hold that window shut: two
// of them may insert the same id at once. Every read therefore keeps one row
// per id (the canonical copy: the least seq, writer), and the ids that have
// more than one row are recorded in the duplicates table by whichever
// aggregator sees them (after its insert, or before the insert of a resend)
// so that Stats can subtract the extra rows from the rollups. With a
// cluster, those look-ups read every server (cluster.copies), so that they
// see each INSERT that returned however far replication lags.
type Store struct {
	conn    driver.Conn
	db      string // database name, validated
	log     *slog.Logger
	metrics *metrics
	poll    time.Duration
	writer  uint64 // this process's id, in every row it inserts

	layout      layout
	cluster     *cluster // nil on one server
	ackReplicas int      // Options.AckReplicas

	ingestMu sync.Mutex
	lastSeq  atomic.Uint64 // the last seq given out (under ingestMu)
	// clockSkew is added to the clock seqs are taken from: 0, except in
	// tests of aggregators whose clocks disagree.
	clockSkew atomic.Int64

	removals removals // Erase and Expire (lifecycle.go)
	marks    marks    // the feed's horizon (writers.go)

	storeID  atomic.Value // [8]byte: the database's id, in export cursors
	signalMu sync.Mutex
	signal   chan struct{} // closed and replaced after each insert
	closing  chan struct{} // closed by Close: long-polls end

	// closeMu is held shared by every call and exclusively by Close, so
	// Close waits for calls in flight and later calls see closed.
	closeMu sync.RWMutex
	closed  bool
}

var _ store.Store = (*Store)(nil)

// Open connects to the server named by opts.DSN, creates the database and
// its tables or migrates them (see the package doc), and returns the store.
func Open(ctx context.Context, opts Options) (*Store, error) {
	chOpts, db, err := ParseDSN(opts.DSN)
	if err != nil {
		return nil, fmt.Errorf("store: clickhouse: dsn: %w", err)
	}
	if err := checkCluster(opts.Cluster, opts.AckReplicas); err != nil {
		return nil, fmt.Errorf("store: clickhouse: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("store: clickhouse: %w", err)
	}
	// Connect without the database, which may not exist yet; every
	// statement names it.
	chOpts.Auth.Database = "default"
	if chOpts.DialTimeout == 0 {
		chOpts.DialTimeout = 5 * time.Second
	}
	replicaOpts := *chOpts
	if opts.Cluster != "" {
		chOpts.Settings = maps.Clone(chOpts.Settings)
		if chOpts.Settings == nil {
			chOpts.Settings = ch.Settings{}
		}
		// An INSERT into a Distributed table returns when the shards'
		// servers have written the rows, not when they are queued on this
		// one.
		chOpts.Settings["insert_distributed_sync"] = 1
	}
	conn, err := ch.Open(chOpts)
	if err != nil {
		return nil, fmt.Errorf("store: clickhouse: connect to %s: %w", strings.Join(chOpts.Addr, ","), err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("store: clickhouse: connect to %s: %w", strings.Join(chOpts.Addr, ","), err)
	}
	var w [8]byte
	if _, err := rand.Read(w[:]); err != nil {
		conn.Close()
		return nil, err
	}
	s := &Store{
		conn: conn, db: db, layout: layout{db: db, cluster: opts.Cluster}, ackReplicas: opts.AckReplicas,
		log: log, metrics: m, poll: opts.PollInterval, writer: binary.BigEndian.Uint64(w[:]),
		signal: make(chan struct{}), closing: make(chan struct{}), removals: newRemovals(),
	}
	if s.poll <= 0 {
		s.poll = DefaultPollInterval
	}
	s.marks.timeout = cmp.Or(max(opts.WriterTimeout, 0), DefaultWriterTimeout)
	if err := s.open(ctx, &replicaOpts); err != nil {
		s.closeConns()
		return nil, fmt.Errorf("store: clickhouse: database %s: %w", db, err)
	}
	log.Info("store opened", "backend", "clickhouse", "addr", strings.Join(chOpts.Addr, ","), "database", db, "cluster", opts.Cluster)
	return s, nil
}

// open is the part of Open after connecting: the cluster's servers, the
// tables, the store id and the feed's end.
func (s *Store) open(ctx context.Context, replicaOpts *ch.Options) error {
	if s.layout.cluster != "" {
		c, err := openCluster(ctx, s.conn, replicaOpts, s.layout.cluster, s.ackReplicas)
		if err != nil {
			return err
		}
		s.cluster = c
	}
	if err := s.migrate(ctx); err != nil {
		return err
	}
	id, err := s.loadStoreID(ctx)
	if err != nil {
		return fmt.Errorf("store id: %w", err)
	}
	s.storeID.Store(id)
	last, err := s.feedEnd(ctx)
	if err != nil {
		return fmt.Errorf("read the feed's end: %w", err)
	}
	s.lastSeq.Store(last)
	s.startMarks(ctx)
	return nil
}

// checkCluster checks Options.Cluster and Options.AckReplicas.
func checkCluster(cluster string, ackReplicas int) error {
	if cluster != "" && !validName.MatchString(cluster) {
		return fmt.Errorf("cluster name %q: want letters, digits and _ (not starting with a digit), as in the server's remote_servers", cluster)
	}
	if ackReplicas < 0 {
		return fmt.Errorf("ack replicas %d: want 1 (the server that takes the insert) or more", ackReplicas)
	}
	if ackReplicas > 1 && cluster == "" {
		return fmt.Errorf("acknowledging events on %d replicas needs a cluster: one server has no replicas", ackReplicas)
	}
	return nil
}

func (s *Store) closeConns() {
	s.conn.Close()
	if s.cluster != nil {
		s.cluster.close()
	}
}

// table is the qualified name of one of the store's tables.
func (s *Store) table(name string) string { return s.db + "." + name }

// loadStoreID reads the database's id, recording one first when there is
// none. Two stores opening a new database at once may both record one; the
// least is the id, read again when a cursor names another (exportCursor).
func (s *Store) loadStoreID(ctx context.Context) ([8]byte, error) {
	id, ok, err := s.readStoreID(ctx)
	if err != nil || ok {
		return id, err
	}
	var fresh [8]byte
	if _, err := rand.Read(fresh[:]); err != nil {
		return id, err
	}
	err = s.send(ctx, "INSERT INTO "+s.table("meta")+" (key, value)", func(b batch) error {
		return b.Append("store_id", hex.EncodeToString(fresh[:]))
	})
	if err != nil {
		return id, err
	}
	id, ok, err = s.readStoreID(ctx)
	if err == nil && !ok {
		err = errors.New("recorded, then not found")
	}
	return id, err
}

func (s *Store) readStoreID(ctx context.Context) (id [8]byte, ok bool, err error) {
	var v string
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT min(value), count() FROM "+s.table("meta")+" WHERE key = 'store_id'").Scan(&v, &n); err != nil {
		return id, false, err
	}
	if n == 0 {
		return id, false, nil
	}
	b, err := hex.DecodeString(v)
	if err != nil || len(b) != len(id) {
		return id, false, fmt.Errorf("malformed store id %q", v)
	}
	copy(id[:], b)
	return id, true, nil
}

func (s *Store) acquire() error {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return store.ErrClosed
	}
	return nil
}

func (s *Store) release() { s.closeMu.RUnlock() }

// marshal is deterministic so that the stored bytes of an event do not
// depend on map iteration (as in store/pebble).
var marshal = proto.MarshalOptions{Deterministic: true}

func decode(body string) (*eventpb.Event, error) {
	ev := new(eventpb.Event)
	if err := proto.Unmarshal([]byte(body), ev); err != nil {
		return nil, fmt.Errorf("store: clickhouse: decode event: %w", err)
	}
	return ev, nil
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, id string) (*eventpb.Event, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if id == "" || len(id) > store.MaxIDLen {
		return nil, store.ErrNotFound
	}
	// The canonical copy is the least (seq, writer): see Store.
	rows, err := s.conn.Query(ctx, "SELECT body FROM "+s.table("events")+" WHERE id = ? ORDER BY seq, writer LIMIT 1", id)
	if err != nil {
		return nil, fmt.Errorf("store: clickhouse: get %q: %w", id, err)
	}
	evs, err := scanBodies(rows)
	if err != nil {
		return nil, fmt.Errorf("store: clickhouse: get %q: %w", id, err)
	}
	if len(evs) == 0 {
		return nil, store.ErrNotFound
	}
	return evs[0], nil
}

// scanBodies reads rows whose first column is the event's body.
func scanBodies(rows driver.Rows) ([]*eventpb.Event, error) {
	defer rows.Close()
	var out []*eventpb.Event
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		ev, err := decode(body)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, rows.Err()
}

// IDPrefix implements store.Store.
func (s *Store) IDPrefix(ctx context.Context, prefix string, limit int) ([]*eventpb.Event, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if prefix == "" {
		return nil, errors.New("store: clickhouse: id prefix: empty prefix")
	}
	if limit <= 0 || limit > store.MaxLimit {
		limit = store.MaxLimit
	}
	w := where{}
	w.add("id >= ?", prefix)
	w.add("startsWith(id, ?)", prefix)
	// One row per id, the canonical copy (copies share the id, so no
	// filter tells them apart).
	q := "SELECT body FROM " + s.table("events") + w.sql() + " ORDER BY id, seq, writer LIMIT 1 BY id LIMIT ?"
	rows, err := s.conn.Query(ctx, q, append(w.args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("store: clickhouse: id prefix: %w", err)
	}
	evs, err := scanBodies(rows)
	if err != nil {
		return nil, fmt.Errorf("store: clickhouse: id prefix: %w", err)
	}
	return evs, nil
}

// Ready implements store.Store: the server answers.
func (s *Store) Ready() error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.conn.Ping(ctx); err != nil {
		return fmt.Errorf("store: not ready: clickhouse: %w", err)
	}
	return nil
}

// Close implements store.Store. It waits for calls in flight; closing twice
// is a no-op.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.closing)
	s.stopMarks()
	if s.cluster != nil {
		s.cluster.close()
	}
	if err := s.conn.Close(); err != nil {
		return fmt.Errorf("store: clickhouse: close: %w", err)
	}
	s.log.Info("store closed", "backend", "clickhouse")
	return nil
}

// where builds a WHERE clause of conditions joined by AND, with their
// arguments bound in order.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// copyKey names one row of the events table.
type copyKey struct {
	id          string
	seq, writer uint64
}

func (a copyKey) less(b copyKey) bool {
	return a.seq < b.seq || a.seq == b.seq && a.writer < b.writer
}

// losers are the rows of ids recorded in the duplicates table that are not
// their id's canonical copy, with what Stats needs to take them out of the
// rollups.
type losers []loser

type loser struct {
	copyKey
	eventTime      int64
	category, name string
}

// losers reads the rows that are not their id's canonical copy, for Stats
// to take out of the rollups; see canonicalOnly.
func (s *Store) losers(ctx context.Context) (losers, error) {
	rows, err := s.conn.Query(ctx, "SELECT id, seq, writer, event_time, category, name FROM "+s.table("events")+
		" WHERE id "+s.in()+" (SELECT id FROM "+s.table("duplicates")+")")
	if err != nil {
		return nil, fmt.Errorf("read duplicates: %w", err)
	}
	defer rows.Close()
	best := map[string]copyKey{}
	var all []loser
	for rows.Next() {
		var l loser
		if err := rows.Scan(&l.id, &l.seq, &l.writer, &l.eventTime, &l.category, &l.name); err != nil {
			return nil, fmt.Errorf("read duplicates: %w", err)
		}
		if b, ok := best[l.id]; !ok || l.copyKey.less(b) {
			best[l.id] = l.copyKey
		}
		all = append(all, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read duplicates: %w", err)
	}
	out := all[:0]
	for _, l := range all {
		if best[l.id] != l.copyKey {
			out = append(out, l)
		}
	}
	return out, nil
}

// canonicalOnly adds to w the condition that leaves out the rows of ids
// recorded in the duplicates table that are not their id's canonical copy.
// The duplicates table is empty unless two aggregators raced on an id (see
// Store), so its subqueries read next to nothing.
func (s *Store) canonicalOnly(w *where) {
	dups := "SELECT id FROM " + s.table("duplicates")
	in, notIn := s.in(), s.notIn()
	w.conds = append(w.conds, "(id, seq, writer) "+notIn+" (SELECT id, seq, writer FROM "+s.table("events")+
		" WHERE id "+in+" ("+dups+") AND (id, seq, writer) "+notIn+" (SELECT id, argMin(seq, (seq, writer)), argMin(writer, (seq, writer)) FROM "+
		s.table("events")+" WHERE id "+in+" ("+dups+") GROUP BY id))")
}

// in and notIn are the IN of a subquery over the store's tables: GLOBAL
// with a cluster, so that a Distributed table in a subquery is read once,
// on this server, and sent to the shards (a plain IN would have every
// shard read it, which ClickHouse refuses). An IN over external data
// (the table ids) stays plain: the shards receive it with the query.
func (s *Store) in() string {
	if s.cluster != nil {
		return "GLOBAL IN"
	}
	return "IN"
}

func (s *Store) notIn() string {
	if s.cluster != nil {
		return "GLOBAL NOT IN"
	}
	return "NOT IN"
}
