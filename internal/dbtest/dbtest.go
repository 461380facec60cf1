// Package dbtest gives tests a fresh database on the PostgreSQL and MariaDB
// servers that run on our machines (127.0.0.1:5432 user postgres,
// 127.0.0.1:3306 user root). Without a server the test is skipped, or
// fails in CI.
//
// ClickHouse gives a test a database name of its own on the ClickHouse
// server at 127.0.0.1:9000 (or EDGETRACK_TEST_CLICKHOUSE), and
// ClickHouseCluster one on the cluster `make clickhouse-cluster` starts (or
// EDGETRACK_TEST_CLICKHOUSE_CLUSTER).
//
// SQL Server cannot run on our machines: SQLServer uses the server named by
// EDGETRACK_TEST_SQLSERVER (sqlserver://user:pass@host:1433, a login that
// may create databases) and skips without it, in CI too; a named server
// that cannot be reached fails the test.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"net/url"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/edgetrack/edgetrack/internal/testenv"
	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/microsoft/go-mssqldb"
)

// Database is a fresh database on a local server, dropped when the test ends.
type Database struct {
	URL string // the target URL for edgetrack sync
	DB  *sql.DB
}

func randomName() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "edgetrack_sync_" + hex.EncodeToString(b)
}

// server is how to reach one local database server.
type server struct {
	what, driver, adminDSN string
	target, dsn            func(name string) string // the sync target URL and the driver DSN of a database
	drop                   string                   // the DROP statement, with %s for the name
	named                  bool                     // named by a variable: unreachable fails, never skips
}

var (
	postgres = server{
		what: "PostgreSQL on 127.0.0.1:5432 (user postgres)", driver: "pgx",
		adminDSN: "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		target:   func(n string) string { return "postgres://postgres@127.0.0.1:5432/" + n + "?sslmode=disable" },
		drop:     "DROP DATABASE IF EXISTS %s WITH (FORCE)",
	}
	mariadb = server{
		what: "MariaDB/MySQL on 127.0.0.1:3306 (user root)", driver: "mysql",
		adminDSN: "root@tcp(127.0.0.1:3306)/",
		target:   func(n string) string { return "mysql://root@127.0.0.1:3306/" + n },
		dsn:      func(n string) string { return "root@tcp(127.0.0.1:3306)/" + n + "?parseTime=true&loc=UTC" },
		drop:     "DROP DATABASE IF EXISTS %s",
	}
)

// SQLServerVar names the SQL Server the tests may use.
// (sqlserver://user:pass@host:1433, or …@host/instance).
const SQLServerVar = "EDGETRACK_TEST_SQLSERVER"

// SQLServer creates a database on the server EDGETRACK_TEST_SQLSERVER names,
// or skips the test.
func SQLServer(t testing.TB) Database {
	t.Helper()
	base := os.Getenv(SQLServerVar)
	if base == "" {
		t.Skipf("no SQL Server: set %s=sqlserver://user:pass@host:1433 to run this on one", SQLServerVar)
	}
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "sqlserver" {
		t.Fatalf("%s=%q: want sqlserver://user:pass@host:1433", SQLServerVar, base)
	}
	at := func(db string) string { // the driver's DSN: the instance stays in the path
		v := *u
		q := v.Query()
		q.Set("database", db)
		v.RawQuery = q.Encode()
		return v.String()
	}
	return create(t, server{
		what: "SQL Server at " + u.Redacted(), driver: "sqlserver", adminDSN: at("master"), named: true,
		target: func(n string) string {
			v := *u
			v.Path = strings.TrimRight(v.Path, "/") + "/" + n
			return v.String()
		},
		dsn:  at,
		drop: "IF DB_ID('%[1]s') IS NOT NULL BEGIN ALTER DATABASE %[1]s SET SINGLE_USER WITH ROLLBACK IMMEDIATE; DROP DATABASE %[1]s END",
	})
}

// Postgres creates a database on 127.0.0.1:5432 (user postgres).
func Postgres(t testing.TB) Database { t.Helper(); return create(t, postgres) }

// MariaDB creates a database on 127.0.0.1:3306 (user root).
func MariaDB(t testing.TB) Database { t.Helper(); return create(t, mariadb) }

func create(t testing.TB, s server) Database {
	t.Helper()
	admin, err := sql.Open(s.driver, s.adminDSN)
	if err == nil {
		err = admin.Ping()
	}
	if err != nil {
		switch {
		case s.named:
			t.Fatalf("%s (named by %s) refuses the connection: %v", s.what, SQLServerVar, err)
		}
		testenv.Missing(t, s.what, "start it, or run the tests without "+testenv.RequireVar, err)
	}
	name := randomName()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	dsn := s.target(name)
	if s.dsn != nil {
		dsn = s.dsn(name)
	}
	db, err := sql.Open(s.driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		admin.Exec(fmt.Sprintf(s.drop, name))
		admin.Close()
	})
	return Database{URL: s.target(name), DB: db}
}

// ClickHouseVar names the ClickHouse server (host:port of its native
// protocol) the tests use instead of 127.0.0.1:9000; `make clickhouse`
// starts one there.
const ClickHouseVar = "EDGETRACK_TEST_CLICKHOUSE"

// ClickHouseAddr returns the address of the local ClickHouse server
// (EDGETRACK_TEST_CLICKHOUSE, or 127.0.0.1:9000) when it answers; without
// one the test is skipped, or fails in CI.
func ClickHouseAddr(t testing.TB) string {
	t.Helper()
	addr, named := os.LookupEnv(ClickHouseVar)
	if !named {
		addr = "127.0.0.1:9000"
	}
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: 2 * time.Second})
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = conn.Ping(ctx)
		cancel()
		conn.Close()
	}
	if err != nil {
		if named {
			t.Fatalf("ClickHouse at %s (named by %s) does not answer: %v", addr, ClickHouseVar, err)
		}
		testenv.Missing(t, "ClickHouse on "+addr, "make clickhouse starts one; "+ClickHouseVar+" names another", err)
	}
	return addr
}

// ClickHouse returns the DSN (clickhouse://host:port/name) of a fresh
// database name on the local ClickHouse server, dropped when the test ends.
// The database itself is not created: the aggregator's store creates its
// own.
func ClickHouse(t testing.TB) string {
	t.Helper()
	addr := ClickHouseAddr(t)
	name := "edgetrack_test_" + randomName()[len("edgetrack_sync_"):]
	t.Cleanup(func() {
		conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}})
		if err != nil {
			return
		}
		defer conn.Close()
		conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name)
	})
	return "clickhouse://" + addr + "/" + name
}

// ClickHouseClusterVar names the ClickHouse cluster the tests use instead
// of the one `make clickhouse-cluster` starts: NAME=HOST:PORT,HOST:PORT,…,
// the cluster's name in its servers' remote_servers and their native
// addresses (the default is DefaultClickHouseCluster).
const ClickHouseClusterVar = "EDGETRACK_TEST_CLICKHOUSE_CLUSTER"

// DefaultClickHouseCluster is the cluster `make clickhouse-cluster` starts:
// two replicas of one shard.
const DefaultClickHouseCluster = "edgetrack_test=127.0.0.1:9101,127.0.0.1:9102"

// ClickHouseClusterDB is a database name of a test's own on a ClickHouse
// cluster.
type ClickHouseClusterDB struct {
	Cluster string   // the cluster's name, for aggregator.store.clickhouse.cluster
	DSNs    []string // the database on each of the cluster's servers: clickhouse://host:port/name
}

// ClickHouseCluster returns a fresh database name on the ClickHouse cluster
// (EDGETRACK_TEST_CLICKHOUSE_CLUSTER, or DefaultClickHouseCluster) when all
// its servers answer and know the cluster, dropped on every server when the
// test ends; without it the test is skipped, or fails in CI. As with
// ClickHouse, the database itself is not created.
func ClickHouseCluster(t testing.TB) ClickHouseClusterDB {
	t.Helper()
	spec, named := os.LookupEnv(ClickHouseClusterVar)
	if !named {
		spec = DefaultClickHouseCluster
	}
	name, list, ok := strings.Cut(spec, "=")
	if !ok || name == "" || list == "" {
		t.Fatalf("%s=%q: want NAME=HOST:PORT,HOST:PORT", ClickHouseClusterVar, spec)
	}
	addrs := strings.Split(list, ",")
	var err error
	for _, addr := range addrs {
		if err = clusterServerAnswers(addr, name); err != nil {
			break
		}
	}
	if err != nil {
		if named {
			t.Fatalf("the ClickHouse cluster named by %s: %v", ClickHouseClusterVar, err)
		}
		testenv.Missing(t, "the ClickHouse cluster "+spec, "make clickhouse-cluster starts it; "+ClickHouseClusterVar+" names another", err)
	}
	db := ClickHouseClusterDB{Cluster: name}
	dbName := "edgetrack_test_" + randomName()[len("edgetrack_sync_"):]
	for _, addr := range addrs {
		db.DSNs = append(db.DSNs, "clickhouse://"+addr+"/"+dbName)
	}
	t.Cleanup(func() {
		conn, err := clickhouse.Open(&clickhouse.Options{Addr: addrs[:1]})
		if err != nil {
			return
		}
		defer conn.Close()
		conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+dbName+" ON CLUSTER "+name)
	})
	return db
}

// clusterServerAnswers checks that the ClickHouse server at addr answers
// and has cluster in its remote_servers.
func clusterServerAnswers(addr, cluster string) error {
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: 2 * time.Second})
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.clusters WHERE cluster = ?", cluster).Scan(&n); err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	if n == 0 {
		return fmt.Errorf("%s has no cluster %q in its remote_servers", addr, cluster)
	}
	return nil
}
