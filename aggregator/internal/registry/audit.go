package registry

import (
	"time"

	"github.com/edgetrack/edgetrack/internal/ruleapi"
)

// Audit actions.
const (
	ActionUpload   = "upload"
	ActionActivate = "activate"
	ActionRollback = "rollback"
	ActionReject   = "reject"
)

// AuditEntry is one entry of the registry's log: a line of audit.log, or
// the entry column of a registry_log row in ClickHouse.
type AuditEntry struct {
	Time     time.Time `json:"time"`
	Actor    string    `json:"actor"` // fingerprint of the admin token
	Action   string    `json:"action"`
	Rule     string    `json:"rule"`
	Hash     string    `json:"hash"`               // the version acted on, or "builtin"
	Previous string    `json:"previous,omitempty"` // the version active before (activate, rollback)
	Reason   string    `json:"reason,omitempty"`   // why an upload was rejected

	// An upload's version (Time is its uploaded_at, Actor its
	// uploaded_by); entries written before the registry recorded these
	// have none, and their versions are in index.json.
	Size        int    `json:"size,omitempty"`
	Vectors     string `json:"vectors,omitempty"`
	VectorCases int    `json:"vector_cases,omitempty"`
}

// version is the version an upload entry records; ok is false for an entry
// without one.
func (e AuditEntry) version() (v ruleapi.Version, ok bool) {
	if e.Action != ActionUpload || e.Size <= 0 {
		return v, false
	}
	return ruleapi.Version{Hash: e.Hash, Size: e.Size, UploadedAt: e.Time, UploadedBy: e.Actor, Vectors: e.Vectors, VectorCases: e.VectorCases}, true
}
