package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/edgetrack/edgetrack/internal/ruleapi"
	"github.com/edgetrack/edgetrack/wasm/host"
	"github.com/edgetrack/edgetrack/wasm/vectors"
)

// Upload validates wasm as a new version of rule name, with the uploaded
// vectors file vectorsJSON (nil: none), and stores it; it does not activate
// it. created is false when the same bytes had been uploaded for the rule
// before: the existing version is returned and nothing is checked or stored
// again (vectors sent along are ignored). It returns ErrUnknownRule, a
// *Rejection (and records it in the audit log), or an I/O error; nothing
// changes then.
func (r *Registry) Upload(ctx context.Context, name string, wasm, vectorsJSON []byte, actor string) (_ ruleapi.Uploaded, created bool, _ error) {
	if err := r.KnownRule(name); err != nil {
		return ruleapi.Uploaded{}, false, err
	}
	hash := host.Hash(wasm)
	if u, ok := r.existing(name, hash); ok {
		r.metrics.uploads.WithLabelValues("existing", "").Inc()
		return u, false, nil
	}

	var file *vectors.File
	if len(vectorsJSON) > 0 {
		f, err := vectors.Parse(vectorsJSON)
		if err != nil {
			return ruleapi.Uploaded{}, false, r.reject(name, hash, actor, &Rejection{Reason: ReasonVectorsFile, Detail: "uploaded vectors: " + err.Error()})
		}
		file = f
	}
	// A validation ends when the registry drains (the aggregator is
	// stopping), not only when the upload's client goes away: a module
	// that takes every call's deadline would otherwise hold up shutdown for
	// the validator's whole timeout.
	vctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-r.drain:
			stop()
		case <-vctx.Done():
		}
	}()
	r.metrics.validating.Inc()
	err := r.validator.Check(vctx, name, wasm, file)
	r.metrics.validating.Dec()
	if err != nil && vctx.Err() != nil && ctx.Err() == nil {
		return ruleapi.Uploaded{}, false, fmt.Errorf("%w: the aggregator is shutting down; upload again", ErrClosed)
	}
	if err != nil {
		if rej, ok := errors.AsType[*Rejection](err); ok {
			return ruleapi.Uploaded{}, false, r.reject(name, hash, actor, rej)
		}
		return ruleapi.Uploaded{}, false, err
	}

	v := ruleapi.Version{Hash: hash, Size: len(wasm), UploadedAt: r.now().UTC().Truncate(time.Millisecond), UploadedBy: actor}
	if file != nil {
		v.Vectors, v.VectorCases = host.Hash(vectorsJSON), len(file.Vectors)
		if err := r.writeOnce(filepath.Join(r.dir, "vectors"), v.Vectors+".json", vectorsJSON); err != nil {
			return ruleapi.Uploaded{}, false, err
		}
	}
	if err := r.writeOnce(filepath.Join(r.dir, "modules"), hash+".wasm", wasm); err != nil {
		return ruleapi.Uploaded{}, false, err
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ruleapi.Uploaded{}, false, ErrClosed
	}
	ri := r.rule(name)
	if old, ok := ri.find(hash); ok { // a concurrent upload of the same bytes won
		r.metrics.uploads.WithLabelValues("existing", "").Inc()
		return ruleapi.Uploaded{Name: name, Hash: hash, Size: old.Size, UploadedAt: old.UploadedAt, Active: ri.Active == hash}, false, nil
	}
	ri.Versions = append(ri.Versions, v)
	if err := r.writeIndex(); err != nil {
		ri.Versions = ri.Versions[:len(ri.Versions)-1]
		return ruleapi.Uploaded{}, false, err
	}
	if err := r.audit.Append(AuditEntry{Time: v.UploadedAt, Actor: actor, Action: ActionUpload, Rule: name, Hash: hash}); err != nil {
		// The version is stored; only its record is missing.
		r.log.Error("upload stored but not audited", "rule", name, "version", short(hash), "error", err)
	}
	r.metrics.uploads.WithLabelValues("accepted", "").Inc()
	r.log.Info("rule version uploaded", "rule", name, "version", short(hash), "bytes", len(wasm), "actor", actor)
	return ruleapi.Uploaded{Name: name, Hash: hash, Size: len(wasm), UploadedAt: v.UploadedAt, Active: false}, true, nil
}

func (r *Registry) existing(name, hash string) (ruleapi.Uploaded, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ri := r.rule(name)
	v, ok := ri.find(hash)
	if !ok {
		return ruleapi.Uploaded{}, false
	}
	return ruleapi.Uploaded{Name: name, Hash: hash, Size: v.Size, UploadedAt: v.UploadedAt, Active: ri.Active == hash}, true
}

// writeOnce publishes a content-addressed file unless it exists with that
// content (a rejected or interrupted upload never leaves one; a damaged one
// is replaced).
func (r *Registry) writeOnce(dir, name string, data []byte) error {
	if old, err := os.ReadFile(filepath.Join(dir, name)); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return writeFileAtomic(dir, name, data)
}

// reject counts and audits a rejected upload and returns rej.
func (r *Registry) reject(name, hash, actor string, rej *Rejection) error {
	r.metrics.uploads.WithLabelValues("rejected", rej.Reason).Inc()
	r.log.Info("rule upload rejected", "rule", name, "version", short(hash), "reason", rej.Reason, "detail", rej.Detail, "actor", actor)
	reason := rej.Error()
	if len(reason) > 4096 {
		reason = reason[:4096] + "…"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		if err := r.audit.Append(AuditEntry{Time: r.now().UTC(), Actor: actor, Action: ActionReject, Rule: name, Hash: hash, Reason: reason}); err != nil {
			r.log.Error("rejected upload not audited", "rule", name, "error", err)
		}
	}
	return rej
}

// RejectTooLarge records an upload refused for its size (hash unknown).
func (r *Registry) RejectTooLarge(name, actor string) error {
	return r.reject(name, "", actor, &Rejection{Reason: ReasonTooLarge,
		Detail: fmt.Sprintf("upload is larger than %d bytes", r.maxModule)})
}
