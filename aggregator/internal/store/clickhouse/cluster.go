package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// cluster is how the store reaches every server of its cluster (see the
// package doc: Cluster). The store reads and writes through the
// Distributed tables on the server of its DSN; it looks the copies of ids
// up on every server itself, over a connection to each.
type cluster struct {
	name     string
	replicas []replica // every server of every shard
}

// replica is one server of the cluster.
type replica struct {
	addr string // host:port, as the cluster's config names it
	conn driver.Conn
}

// openCluster reads the servers of cluster name from the server's config
// (system.clusters) and opens a connection to each with the DSN's
// credentials and options (chOpts); the connections dial when first used.
// A number of replicas to wait for larger than a shard's is refused: no
// event could be acknowledged.
func openCluster(ctx context.Context, conn driver.Conn, chOpts *ch.Options, name string, ackReplicas int) (*cluster, error) {
	rows, err := conn.Query(ctx, "SELECT shard_num, host_name, port FROM system.clusters WHERE cluster = ? ORDER BY shard_num, replica_num", name)
	if err != nil {
		return nil, fmt.Errorf("read the cluster: %w", err)
	}
	defer rows.Close()
	c := &cluster{name: name}
	perShard := map[uint32]int{}
	for rows.Next() {
		var shard uint32
		var host string
		var port uint16
		if err := rows.Scan(&shard, &host, &port); err != nil {
			c.close()
			return nil, fmt.Errorf("read the cluster: %w", err)
		}
		perShard[shard]++
		opts := *chOpts
		opts.Addr = []string{net.JoinHostPort(host, strconv.Itoa(int(port)))}
		rc, err := ch.Open(&opts)
		if err != nil {
			c.close()
			return nil, fmt.Errorf("connect to %s: %w", opts.Addr[0], err)
		}
		c.replicas = append(c.replicas, replica{addr: opts.Addr[0], conn: rc})
	}
	if err := rows.Err(); err != nil {
		c.close()
		return nil, fmt.Errorf("read the cluster: %w", err)
	}
	if len(c.replicas) == 0 {
		return nil, fmt.Errorf("the server has no cluster %q in its remote_servers (system.clusters)", name)
	}
	for shard, n := range perShard {
		if ackReplicas > n {
			c.close()
			return nil, fmt.Errorf("acknowledging an event on %d replicas cannot be done: shard %d of cluster %s has %d", ackReplicas, shard, name, n)
		}
	}
	return c, nil
}

func (c *cluster) close() {
	for _, r := range c.replicas {
		r.conn.Close()
	}
}

// holders are the copies of one id, each with how many servers hold it.
type holders map[copyKey]int

// copies returns the copies of each of ids on the servers of the cluster,
// read from each server's own events table: an INSERT that returned has
// written its rows to one server at least, whether or not they have
// reached the others yet. It fails when a server does not answer, as it
// cannot tell which copies that server holds.
func (c *cluster) copies(ctx context.Context, db string, ids []string) (map[string]holders, error) {
	found := make([]map[string]holders, len(c.replicas))
	errs := make([]error, len(c.replicas))
	var wg sync.WaitGroup
	for i, r := range c.replicas {
		wg.Go(func() {
			found[i], errs[i] = copyKeys(ctx, r.conn, db+".events_local", ids)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("server %s of cluster %s (its copies of the events cannot be checked): %w", r.addr, c.name, errs[i])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := map[string]holders{}
	for _, f := range found {
		for id, hs := range f {
			if out[id] == nil {
				out[id] = holders{}
			}
			for k := range hs {
				out[id][k]++
			}
		}
	}
	return out, nil
}

// copyKeys reads the copies of each of ids in table over conn.
func copyKeys(ctx context.Context, conn driver.Conn, table string, ids []string) (map[string]holders, error) {
	t, err := idTable(ids)
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ch.Context(ctx, ch.WithExternalTable(t)),
		"SELECT id, seq, writer FROM "+table+" WHERE id IN (SELECT id FROM ids)")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]holders{}
	for rows.Next() {
		var k copyKey
		if err := rows.Scan(&k.id, &k.seq, &k.writer); err != nil {
			return nil, err
		}
		if out[k.id] == nil {
			out[k.id] = holders{}
		}
		out[k.id][k] = 1
	}
	return out, rows.Err()
}

// least is the canonical copy of each id of copies.
func least(copies map[string]holders) map[string]copyKey {
	best := make(map[string]copyKey, len(copies))
	for id, hs := range copies {
		for k := range hs {
			if b, ok := best[id]; !ok || k.less(b) {
				best[id] = k
			}
		}
	}
	return best
}

// replicationWait bounds how long an Ingest waits for the servers of
// Options.AckReplicas to hold its events.
const replicationWait = 30 * time.Second

// awaitReplicas returns when every one of ids has a copy that
// s.ackReplicas servers hold, looking every few milliseconds (replicas
// fetch a part they are told of in about that), or fails after
// replicationWait.
func (s *Store) awaitReplicas(ctx context.Context, ids []string) error {
	if s.cluster == nil || s.ackReplicas < 2 || len(ids) == 0 {
		return nil
	}
	deadline := time.Now().Add(replicationWait)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		all, err := s.cluster.copies(ctx, s.db, ids)
		if err != nil {
			return fmt.Errorf("wait for %d replicas: %w", s.ackReplicas, err)
		}
		short := ids[:0:0]
		for _, id := range ids {
			held := 0
			for _, n := range all[id] {
				held = max(held, n)
			}
			if held < s.ackReplicas {
				short = append(short, id)
			}
		}
		if ids = short; len(ids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d events are not on %d servers of their shard after %s", len(ids), s.ackReplicas, replicationWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// batch is one INSERT being filled.
type batch = driver.Batch

// send runs one batch INSERT, query naming the table and its columns, fill
// appending the rows.
func (s *Store) send(ctx context.Context, query string, fill func(batch) error) error {
	b, err := s.conn.PrepareBatch(ctx, query)
	if err != nil {
		return err
	}
	if err := fill(b); err != nil {
		b.Abort()
		return err
	}
	return b.Send()
}
