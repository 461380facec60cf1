package erasure

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgetrack/edgetrack/internal/atomicfile"
	"github.com/edgetrack/edgetrack/internal/jsonlog"
)

// fileStorage keeps the erasure state under <data_dir>/erasure: the audit
// log (audit.log, synced JSON lines) and a file per tombstone
// (tombstones/<seq>.json, published whole by internal/atomicfile).
type fileStorage struct {
	dir     string
	audit   *jsonlog.Log[Record]
	records []Record // as opened, for load
}

var _ storage = (*fileStorage)(nil)

func openFiles(dir string) (*fileStorage, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tombstones"), 0o700); err != nil {
		return nil, fmt.Errorf("erasure: %w", err)
	}
	audit, records, err := jsonlog.Open[Record](filepath.Join(dir, "audit.log"))
	if err != nil {
		return nil, fmt.Errorf("erasure: audit log: %w", err)
	}
	return &fileStorage{dir: dir, audit: audit, records: records}, nil
}

func (s *fileStorage) load(context.Context) ([]Record, error) {
	r := s.records
	s.records = nil
	return r, nil
}

func (s *fileStorage) suppress(ctx context.Context, r Record, next uint64) (uint64, []Record, error) {
	r.Seq = next
	if err := s.append(ctx, r); err != nil {
		return 0, nil, err
	}
	return next, []Record{r}, nil
}

func (s *fileStorage) append(_ context.Context, r Record) error {
	if err := s.audit.Append(r); err != nil {
		return fmt.Errorf("erasure: audit log: %w", err)
	}
	return nil
}

func (s *fileStorage) read(context.Context) ([]Record, error) { return nil, nil }

func (s *fileStorage) tombstonePath(seq uint64) string {
	return filepath.Join(s.dir, "tombstones", fmt.Sprintf("%020d.json", seq))
}

// tombstoneSeqs lists the tombstones' seqs in order.
func (s *fileStorage) tombstoneSeqs() ([]uint64, error) {
	des, err := os.ReadDir(filepath.Join(s.dir, "tombstones"))
	if err != nil {
		return nil, fmt.Errorf("erasure: %w", err)
	}
	var seqs []uint64
	for _, de := range des {
		if n, ok := strings.CutSuffix(de.Name(), ".json"); ok {
			if v, err := strconv.ParseUint(n, 10, 64); err == nil {
				seqs = append(seqs, v)
			}
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

func (s *fileStorage) tombstones(_ context.Context, after uint64, limit int) ([]Tombstone, error) {
	seqs, err := s.tombstoneSeqs()
	if err != nil {
		return nil, err
	}
	var out []Tombstone
	for _, n := range seqs {
		if n <= after {
			continue
		}
		if len(out) == limit {
			break
		}
		b, err := os.ReadFile(s.tombstonePath(n))
		if err != nil {
			return nil, fmt.Errorf("erasure: %w", err)
		}
		var t Tombstone
		if err := json.Unmarshal(b, &t); err != nil {
			return nil, fmt.Errorf("erasure: tombstone %d: %w", n, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// writeTombstone writes t durably (internal/atomicfile).
func (s *fileStorage) writeTombstone(_ context.Context, t Tombstone) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(s.tombstonePath(t.Seq), b); err != nil {
		return fmt.Errorf("erasure: tombstone %d: %w", t.Seq, err)
	}
	return nil
}

func (s *fileStorage) removeTombstones(_ context.Context, old map[uint64]time.Time) ([]uint64, error) {
	seqs, err := s.tombstoneSeqs()
	if err != nil {
		return nil, err
	}
	var removed []uint64
	for _, n := range seqs {
		if _, ok := old[n]; !ok {
			break // seq order is time order
		}
		if err := os.Remove(s.tombstonePath(n)); err != nil {
			return removed, fmt.Errorf("erasure: %w", err)
		}
		removed = append(removed, n)
	}
	return removed, nil
}

func (s *fileStorage) ack(context.Context, uint64, time.Time) error { return nil }

func (s *fileStorage) lagging(context.Context, uint64, time.Time) ([]string, error) {
	return nil, nil
}

func (s *fileStorage) shared() bool { return false }

func (s *fileStorage) close() error { return s.audit.Close() }
