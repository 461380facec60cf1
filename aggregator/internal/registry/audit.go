package registry

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Audit actions.
const (
	ActionUpload   = "upload"
	ActionActivate = "activate"
	ActionRollback = "rollback"
	ActionReject   = "reject"
)

// AuditEntry is one line of audit.log.
type AuditEntry struct {
	Time     time.Time `json:"time"`
	Actor    string    `json:"actor"` // fingerprint of the admin token
	Action   string    `json:"action"`
	Rule     string    `json:"rule"`
	Hash     string    `json:"hash"`               // the version acted on, or "builtin"
	Previous string    `json:"previous,omitempty"` // the version active before (activate, rollback)
	Reason   string    `json:"reason,omitempty"`   // why an upload was rejected
}

// auditLog is the append-only audit.log. Each Append is one write of one
// line followed by an fsync.
type auditLog struct {
	f    *os.File
	size int64 // offset after the last complete line
}

// openAudit opens path for appending and returns its entries. A last line
// without its newline is a torn append: it is cut off. Any other line that
// does not decode is an error, since the active versions are replayed from
// the log.
func openAudit(path string) (*auditLog, []AuditEntry, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("registry: audit log: %w", err)
	}
	entries, good, err := readAudit(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("registry: audit log %s: %w", path, err)
	}
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("registry: audit log %s: cutting a torn line: %w", path, err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("registry: audit log %s: %w", path, err)
	}
	return &auditLog{f: f, size: good}, entries, nil
}

// readAudit decodes the complete lines of r and returns the offset after
// the last one.
func readAudit(r io.Reader) ([]AuditEntry, int64, error) {
	var (
		entries []AuditEntry
		good    int64
		line    int
	)
	br := bufio.NewReader(r)
	for {
		b, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return entries, good, nil // b, if any, is a torn line
		}
		if err != nil {
			return nil, 0, err
		}
		line++
		if t := bytes.TrimSpace(b); len(t) > 0 {
			var e AuditEntry
			if err := json.Unmarshal(t, &e); err != nil {
				return nil, 0, fmt.Errorf("line %d: %w", line, err)
			}
			entries = append(entries, e)
		}
		good += int64(len(b))
	}
}

// Append writes e as one line and syncs it.
func (a *auditLog) Append(e AuditEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("registry: audit entry: %w", err)
	}
	b = append(b, '\n')
	if _, err := a.f.Write(b); err != nil {
		a.undo()
		return fmt.Errorf("registry: appending to the audit log: %w", err)
	}
	if err := a.f.Sync(); err != nil {
		a.undo()
		return fmt.Errorf("registry: syncing the audit log: %w", err)
	}
	a.size += int64(len(b))
	return nil
}

// undo cuts what a failed Append may have written, so that the next
// entry starts on a line of its own.
func (a *auditLog) undo() {
	_ = a.f.Truncate(a.size)
	_, _ = a.f.Seek(a.size, io.SeekStart)
}

func (a *auditLog) Close() error { return a.f.Close() }
