package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/internal/dbtest"
	"github.com/edgetrack/edgetrack/internal/ruleapi"
	"github.com/edgetrack/edgetrack/internal/syncbuf"
	"github.com/edgetrack/edgetrack/wasm/dist"
	"github.com/edgetrack/edgetrack/wasm/rules/hamustro/hamustrotest"
)

// openShared opens a registry on the ClickHouse database of dsn that reads
// what others wrote every poll.
func openShared(tb testing.TB, dsn string, poll time.Duration) *Registry {
	tb.Helper()
	r, err := Open(context.Background(), Options{ClickHouseDSN: dsn, PollInterval: poll, Logger: quiet})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

// variant is the built-in hamustro module with a custom section (id 0,
// size, name length, name "t", contents) that holds tag: another version
// of the rule, which passes validation.
func variant(tag string) []byte {
	b, _ := dist.Rule("hamustro")
	out := append(append([]byte{}, b...), 0x00, byte(2+len(tag)), 0x01, 't')
	return append(out, tag...)
}

// eventually fails tb unless cond holds within a minute.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("after a minute: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// versions lists the versions of rule, without the edges.
func versions(r *Registry, rule string) []ruleapi.VersionListing {
	return r.List().Rules[rule].Versions
}

// TestSharedRegistry runs two registries on one ClickHouse database: what
// one uploads, activates or rolls back, and the status an edge reports to
// one, the other serves; a registry opened again reads it all back.
func TestSharedRegistry(t *testing.T) {
	dsn := dbtest.ClickHouse(t)
	ctx := context.Background()
	a, b := openShared(t, dsn, 20*time.Millisecond), openShared(t, dsn, 20*time.Millisecond)

	v1 := variant("v1")
	vecs := []byte(`{"settings": {"secrets": ["` + hamustrotest.Secret + `"]}, "vectors": []}`)
	u, created, err := a.Upload(ctx, "hamustro", v1, vecs, "tester")
	if err != nil || !created {
		t.Fatalf("Upload on A = %+v, %v, %v", u, created, err)
	}
	act, err := a.Activate("hamustro", u.Hash[:8], "tester")
	if err != nil || !act.Changed || act.Version != 2 {
		t.Fatalf("Activate on A = %+v, %v", act, err)
	}
	// A long-poll on B wakes for the activation on A.
	m, changed := b.Wait(ctx, 1, time.Minute)
	if !changed || m.Version != 2 || m.Rules["hamustro"].Hash != u.Hash || m.Rules["hamustro"].Source != ruleapi.SourceRegistry {
		t.Fatalf("B's manifest after the activation on A: %+v (changed %v)", m, changed)
	}
	got, err := b.Module(u.Hash)
	if err != nil || !bytes.Equal(got, v1) {
		t.Fatalf("B serves module %s: %d bytes, %v", u.Hash[:12], len(got), err)
	}
	if va, vb := versions(a, "hamustro"), versions(b, "hamustro"); !slices.Equal(va, vb) || len(va) != 1 ||
		vb[0].UploadedBy != "tester" || vb[0].Vectors == "" || !vb[0].Active {
		t.Fatalf("versions on A %+v, on B %+v", va, vb)
	}
	if _, created, err := b.Upload(ctx, "hamustro", v1, nil, "tester"); err != nil || created {
		t.Fatalf("the same bytes uploaded on B: created %v, %v", created, err)
	}

	// B rolls back; A follows.
	if act, err := b.Rollback("hamustro", "tester"); err != nil || act.Active != ruleapi.Builtin || act.Version != 3 {
		t.Fatalf("Rollback on B = %+v, %v", act, err)
	}
	eventually(t, "A serves the rollback on B", func() bool {
		m := a.Manifest()
		return m.Version == 3 && m.Rules["hamustro"].Source == ruleapi.SourceBuiltin
	})

	// An edge reports to B; A lists it.
	if err := b.Report("edge-1", map[string]ruleapi.RuleStatus{"hamustro": {Active: u.Hash}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "A lists the edge that reported to B", func() bool {
		e := a.List().Rules["hamustro"].Edges
		return len(e) == 1 && e[0].Edge == "edge-1" && e[0].Active == u.Hash
	})

	// Opened again, B reads the same state back: versions, manifest,
	// history (nothing left to roll back to) and the edge.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openShared(t, dsn, 20*time.Millisecond)
	if ma, mb := a.Manifest(), b.Manifest(); mb.Version != 3 || fmt.Sprint(ma) != fmt.Sprint(mb) {
		t.Fatalf("manifest after reopening: %+v, A has %+v", mb, ma)
	}
	if va, vb := versions(a, "hamustro"), versions(b, "hamustro"); !slices.Equal(va, vb) {
		t.Fatalf("versions after reopening: %+v, A has %+v", vb, va)
	}
	if e := b.List().Rules["hamustro"].Edges; len(e) != 1 || e[0].Edge != "edge-1" {
		t.Fatalf("edges after reopening: %+v", e)
	}
	if _, err := b.Rollback("hamustro", "tester"); !errors.Is(err, ErrNoPrevious) {
		t.Fatalf("Rollback after reopening = %v, want ErrNoPrevious", err)
	}
}

// TestSharedConcurrentActivations activates versions on two registries of
// one database at once, from several goroutines each: every activation
// that changed something has its own manifest version, and both registries
// end with the same state, which a third opened afterwards replays too.
func TestSharedConcurrentActivations(t *testing.T) {
	dsn := dbtest.ClickHouse(t)
	ctx := context.Background()
	a, b := openShared(t, dsn, 5*time.Millisecond), openShared(t, dsn, time.Hour) // b learns only when it writes
	var hashes []string
	for i, r := range []*Registry{a, b, a} {
		u, _, err := r.Upload(ctx, "hamustro", variant(fmt.Sprint("c", i)), nil, "tester")
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, u.Hash)
	}
	hashes = append(hashes, ruleapi.Builtin)

	var (
		mu       sync.Mutex
		versions = map[int64]string{}
		changed  int
		wg       sync.WaitGroup
	)
	for g := range 4 {
		r := []*Registry{a, b}[g%2]
		wg.Go(func() {
			for i := range 15 {
				act, err := r.Activate("hamustro", hashes[(g+i)%len(hashes)], fmt.Sprint("g", g))
				if err != nil {
					t.Error(err)
					return
				}
				if !act.Changed {
					continue
				}
				mu.Lock()
				if other, dup := versions[act.Version]; dup {
					t.Errorf("manifest version %d given twice: %s and %s", act.Version, other, act.Active)
				}
				versions[act.Version] = act.Active
				changed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	final := int64(1 + changed)
	// b catches up when it writes: a report is no entry of the log, so
	// make it read by activating what is active.
	last := versions[final]
	if act, err := b.Activate("hamustro", last, "tester"); err != nil || act.Changed || act.Version != final {
		t.Fatalf("B: Activate(the active version) = %+v, %v; want version %d unchanged", act, err, final)
	}
	eventually(t, "A reaches the final version", func() bool { return a.Manifest().Version == final })
	c := openShared(t, dsn, time.Hour)
	for _, r := range []*Registry{a, b, c} {
		r.mu.Lock()
		m, h := r.manifest(), fmt.Sprint(r.history["hamustro"])
		r.mu.Unlock()
		if m.Version != final || m.Rules["hamustro"].Hash != a.Manifest().Rules["hamustro"].Hash {
			t.Errorf("manifest %+v, want version %d", m, final)
		}
		a.mu.Lock()
		want := fmt.Sprint(a.history["hamustro"])
		a.mu.Unlock()
		if h != want {
			t.Errorf("rollback history %s, A has %s", h, want)
		}
	}
	entries, end, err := c.store.entries(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d activations changed the active version; %d appends lost a race and were made again", changed, end-int64(len(entries)))
}

// TestClickHouseLogCountsClaimedPositions appends from two storages at a
// position both read: the second lands after the first and counts for
// nothing, and its writer's retry at the log's new end counts.
func TestClickHouseLogCountsClaimedPositions(t *testing.T) {
	dsn := dbtest.ClickHouse(t)
	ctx := context.Background()
	s1, err := openClickHouse(ctx, dsn, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer s1.close()
	s2, err := openClickHouse(ctx, dsn, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.close()
	e1 := AuditEntry{Time: time.Now().UTC(), Action: ActionActivate, Rule: "hamustro", Hash: "one", Previous: ruleapi.Builtin}
	e2 := AuditEntry{Time: time.Now().UTC(), Action: ActionActivate, Rule: "hamustro", Hash: "two", Previous: ruleapi.Builtin}
	for _, step := range []struct {
		s    *chStorage
		at   int64
		e    AuditEntry
		want bool
	}{{s1, 0, e1, true}, {s2, 0, e2, false}, {s2, 2, e2, true}} {
		ok, err := step.s.append(ctx, step.at, step.e)
		if err != nil || ok != step.want {
			t.Fatalf("append %s at %d = %v, %v; want %v", step.e.Hash, step.at, ok, err, step.want)
		}
	}
	entries, end, err := s1.entries(ctx, 0)
	if err != nil || end != 3 || len(entries) != 2 || entries[0].Hash != "one" || entries[1].Hash != "two" {
		t.Fatalf("entries = %+v, end %d, %v; want one, two and end 3", entries, end, err)
	}
	if entries, end, err := s2.entries(ctx, 1); err != nil || end != 3 || len(entries) != 1 || entries[0].Hash != "two" {
		t.Fatalf("entries from 1 = %+v, end %d, %v", entries, end, err)
	}
}

// TestSharedRegistryWarnsOfFiles: a registry in the data directory is not
// served once the registry is in ClickHouse, and Open says so.
func TestSharedRegistryWarnsOfFiles(t *testing.T) {
	dsn := dbtest.ClickHouse(t)
	dir := t.TempDir()
	h := seed(t, dir, 1)[0]
	writeAudit(t, dir, auditLine(t, AuditEntry{Action: ActionActivate, Rule: "hamustro", Hash: h, Previous: ruleapi.Builtin}))
	var logs syncbuf.Buffer
	r, err := Open(context.Background(), Options{Dir: dir, ClickHouseDSN: dsn, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if m := r.Manifest(); m.Version != 1 || m.Rules["hamustro"].Source != ruleapi.SourceBuiltin {
		t.Errorf("manifest %+v, want the built-in rules only", m)
	}
	if !strings.Contains(logs.String(), "rule registry in the data directory is not served") {
		t.Errorf("no warning in the log:\n%s", logs.String())
	}
}
