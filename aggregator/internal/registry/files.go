package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/edgetrack/edgetrack/internal/atomicfile"
	"github.com/edgetrack/edgetrack/internal/jsonlog"
)

// fileStorage keeps the registry in files under one directory,
// <aggregator.data_dir>/rules (the package doc's Storage section). One
// aggregator owns the directory, so it is the log's only writer: an append
// is always at the position claimed.
type fileStorage struct {
	dir   string
	audit *jsonlog.Log[AuditEntry]
	n     int64 // entries in audit.log

	edgesMu sync.Mutex
	edges   map[string]*edgeReport // as edges.json has them
}

var _ storage = (*fileStorage)(nil)

// openFiles creates dir and its subdirectories when missing; load reads
// what is in them.
func openFiles(dir string) (*fileStorage, error) {
	for _, sub := range []string{"", "modules", "vectors"} {
		d := filepath.Join(dir, sub)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
		// Temporary files of writes a crash interrupted (writeFileAtomic).
		stale, _ := filepath.Glob(filepath.Join(d, ".*.tmp-*"))
		for _, f := range stale {
			_ = os.Remove(f)
		}
	}
	return &fileStorage{dir: dir}, nil
}

// load reads index.json and edges.json, and opens audit.log for appending.
func (f *fileStorage) load(context.Context) (stored, error) {
	idx := &index{}
	if err := readJSONFile(f.dir, "index.json", idx); err != nil {
		return stored{}, err
	}
	edges := map[string]*edgeReport{}
	if err := readJSONFile(f.dir, "edges.json", &edges); err != nil {
		return stored{}, err
	}
	if edges == nil { // the file says null
		edges = map[string]*edgeReport{}
	}
	// Any line but a torn last one that does not decode is an error,
	// since the active versions are replayed from the log.
	log, entries, err := jsonlog.Open[AuditEntry](filepath.Join(f.dir, "audit.log"))
	if err != nil {
		return stored{}, fmt.Errorf("registry: audit log: %w", err)
	}
	f.audit, f.n = log, int64(len(entries))
	f.edges = map[string]*edgeReport{}
	for id, rep := range edges {
		c := *rep
		f.edges[id] = &c
	}
	return stored{index: idx, log: entries, end: f.n, edges: edges}, nil
}

// entries: nobody else appends.
func (f *fileStorage) entries(_ context.Context, from int64) ([]AuditEntry, int64, error) {
	return nil, max(from, f.n), nil
}

// append writes e as one line of audit.log and syncs it.
func (f *fileStorage) append(_ context.Context, at int64, e AuditEntry) (bool, error) {
	if at != f.n {
		return false, fmt.Errorf("registry: audit log: appending at entry %d, but it has %d", at, f.n)
	}
	if err := f.audit.Append(e); err != nil {
		return false, fmt.Errorf("registry: audit log: %w", err)
	}
	f.n++
	return true, nil
}

func (f *fileStorage) putModule(_ context.Context, hash string, wasm []byte) error {
	return writeOnce(filepath.Join(f.dir, "modules"), hash+".wasm", wasm)
}

func (f *fileStorage) putVectors(_ context.Context, hash string, b []byte) error {
	return writeOnce(filepath.Join(f.dir, "vectors"), hash+".json", b)
}

func (f *fileStorage) modulePath(hash string) string {
	return filepath.Join(f.dir, "modules", hash+".wasm")
}

func (f *fileStorage) module(_ context.Context, hash string) ([]byte, error) {
	b, err := os.ReadFile(f.modulePath(hash))
	if err != nil {
		return nil, fmt.Errorf("registry: module %s: %w", short(hash), err)
	}
	return b, nil
}

func (f *fileStorage) moduleInfo(_ context.Context, hash string) (int, time.Time, error) {
	fi, err := os.Stat(f.modulePath(hash))
	if err != nil {
		return 0, time.Time{}, err
	}
	return int(fi.Size()), fi.ModTime().UTC(), nil
}

func (f *fileStorage) writeIndex(idx *index) error { return writeJSONFile(f.dir, "index.json", idx) }

// saveReport rewrites edges.json.
func (f *fileStorage) saveReport(_ context.Context, edge string, rep edgeReport) error {
	f.edgesMu.Lock()
	defer f.edgesMu.Unlock()
	f.edges[edge] = &rep
	return writeJSONFile(f.dir, "edges.json", f.edges)
}

// reports: nobody else records any.
func (f *fileStorage) reports(context.Context, map[string]time.Time) (map[string]*edgeReport, error) {
	return nil, nil
}

func (f *fileStorage) shared() bool { return false }

func (f *fileStorage) close() error {
	if f.audit == nil {
		return nil
	}
	return f.audit.Close()
}

// writeOnce publishes a content-addressed file unless it exists with that
// content (a rejected or interrupted upload never leaves one; a damaged one
// is replaced).
func writeOnce(dir, name string, data []byte) error {
	if old, err := os.ReadFile(filepath.Join(dir, name)); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return writeFileAtomic(dir, name, data)
}

// writeFileAtomic publishes data as dir/name (internal/atomicfile).
func writeFileAtomic(dir, name string, data []byte) error {
	if err := atomicfile.Write(filepath.Join(dir, name), data); err != nil {
		return fmt.Errorf("registry: writing %s: %w", name, err)
	}
	return nil
}

// writeJSONFile publishes v as indented JSON.
func writeJSONFile(dir, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("registry: encoding %s: %w", name, err)
	}
	return writeFileAtomic(dir, name, append(b, '\n'))
}

// readJSONFile decodes dir/name into v; a missing file leaves v alone.
func readJSONFile(dir, name string, v any) error {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("registry: %s: %w", filepath.Join(dir, name), err)
	}
	return nil
}
