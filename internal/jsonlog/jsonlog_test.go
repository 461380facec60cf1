package jsonlog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type rec struct {
	N int    `json:"n"`
	S string `json:"s"`
}

// TestTornLine: a last line without its newline (a torn append) is cut off
// at Open, and the next Append starts on a line of its own.
func TestTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	l, recs, err := Open[rec](path)
	if err != nil || len(recs) != 0 {
		t.Fatalf("open: %v, %d records", err, len(recs))
	}
	for i := range 3 {
		if err := l.Append(rec{N: i, S: "a"}); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"n":9,"s":"tor`)
	f.Close()
	l, recs, err = Open[rec](path)
	if err != nil || len(recs) != 3 || recs[2].N != 2 {
		t.Fatalf("reopen: %v, %+v", err, recs)
	}
	if err := l.Append(rec{N: 3}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	_, recs, err = Open[rec](path)
	if err != nil || len(recs) != 4 || recs[3].N != 3 {
		t.Fatalf("after an append past the torn line: %v, %+v", err, recs)
	}
	os.WriteFile(path, []byte("{\"n\":1}\nnot json\n"), 0o600)
	if _, _, err := Open[rec](path); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("a bad line in the middle: %v, want an error naming line 2", err)
	}
}

// FuzzRead: the reader never panics, keeps only complete lines, and
// what it keeps decodes again to the same records.
func FuzzRead(f *testing.F) {
	f.Add([]byte(`{"action":"activate","rule":"eye","hash":"ab","previous":"builtin"}` + "\n"))
	f.Add([]byte(`{"action":"upload"}` + "\n" + `{"act`))
	f.Add([]byte("\n\n"))
	f.Add([]byte(`{"time":"2026-01-02T03:04:05Z"}` + "\n" + "not json\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, good, err := Read[map[string]any](strings.NewReader(string(b)))
		if err != nil {
			return
		}
		if good < 0 || good > int64(len(b)) || good > 0 && b[good-1] != '\n' {
			t.Fatalf("good offset %d of %d bytes", good, len(b))
		}
		again, good2, err := Read[map[string]any](strings.NewReader(string(b[:good])))
		if err != nil || good2 != good || len(again) != len(entries) {
			t.Fatalf("re-reading the kept part: %d entries, offset %d, %v; want %d, %d", len(again), good2, err, len(entries), good)
		}
	})
}
