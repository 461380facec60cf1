// Package dbtest gives tests a fresh database on the PostgreSQL and MariaDB
// servers that run on our machines (127.0.0.1:5432 user postgres,
// 127.0.0.1:3306 user root). Without a server the test is skipped, or
// fails in CI.
//
// SQL Server cannot run on our machines: SQLServer uses the server named by
// EDGETRACK_TEST_SQLSERVER (sqlserver://user:pass@host:1433, a login that
// may create databases) and skips without it, in CI too; a named server
// that cannot be reached fails the test.
package dbtest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	"net/url"

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
