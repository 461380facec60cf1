package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/edgetrack/edgetrack/internal/dbtest"
	"github.com/edgetrack/edgetrack/internal/freeport"
)

// TestClickHouseCluster runs two aggregator processes on one database of a
// ClickHouse cluster of two replicas, each aggregator on its own server,
// each fed by an edge that lists both aggregators, and sends every
// collection to both edges. Each aggregator acknowledges an event once both
// servers hold it (ack_replicas 2). One ClickHouse server is killed
// (SIGKILL) under load and started again. Every event acknowledged is
// stored exactly once, and both aggregators page, count and roll up the
// same (raceTwoAggregators).
func TestClickHouseCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	// The test kills a server, so it runs a cluster of its own beside the
	// one `make clickhouse-cluster` starts, sharing its ZooKeeper.
	dbtest.ClickHouseCluster(t)
	c := startCluster(t)
	db := c.database()
	var env [2][]string
	for i, addr := range c.addrs {
		env[i] = []string{
			"EDGETRACK_AGGREGATOR_STORE_BACKEND=clickhouse", "EDGETRACK_AGGREGATOR_STORE_CLICKHOUSE_DSN=clickhouse://" + addr + "/" + db,
			"EDGETRACK_AGGREGATOR_STORE_CLICKHOUSE_CLUSTER=" + c.name, "EDGETRACK_AGGREGATOR_STORE_CLICKHOUSE_ACK_REPLICAS=2",
		}
	}
	var downAt time.Time
	raceTwoAggregators(t, race{
		env: env, failover: true, serverKilled: true,
		down: func(a, b *aggPair) { // in a sender's goroutine
			if _, err := c.script("kill", "2"); err != nil {
				t.Error(err)
			}
			downAt = time.Now()
		},
		up: func(a, b *aggPair) {
			time.Sleep(time.Second)
			if _, err := c.script("start"); err != nil {
				t.Fatal(err)
			}
			t.Logf("server 2 was down for %s", time.Since(downAt).Round(time.Millisecond))
		},
	})
}

// testCluster is a ClickHouse cluster of a test's own, run by
// scripts/clickhouse-cluster.sh with its files in a temporary directory.
type testCluster struct {
	t     *testing.T
	env   []string
	name  string
	addrs []string
}

// startCluster starts the cluster, on ports nobody else uses, and stops it
// when the test ends.
func startCluster(t *testing.T) *testCluster {
	t.Helper()
	c := &testCluster{t: t, env: append(os.Environ(),
		"CLICKHOUSE_CLUSTER_PORT="+strconv.Itoa(freeport.Range(t, 11)),
		"CLICKHOUSE_CLUSTER_DIR="+t.TempDir(),
		"CLICKHOUSE_CLUSTER_NAME=e2e",
	)}
	t.Cleanup(func() {
		if _, err := c.script("stop"); err != nil {
			t.Error(err)
		}
	})
	began := time.Now()
	out, err := c.script("start")
	if err != nil {
		t.Fatal(err)
	}
	name, addrs, _ := strings.Cut(strings.TrimSpace(out), "=")
	c.name, c.addrs = name, strings.Split(addrs, ",")
	t.Logf("cluster %s on %s started in %s", c.name, addrs, time.Since(began).Round(time.Millisecond))
	return c
}

// database returns a fresh database name, dropped from every server when
// the test ends (the cluster shares ZooKeeper, where its tables' replicas
// are registered, with other clusters).
func (c *testCluster) database() string {
	var b [6]byte
	rand.Read(b[:])
	name := "edgetrack_e2e_" + hex.EncodeToString(b[:])
	c.t.Cleanup(func() {
		for _, addr := range c.addrs {
			conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}})
			if err != nil {
				continue
			}
			conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name)
			conn.Close()
		}
	})
	return name
}

// script runs scripts/clickhouse-cluster.sh with args and returns what it
// prints.
func (c *testCluster) script(args ...string) (string, error) {
	cmd := exec.Command("../../scripts/clickhouse-cluster.sh", args...)
	cmd.Env = c.env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("clickhouse-cluster.sh %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}
