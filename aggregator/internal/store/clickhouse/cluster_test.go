package clickhouse

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/aggregator/internal/store/storetest"
	"github.com/edgetrack/edgetrack/internal/dbtest"
	"github.com/edgetrack/edgetrack/internal/subject"
)

// The tests of the cluster layout run on the cluster `make
// clickhouse-cluster` starts (two replicas of one shard on loopback), and
// skip without it.

func openOnCluster(tb testing.TB, dsn, cluster string, ackReplicas int) *Store {
	tb.Helper()
	s, err := Open(context.Background(), Options{DSN: dsn, Cluster: cluster, AckReplicas: ackReplicas, Logger: quiet})
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// syncReplicas waits until every server of s's cluster has fetched the
// parts every other one had written (SYSTEM SYNC REPLICA), so that a read
// anywhere sees every row.
func syncReplicas(tb testing.TB, s *Store) {
	tb.Helper()
	for _, r := range s.cluster.replicas {
		for _, t := range []string{"events", "duplicates", "rollups", "meta"} {
			if err := r.conn.Exec(context.Background(), "SYSTEM SYNC REPLICA "+s.db+"."+t+"_local"); err != nil {
				tb.Fatalf("sync %s of %s: %v", t, r.addr, err)
			}
		}
	}
}

// noRemovals is a store without its Erase and Expire.
type noRemovals struct{ store.Store }

// clusterSuiteVar, set, runs TestClusterStore, which takes minutes (the
// DDL of each store's database waits for every server, and each query costs
// more than on one server); `make test-cluster` sets it.
const clusterSuiteVar = "EDGETRACK_TEST_CLUSTER_SUITE"

// TestClusterStore runs the conformance suite on the cluster, each store on
// one of its servers in turn (and reopened on that one: another server may
// not have the rows of the last moment yet).
func TestClusterStore(t *testing.T) {
	if os.Getenv(clusterSuiteVar) == "" {
		t.Skipf("takes minutes: set %s=1 (make test-cluster does) to run it", clusterSuiteVar)
	}
	dbtest.ClickHouseCluster(t) // skips the suite at once without the cluster
	t.Parallel()                // beside TestStore: both mostly wait on servers
	var n atomic.Int64
	storetest.RunParallel(t, func(t *testing.T) (store.Store, func() store.Store) {
		db := dbtest.ClickHouseCluster(t)
		dsn := db.DSNs[int(n.Add(1))%len(db.DSNs)]
		// Erasure and retention are not carried out on a cluster yet
		// (ErrClusterRemoval): the store is passed without them, so the
		// suite skips their tests.
		return noRemovals{openOnCluster(t, dsn, db.Cluster, 1)}, func() store.Store { return noRemovals{openOnCluster(t, dsn, db.Cluster, 1)} }
	})
}

// TestClusterRacingAggregators: TestRacingAggregators with the two
// aggregators on two replicas. The look-up after an insert reads every
// server, so the race is found whether or not replication has brought
// the other copy over yet; once it has, every read of either store is
// exact.
func TestClusterRacingAggregators(t *testing.T) {
	db := dbtest.ClickHouseCluster(t)
	a, b := openOnCluster(t, db.DSNs[0], db.Cluster, 1), openOnCluster(t, db.DSNs[1], db.Cluster, 1)
	events := storetest.Spread(300, 41)
	storetest.Ingest(t, a, events...)
	// b inserts without the look-up before, as when it ran before a's
	// insert landed.
	ids := slipThrough(t, b, events[:50]...)
	if lost, err := b.checkRaces(context.Background(), ids); err != nil || lost != len(ids) {
		t.Fatalf("checkRaces = %d, %v; want %d lost", lost, err, len(ids))
	}
	syncReplicas(t, a)
	for _, s := range []*Store{a, b} {
		if n := rowCount(t, s, "duplicates"); n == 0 {
			t.Fatal("the race was not recorded")
		}
		storetest.CheckStored(t, s, events)
		if got, _ := storetest.ExportAll(t, s, store.ExportQuery{Limit: 7}); len(got) != len(events) {
			t.Fatalf("the feed has %d events, want %d", len(got), len(events))
		}
	}
	// The resend of an event stored on both is a duplicate.
	if st := storetest.Ingest(t, a, events[:10]...); st.Duplicates != 10 {
		t.Fatalf("resend: %+v, want 10 duplicates", st)
	}
}

// TestClusterTwoStoresConcurrently: TestTwoStoresConcurrently with the
// stores on two replicas, acknowledging events held by one server and by
// both. With both, every event is on both servers when Ingest returns.
func TestClusterTwoStoresConcurrently(t *testing.T) {
	for _, ack := range []int{1, 2} {
		t.Run(map[int]string{1: "ack on one", 2: "ack on both"}[ack], func(t *testing.T) {
			db := dbtest.ClickHouseCluster(t)
			stores := []*Store{openOnCluster(t, db.DSNs[0], db.Cluster, ack), openOnCluster(t, db.DSNs[1], db.Cluster, ack)}
			want, _ := ingestOverlapping(t, stores, storetest.Spread(400, 51), 4, 12)
			if ack == 2 {
				for _, r := range stores[0].cluster.replicas {
					var n uint64
					if err := r.conn.QueryRow(context.Background(), "SELECT uniqExact(id) FROM "+stores[0].db+".events_local").Scan(&n); err != nil || n != uint64(len(want)) {
						t.Fatalf("%s holds %d events (%v) when the inserts returned, want %d", r.addr, n, err, len(want))
					}
				}
			}
			syncReplicas(t, stores[0])
			for _, s := range stores {
				storetest.CheckStored(t, s, want)
			}
		})
	}
}

// TestClusterServerDown: while a server of the cluster does not answer,
// Ingest fails (it cannot see the copies that server may hold) and stores
// nothing it acknowledges; once it answers, the resend is stored once.
func TestClusterServerDown(t *testing.T) {
	db := dbtest.ClickHouseCluster(t)
	s := openOnCluster(t, db.DSNs[0], db.Cluster, 1)
	// A server that refuses connections, as a stopped one does.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()
	conn, err := ch.Open(&ch.Options{Addr: []string{down}})
	if err != nil {
		t.Fatal(err)
	}
	up := s.cluster.replicas
	s.cluster.replicas = append(append([]replica(nil), up...), replica{addr: down, conn: conn})
	events := storetest.Spread(50, 7)
	if _, err := s.Ingest(context.Background(), events); err == nil || !strings.Contains(err.Error(), down) {
		t.Fatalf("ingest with a server down: %v, want an error naming %s", err, down)
	}
	s.cluster.replicas = up
	conn.Close()
	st := storetest.Ingest(t, s, events...)
	if st.Stored+st.Duplicates != len(events) {
		t.Fatalf("resend: %+v", st)
	}
	storetest.CheckStored(t, s, events)
}

// TestClusterLayout: a database is of one layout; an unknown cluster and
// more replicas to wait for than a shard has are refused.
func TestClusterLayout(t *testing.T) {
	db := dbtest.ClickHouseCluster(t)
	plain := dbtest.ClickHouseCluster(t).DSNs[0]
	openAt(t, plain).Close()
	openOnCluster(t, db.DSNs[0], db.Cluster, 1).Close()
	for _, tc := range []struct {
		dsn, cluster string
		ack          int
		want         string
	}{
		{plain, db.Cluster, 0, "created on one server"},
		{db.DSNs[1], "", 0, "created on a cluster"},
		{db.DSNs[1], "no_such_cluster", 0, `no cluster "no_such_cluster"`},
		{db.DSNs[1], db.Cluster, 3, "on 3 replicas cannot be done"},
		{db.DSNs[1], "", 2, "needs a cluster"},
		{db.DSNs[1], "bad-name", 0, "cluster name"},
	} {
		s, err := Open(context.Background(), Options{DSN: tc.dsn, Cluster: tc.cluster, AckReplicas: tc.ack, Logger: quiet})
		if err == nil {
			s.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("open %s on cluster %q, ack replicas %d: %v; want %q", tc.dsn, tc.cluster, tc.ack, err, tc.want)
		}
	}
}

// TestExpand: the statements of one server are those of a plain
// ClickHouse; a cluster gets replicated local tables and Distributed ones
// over them, ON CLUSTER, and an ALTER reaches both.
func TestExpand(t *testing.T) {
	one, many := layout{db: "d"}, layout{db: "d", cluster: "c"}
	dups := table("duplicates", "id String", "ReplacingMergeTree", "ORDER BY id", "cityHash64(id)")
	sums := table("rollups", "events Int64", "SummingMergeTree(events)", "ORDER BY events", "rand()")
	for _, tc := range []struct {
		l    layout
		d    ddl
		want []string
	}{
		{one, dups, []string{"CREATE TABLE IF NOT EXISTS d.duplicates (id String) ENGINE = ReplacingMergeTree ORDER BY id"}},
		{many, dups, []string{
			"CREATE TABLE IF NOT EXISTS d.duplicates_local ON CLUSTER c (id String) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/d/duplicates', '{replica}') ORDER BY id",
			"CREATE TABLE IF NOT EXISTS d.duplicates ON CLUSTER c AS d.duplicates_local ENGINE = Distributed(c, d, duplicates_local, cityHash64(id))",
		}},
		{many, sums, []string{
			"CREATE TABLE IF NOT EXISTS d.rollups_local ON CLUSTER c (events Int64) ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/d/rollups', '{replica}', events) ORDER BY events",
			"CREATE TABLE IF NOT EXISTS d.rollups ON CLUSTER c AS d.rollups_local ENGINE = Distributed(c, d, rollups_local, rand())",
		}},
		{one, alterTable("events", "ADD COLUMN x String"), []string{"ALTER TABLE d.events ADD COLUMN x String"}},
		{many, alterTable("events", "ADD COLUMN x String"), []string{
			"ALTER TABLE d.events_local ON CLUSTER c ADD COLUMN x String",
			"DROP TABLE IF EXISTS d.events ON CLUSTER c",
			"CREATE TABLE IF NOT EXISTS d.events ON CLUSTER c AS d.events_local ENGINE = Distributed(c, d, events_local, cityHash64(id))",
		}},
		{one, stmt("CREATE VIEW {db}.v{on_cluster} AS SELECT * FROM {db}.events{local}"), []string{"CREATE VIEW d.v AS SELECT * FROM d.events"}},
		{many, stmt("CREATE VIEW {db}.v{on_cluster} AS SELECT * FROM {db}.events{local}"), []string{"CREATE VIEW d.v ON CLUSTER c AS SELECT * FROM d.events_local"}},
	} {
		if got := tc.l.expand(tc.d); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("expand %+v on %+v:\n%s\nwant\n%s", tc.d, tc.l, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
	}
}

// TestClusterRefusesRemovals: on a cluster, Erase and Expire answer
// ErrClusterRemoval rather than removing through the Distributed tables,
// which a mutation cannot.
func TestClusterRefusesRemovals(t *testing.T) {
	db := dbtest.ClickHouseCluster(t)
	s := openOnCluster(t, db.DSNs[0], db.Cluster, 1)
	ctx := context.Background()
	if _, err := s.Erase(ctx, store.Subject{Kind: subject.Session, Value: "s1"}); !errors.Is(err, ErrClusterRemoval) {
		t.Errorf("Erase: %v, want ErrClusterRemoval", err)
	}
	if _, err := s.Expire(ctx, store.Retention{Default: time.Hour}, time.Now()); !errors.Is(err, ErrClusterRemoval) {
		t.Errorf("Expire: %v, want ErrClusterRemoval", err)
	}
}
