// Package dbtest gives tests a fresh database on the PostgreSQL and MariaDB
// servers that run on our machines (127.0.0.1:5432 user postgres,
// 127.0.0.1:3306 user root). Without a server the test is skipped, or
// fails in CI.
package dbtest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"testing"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// Database is a fresh database on a local server, dropped when the test ends.
type Database struct {
	URL string // the target URL for edgetrack sync
	DB  *sql.DB
}

// required: in CI (EDGETRACK_REQUIRE_SERVERS or CI set) a missing server fails
// the test instead of skipping it.
func required() bool {
	return os.Getenv("CI") != "" || os.Getenv("EDGETRACK_REQUIRE_SERVERS") != ""
}

func randomName() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "edgetrack_sync_" + hex.EncodeToString(b)
}

// Postgres creates a database on 127.0.0.1:5432 (user postgres).
func Postgres(t testing.TB) Database {
	t.Helper()
	admin, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	if err == nil {
		err = admin.Ping()
	}
	if err != nil {
		if required() {
			t.Fatalf("PostgreSQL on 127.0.0.1:5432 is required in CI: %v", err)
		}
		t.Skipf("no PostgreSQL on 127.0.0.1:5432 (user postgres): %v", err)
	}
	name := randomName()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	u := "postgres://postgres@127.0.0.1:5432/" + name + "?sslmode=disable"
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		admin.Close()
	})
	return Database{URL: u, DB: db}
}

// MariaDB creates a database on 127.0.0.1:3306 (user root).
func MariaDB(t testing.TB) Database {
	t.Helper()
	admin, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/")
	if err == nil {
		err = admin.Ping()
	}
	if err != nil {
		if required() {
			t.Fatalf("MariaDB on 127.0.0.1:3306 is required in CI: %v", err)
		}
		t.Skipf("no MariaDB/MySQL on 127.0.0.1:3306 (user root): %v", err)
	}
	name := randomName()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	u := "mysql://root@127.0.0.1:3306/" + name
	db, err := sql.Open("mysql", "root@tcp(127.0.0.1:3306)/"+name+"?parseTime=true&loc=UTC")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		admin.Exec("DROP DATABASE IF EXISTS " + name)
		admin.Close()
	})
	return Database{URL: u, DB: db}
}
