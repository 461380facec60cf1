package registry

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/internal/ruleapi"
	"github.com/edgetrack/edgetrack/wasm/dist"
	"github.com/edgetrack/edgetrack/wasm/host"
)

var quiet = slog.New(slog.DiscardHandler)

func open(tb testing.TB, dir string) *Registry {
	tb.Helper()
	r, err := Open(context.Background(), Options{Dir: dir, Logger: quiet})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

// seed writes modules (as files, bypassing validation) and an index that
// lists them as versions of hamustro, and returns their hashes.
func seed(tb testing.TB, dir string, n int) []string {
	tb.Helper()
	b, _ := dist.Rule("hamustro")
	idx := index{Version: 1, Rules: map[string]*ruleIndex{"hamustro": {Active: ruleapi.Builtin}}}
	var hashes []string
	for i := range n {
		// A custom section (id 0) makes another hash of the same module.
		wasm := append(append([]byte{}, b...), 0x00, 0x02, 0x01, byte('a'+i))
		h := host.Hash(wasm)
		if err := os.MkdirAll(filepath.Join(dir, "modules"), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "modules", h+".wasm"), wasm, 0o644); err != nil {
			tb.Fatal(err)
		}
		idx.Rules["hamustro"].Versions = append(idx.Rules["hamustro"].Versions, ruleapi.Version{Hash: h, Size: len(wasm), UploadedBy: "seed"})
		hashes = append(hashes, h)
	}
	if err := writeJSONFile(dir, "index.json", &idx); err != nil {
		tb.Fatal(err)
	}
	return hashes
}

func writeAudit(tb testing.TB, dir string, lines ...string) {
	tb.Helper()
	if err := os.WriteFile(filepath.Join(dir, "audit.log"), []byte(strings.Join(lines, "")), 0o600); err != nil {
		tb.Fatal(err)
	}
}

func auditLine(tb testing.TB, e AuditEntry) string {
	tb.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b) + "\n"
}

func TestOpenCutsATornAuditLine(t *testing.T) {
	dir := t.TempDir()
	h := seed(t, dir, 1)[0]
	writeAudit(t, dir,
		auditLine(t, AuditEntry{Action: ActionActivate, Rule: "hamustro", Hash: h, Previous: ruleapi.Builtin}),
		`{"action":"rollback","rule":"hamus`) // a crash in the middle of an append
	r := open(t, dir)
	if m := r.Manifest(); m.Version != 2 || m.Rules["hamustro"].Hash != h {
		t.Fatalf("manifest %+v, want version 2 with %s", m, h[:12])
	}
	if _, err := r.Rollback("hamustro", "test"); err != nil {
		t.Fatal(err)
	}
	r.Close()

	b, err := os.ReadFile(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], `"action":"rollback"`) || strings.Contains(string(b), "hamus\"") {
		t.Fatalf("audit log after the torn line and a rollback:\n%s", b)
	}
	r = open(t, dir)
	if m := r.Manifest(); m.Version != 3 || m.Rules["hamustro"].Source != ruleapi.SourceBuiltin {
		t.Fatalf("manifest after reopening: %+v", m)
	}
}

func TestOpenRefusesACorruptAuditLog(t *testing.T) {
	dir := t.TempDir()
	writeAudit(t, dir, "not json\n", auditLine(t, AuditEntry{Action: ActionUpload, Rule: "hamustro", Hash: "x"}))
	_, err := Open(context.Background(), Options{Dir: dir, Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("Open = %v, want an error naming line 1", err)
	}
}

func TestAuditLogWinsOverTheIndex(t *testing.T) {
	dir := t.TempDir()
	hs := seed(t, dir, 2)
	// The index says hs[0] is active, the log says hs[1]: a crash after
	// the audit entry and before index.json was written.
	var idx index
	if err := readJSONFile(dir, "index.json", &idx); err != nil {
		t.Fatal(err)
	}
	idx.Rules["hamustro"].Active = hs[0]
	if err := writeJSONFile(dir, "index.json", &idx); err != nil {
		t.Fatal(err)
	}
	writeAudit(t, dir,
		auditLine(t, AuditEntry{Action: ActionActivate, Rule: "hamustro", Hash: hs[0], Previous: ruleapi.Builtin}),
		auditLine(t, AuditEntry{Action: ActionActivate, Rule: "hamustro", Hash: hs[1], Previous: hs[0]}))
	r := open(t, dir)
	if m := r.Manifest(); m.Version != 3 || m.Rules["hamustro"].Hash != hs[1] {
		t.Fatalf("manifest %+v, want version 3 with %s", m, hs[1][:12])
	}
	var after index
	if err := readJSONFile(dir, "index.json", &after); err != nil {
		t.Fatal(err)
	}
	if after.Rules["hamustro"].Active != hs[1] || after.Version != 3 {
		t.Errorf("index.json was not rewritten: %+v", after.Rules["hamustro"])
	}
	// The history was replayed too: back to hs[0], then the built-in.
	for _, want := range []string{hs[0], ruleapi.Builtin} {
		a, err := r.Rollback("hamustro", "test")
		if err != nil || a.Active != want {
			t.Fatalf("Rollback = %+v, %v; want %s", a, err, want)
		}
	}
	if _, err := r.Rollback("hamustro", "test"); !errors.Is(err, ErrNoPrevious) {
		t.Fatalf("Rollback = %v, want ErrNoPrevious", err)
	}
}

func TestOpenFailsWhenTheActiveModuleIsGone(t *testing.T) {
	dir := t.TempDir()
	h := seed(t, dir, 1)[0]
	writeAudit(t, dir, auditLine(t, AuditEntry{Action: ActionActivate, Rule: "hamustro", Hash: h, Previous: ruleapi.Builtin}))
	if err := os.Remove(filepath.Join(dir, "index.json")); err != nil {
		t.Fatal(err)
	}
	r := open(t, dir) // the version entry is rebuilt from the module file
	if v := r.List().Rules["hamustro"].Versions; len(v) != 1 || v[0].Hash != h || v[0].UploadedBy != "unknown" {
		t.Fatalf("versions %+v", v)
	}
	r.Close()
	if err := os.Remove(filepath.Join(dir, "modules", h+".wasm")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "index.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), Options{Dir: dir, Logger: quiet}); err == nil {
		t.Fatal("Open succeeded without the active module")
	}
}

// TestHammerWaitAndActivate runs long-polls against a stream of
// activations: every poll must end (none misses its wake-up), and each
// waiter sees versions only grow.
func TestHammerWaitAndActivate(t *testing.T) {
	dir := t.TempDir()
	hs := seed(t, dir, 2)
	r := open(t, dir)
	const activations = 200
	final := r.Manifest().Version + activations

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			since := int64(0)
			for since < final {
				m, _ := r.Wait(context.Background(), since, time.Minute)
				if m.Version < since {
					t.Errorf("version went back from %d to %d", since, m.Version)
					return
				}
				since = m.Version
			}
		})
	}
	for i := range activations {
		if _, err := r.Activate("hamustro", hs[i%2], "test"); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if got := r.Manifest().Version; got != final {
		t.Fatalf("version %d, want %d", got, final)
	}
}
