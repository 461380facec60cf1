// Package jsonlog is an append-only log of JSON records, one per line, each
// synced before Append returns: the rule registry's audit log and the
// aggregator's erasure log.
//
// A crash can tear the last line (a write without its newline). Open cuts a
// torn last line off; any other line that does not decode is an error,
// because the logs are replayed to rebuild state.
package jsonlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// Log is an open log of records of type T. It is safe for concurrent use.
type Log[T any] struct {
	mu   sync.Mutex
	f    *os.File
	size int64 // offset after the last complete line
}

// Open opens (or creates, mode 0600) the log at path and returns its records.
func Open[T any](path string) (*Log[T], []T, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, err
	}
	records, good, err := Read[T](f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: cutting a torn line: %w", path, err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return &Log[T]{f: f, size: good}, records, nil
}

// Read decodes the complete lines of r and returns the offset after the
// last one; a last line without its newline is left out.
func Read[T any](r io.Reader) ([]T, int64, error) {
	var (
		records []T
		good    int64
		line    int
	)
	br := bufio.NewReader(r)
	for {
		b, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return records, good, nil // b, if any, is a torn line
		}
		if err != nil {
			return nil, 0, err
		}
		line++
		if t := bytes.TrimSpace(b); len(t) > 0 {
			var rec T
			if err := json.Unmarshal(t, &rec); err != nil {
				return nil, 0, fmt.Errorf("line %d: %w", line, err)
			}
			records = append(records, rec)
		}
		good += int64(len(b))
	}
}

// Append writes rec as one line and syncs it. When it fails, nothing of rec
// is left in the log.
func (l *Log[T]) Append(rec T) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding a record: %w", err)
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.f.Write(b); err != nil {
		l.undo()
		return fmt.Errorf("appending: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		l.undo()
		return fmt.Errorf("syncing: %w", err)
	}
	l.size += int64(len(b))
	return nil
}

// undo cuts what a failed Append may have written, so that the next record
// starts on a line of its own.
func (l *Log[T]) undo() {
	_ = l.f.Truncate(l.size)
	_, _ = l.f.Seek(l.size, io.SeekStart)
}

// Close closes the file.
func (l *Log[T]) Close() error { return l.f.Close() }
