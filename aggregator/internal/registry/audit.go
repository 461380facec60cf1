package registry

import (
	"fmt"
	"time"

	"github.com/edgetrack/edgetrack/internal/jsonlog"
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

// auditLog is the append-only audit.log (internal/jsonlog): each Append is
// one write of one line followed by an fsync, and Open cuts a torn last line.
type auditLog struct{ log *jsonlog.Log[AuditEntry] }

// openAudit opens path for appending and returns its entries. Any line but
// a torn last one that does not decode is an error, since the active
// versions are replayed from the log.
func openAudit(path string) (*auditLog, []AuditEntry, error) {
	l, entries, err := jsonlog.Open[AuditEntry](path)
	if err != nil {
		return nil, nil, fmt.Errorf("registry: audit log: %w", err)
	}
	return &auditLog{l}, entries, nil
}

// Append writes e as one line and syncs it.
func (a *auditLog) Append(e AuditEntry) error {
	if err := a.log.Append(e); err != nil {
		return fmt.Errorf("registry: audit log: %w", err)
	}
	return nil
}

func (a *auditLog) Close() error { return a.log.Close() }
