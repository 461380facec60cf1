package clickhouse

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/aggregator/internal/store/storetest"
	"github.com/edgetrack/edgetrack/internal/dbtest"
	"github.com/edgetrack/edgetrack/internal/subject"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// atVersion makes the database of dsn as a store of schema version v
// does, and returns it open at that version (its calls may not all work).
func atVersion(tb testing.TB, dsn string, v uint32) *Store {
	tb.Helper()
	opts, db, err := ParseDSN(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	opts.Auth.Database = "default"
	conn, err := ch.Open(opts)
	if err != nil {
		tb.Fatal(err)
	}
	s := &Store{conn: conn, db: db, layout: layout{db: db}, log: quiet, writer: 1}
	tb.Cleanup(func() { conn.Close() })
	if err := s.migrateTo(context.Background(), v); err != nil {
		tb.Fatal(err)
	}
	return s
}

// insertV1 inserts events as a store of schema version 1 did: without the
// subject columns.
func insertV1(tb testing.TB, s *Store, seq uint64, events ...*eventpb.Event) {
	tb.Helper()
	b, err := s.conn.PrepareBatch(context.Background(), "INSERT INTO "+s.table("events")+
		" (id, seq, writer, event_time, session, category, name, body)")
	if err != nil {
		tb.Fatal(err)
	}
	for i, ev := range events {
		body, err := marshal.Marshal(ev)
		if err != nil {
			tb.Fatal(err)
		}
		if err := b.Append(ev.GetId(), seq+uint64(i), s.writer, store.EventTime(ev), ev.GetSession(), ev.GetCategory(), ev.GetName(), string(body)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		tb.Fatal(err)
	}
}

// subjectData are the forms a user or device takes in events' data; the
// escaped, numeric and object ones are those that a search of the body for
// the value does not find as it is.
var subjectData = []string{
	`{"user_id":"u1"}`,
	`{"user_id":"u\u0031","k":1}`,
	`{"user_id":1}`,
	`{"user_id":10}`,
	`{"nested":{"user_id":"u1"}}`,
	`{"user_id": {"a": 1}}`,
	`{"device_id":"d1","user_id":"u2"}`,
	`{"device_\u0069d":"d1"}`,
	`not json u1`,
	`{}`,
}

func subjectEvents(suffix string, n int) []*eventpb.Event {
	events := storetest.Dataset(n, 7)
	for i, ev := range events {
		ev.Id += suffix
		ev.Data = []byte(subjectData[i%len(subjectData)])
	}
	return events
}

// TestEraseAcrossSchemaVersions: a database of schema version 1 with
// events in it is migrated by Open (also when the migration was cut short
// after its first column), more events are ingested, and erasures of
// users, devices and a session then remove exactly the events
// store.SubjectMatches names, of either version, whatever form the value
// has in the data.
func TestEraseAcrossSchemaVersions(t *testing.T) {
	dsn := dbtest.ClickHouse(t)
	old := atVersion(t, dsn, 1)
	v1 := subjectEvents("-v1", 300)
	insertV1(t, old, 1, v1...)
	// A migration to version 2 that stopped after its first statement.
	if err := old.conn.Exec(context.Background(), old.layout.expand(migrations[1][0])[0]); err != nil {
		t.Fatal(err)
	}
	s := openAt(t, dsn)
	v2 := subjectEvents("-v2", 300)
	storetest.Ingest(t, s, v2...)
	kept := slices.Concat(v1, v2)
	storetest.CheckStored(t, s, kept)

	for _, sub := range []store.Subject{
		{Kind: subject.User, Value: "u1"},
		{Kind: subject.User, Value: "1"},
		{Kind: subject.User, Value: `{"a":1}`},
		{Kind: subject.User, Value: "u2"},
		{Kind: subject.Device, Value: "d1"},
		{Kind: subject.Session, Value: "s3"},
	} {
		rest, of := storetest.Split(kept, sub)
		want := storetest.IDs(of)
		if len(want) == 0 {
			t.Fatalf("no event of %s: the test proves nothing", sub)
		}
		got, err := s.Erase(context.Background(), sub)
		if err != nil {
			t.Fatalf("erase %s: %v", sub, err)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("erase %s: %d ids, want %d\n got %q\nwant %q", sub, len(got), len(want), got, want)
		}
		kept = rest
		storetest.CheckErased(t, s, kept, nil)
	}
	storetest.CheckStored(t, s, kept)
}

// TestEraseRacingCopies: events that two aggregators inserted at once (two
// rows each, recorded in duplicates) are erased whole: every row of them
// goes, their ids leave duplicates, each id is returned once, and the
// others' events and counts are as before.
func TestEraseRacingCopies(t *testing.T) {
	dsn := dbtest.ClickHouse(t)
	a, b := openAt(t, dsn), openAt(t, dsn)
	events := storetest.Spread(200, 61)
	storetest.Ingest(t, a, events...)
	ids := slipThrough(t, b, events[:60]...)
	if _, err := b.checkRaces(context.Background(), ids); err != nil {
		t.Fatal(err)
	}
	sub := store.Subject{Kind: subject.Session, Value: "s1"}
	kept, of := storetest.Split(events, sub)
	want := storetest.IDs(of)
	got, err := b.Erase(context.Background(), sub)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("erased %d ids, want %d", len(got), len(want))
	}
	var left, dups uint64
	if err := a.conn.QueryRow(context.Background(), "SELECT count() FROM "+a.table("events")+" WHERE session = 's1'").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if err := a.conn.QueryRow(context.Background(), "SELECT count() FROM "+a.table("duplicates")+" WHERE id NOT IN (SELECT id FROM "+
		a.table("events")+")").Scan(&dups); err != nil {
		t.Fatal(err)
	}
	if left != 0 || dups != 0 {
		t.Fatalf("after the erasure: %d rows of the session, %d ids in duplicates without rows; want none", left, dups)
	}
	for _, s := range []*Store{a, b} {
		storetest.CheckStored(t, s, kept)
	}
}

// TestRemovalsOfTwoStores: two stores on one database (two aggregators)
// run retention passes and erasures of the same events at the same time.
// Between them they remove each event once (the counts they report add up
// to the events expired, and each erased id is returned by one of them),
// and both count exactly the events left.
func TestRemovalsOfTwoStores(t *testing.T) {
	dsn := dbtest.ClickHouse(t)
	stores := []*Store{openAt(t, dsn), openAt(t, dsn)}
	base := time.Unix(1_700_000_000, 0)
	r := store.Retention{Default: time.Hour, Categories: map[string]time.Duration{"click": 0}}
	var kept []*eventpb.Event
	for round := range 4 {
		var fresh []*eventpb.Event
		for i := range 400 {
			ev := storetest.Event(fmt.Sprintf("id-r%d-%04d", round, i), base.Unix()+int64(i*60), []string{"s1", "s2"}[i%2], []string{"view", "click", ""}[i%3], "home")
			fresh = append(fresh, ev)
		}
		storetest.Ingest(t, stores[round%2], fresh...)
		kept = append(kept, fresh...)
		now := base.Add(time.Hour + time.Duration(100*(round+1))*time.Minute)
		var expired int
		var next []*eventpb.Event
		for _, ev := range kept {
			if r.Expired(ev, now) {
				expired++
			} else {
				next = append(next, ev)
			}
		}
		kept = next
		var wg sync.WaitGroup
		removed := make([]int, 2)
		errs := make([]error, 2)
		for i, s := range stores {
			wg.Go(func() {
				st, err := s.Expire(context.Background(), r, now)
				removed[i], errs[i] = st.Removed, err
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if removed[0]+removed[1] != expired {
			t.Fatalf("round %d: the stores removed %v events, want %d in all", round, removed, expired)
		}
		for _, s := range stores {
			storetest.CheckStored(t, s, kept)
		}
	}

	sub := store.Subject{Kind: subject.Session, Value: "s2"}
	rest, of := storetest.Split(kept, sub)
	want := storetest.IDs(of)
	all := storetest.EraseAtOnce(t, sub, nil, stores[0], stores[1])
	slices.Sort(want)
	if !slices.Equal(all, want) {
		t.Fatalf("the two erasures returned %d ids in all, want each of %d once", len(all), len(want))
	}
	for _, s := range stores {
		storetest.CheckErased(t, s, rest, nil)
		storetest.CheckStored(t, s, rest)
	}
	t.Logf("%d claimed rows were removed by the other store's removal", rowsOfKind(t, stores[0], claimLost))
}

func rowsOfKind(tb testing.TB, s *Store, kind uint8) uint64 {
	tb.Helper()
	var n uint64
	if err := s.conn.QueryRow(context.Background(), "SELECT count() FROM "+s.table("lifecycle")+" WHERE kind = ?", kind).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// TestRemovalFinishedLater: a removal whose wait for its DELETE ends early
// (its context) has removed its events; the store's next removal counts
// them down in the rollups before its own, so that Stats is exact again.
func TestRemovalFinishedLater(t *testing.T) {
	s := openAt(t, dbtest.ClickHouse(t))
	events := storetest.Spread(300, 71)
	storetest.Ingest(t, s, events...)
	sub := store.Subject{Kind: subject.Session, Value: "s2"}
	kept, _ := storetest.Split(events, sub)

	ctx, cancel := context.WithCancel(context.Background())
	end, err := s.beginRemoval(ctx)
	if err != nil {
		t.Fatal(err)
	}
	token, err := newToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.claimStored(ctx, token, "session = ?", sub.Value); err != nil {
		t.Fatal(err)
	}
	// Canceled once the DELETE is submitted and decided.
	err = s.remove(ctx, token, true, func(string, []any) error { cancel(); return nil })
	end()
	if err == nil || len(s.removals.pending) != 1 {
		t.Fatalf("remove with its context canceled: %v, %d pending; want an error and it pending", err, len(s.removals.pending))
	}
	if _, err := s.Erase(context.Background(), store.Subject{Kind: subject.User, Value: "nobody"}); err != nil {
		t.Fatal(err)
	}
	if len(s.removals.pending) != 0 {
		t.Fatal("the next removal left the earlier one pending")
	}
	storetest.CheckStored(t, s, kept)
}

// TestEraseLeavesNoTrace: after an erasure of a session, which its
// events' ids hold too (as Hamustro's and cookie-sync matches' do), no
// column of any table of the database holds it — not the events, not the
// claims of the removal, not duplicates — and no mutation's command names
// it.
func TestEraseLeavesNoTrace(t *testing.T) {
	dsn := dbtest.ClickHouse(t)
	a, b := openAt(t, dsn), openAt(t, dsn)
	const victim = "victim-7f3c"
	var events []*eventpb.Event
	for i := range 40 {
		sess := []string{victim, "other"}[i%2]
		events = append(events, storetest.Event(fmt.Sprintf("h:%s:%d", sess, i), int64(1_700_000_000+i), sess, "view", "home"))
	}
	storetest.Ingest(t, a, events...)
	if _, err := b.checkRaces(context.Background(), slipThrough(t, b, events[:10]...)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Erase(context.Background(), store.Subject{Kind: subject.Session, Value: victim}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rows, err := a.conn.Query(ctx, "SELECT table, name FROM system.columns WHERE database = ? AND type = 'String'", a.db)
	if err != nil {
		t.Fatal(err)
	}
	var cols [][2]string
	for rows.Next() {
		var c [2]string
		if err := rows.Scan(&c[0], &c[1]); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	rows.Close()
	if len(cols) < 10 {
		t.Fatalf("only %d string columns found: %v", len(cols), cols)
	}
	for _, c := range cols {
		var n uint64
		if err := a.conn.QueryRow(ctx, "SELECT count() FROM "+a.table(c[0])+" WHERE position("+c[1]+", ?) > 0", victim).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			t.Errorf("%d rows of %s hold the erased session in %s", n, c[0], c[1])
		}
	}
	var n uint64
	if err := a.conn.QueryRow(ctx, "SELECT count() FROM system.mutations WHERE database = ? AND position(command, ?) > 0", a.db, victim).Scan(&n); err != nil || n > 0 {
		t.Fatalf("%d mutations name the erased session (%v)", n, err)
	}
}

// TestOldClaimsDropped: a removal deletes the claims of removals that
// ended claimGrace ago, and keeps newer ones.
func TestOldClaimsDropped(t *testing.T) {
	s := openAt(t, dbtest.ClickHouse(t))
	ctx := context.Background()
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.table("lifecycle")+" (token, kind, seq, writer, claimed_at)")
	if err != nil {
		t.Fatal(err)
	}
	for i, tok := range []string{"old-removal", "new-removal"} {
		at := time.Now().Add(-2 * claimGrace)
		if i == 1 {
			at = time.Now()
		}
		if err := b.Append(tok, uint8(claimRow), uint64(i), uint64(1), at); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Erase(ctx, store.Subject{Kind: subject.Session, Value: "nobody"}); err != nil {
		t.Fatal(err)
	}
	// The deletion is not waited for.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		left, err := s.strings(ctx, "SELECT DISTINCT token FROM "+s.table("lifecycle"))
		if err != nil {
			t.Fatal(err)
		}
		if slices.Equal(left, []string{"new-removal"}) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("claims left: %q, want those of new-removal only", left)
		}
	}
}
