package registry

import (
	"context"
	"errors"
	"fmt"
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
	ioctx, cancel := ioContext(ctx)
	defer cancel()
	if file != nil {
		v.Vectors, v.VectorCases = host.Hash(vectorsJSON), len(file.Vectors)
		if err := r.store.putVectors(ioctx, v.Vectors, vectorsJSON); err != nil {
			return ruleapi.Uploaded{}, false, err
		}
	}
	if err := r.store.putModule(ioctx, hash, wasm); err != nil {
		return ruleapi.Uploaded{}, false, err
	}

	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	if r.isClosed() {
		return ruleapi.Uploaded{}, false, ErrClosed
	}
	var old *ruleapi.Uploaded
	created, err = r.commit(ioctx, func() (AuditEntry, bool, error) {
		ri := r.idx.Rules[name]
		if o, ok := ri.find(hash); ok { // a concurrent upload of the same bytes won
			old = &ruleapi.Uploaded{Name: name, Hash: hash, Size: o.Size, UploadedAt: o.UploadedAt, Active: ri.Active == hash}
			return AuditEntry{}, false, nil
		}
		return AuditEntry{Time: v.UploadedAt, Actor: actor, Action: ActionUpload, Rule: name, Hash: hash,
			Size: v.Size, Vectors: v.Vectors, VectorCases: v.VectorCases}, true, nil
	})
	if err != nil {
		return ruleapi.Uploaded{}, false, err
	}
	if !created {
		r.metrics.uploads.WithLabelValues("existing", "").Inc()
		return *old, false, nil
	}
	r.metrics.uploads.WithLabelValues("accepted", "").Inc()
	r.log.Info("rule version uploaded", "rule", name, "version", short(hash), "bytes", len(wasm), "actor", actor)
	return ruleapi.Uploaded{Name: name, Hash: hash, Size: len(wasm), UploadedAt: v.UploadedAt, Active: false}, true, nil
}

func (r *Registry) existing(name, hash string) (ruleapi.Uploaded, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ri := r.idx.Rules[name]
	v, ok := ri.find(hash)
	if !ok {
		return ruleapi.Uploaded{}, false
	}
	return ruleapi.Uploaded{Name: name, Hash: hash, Size: v.Size, UploadedAt: v.UploadedAt, Active: ri.Active == hash}, true
}

// reject counts and audits a rejected upload and returns rej.
func (r *Registry) reject(name, hash, actor string, rej *Rejection) error {
	r.metrics.uploads.WithLabelValues("rejected", rej.Reason).Inc()
	r.log.Info("rule upload rejected", "rule", name, "version", short(hash), "reason", rej.Reason, "detail", rej.Detail, "actor", actor)
	reason := rej.Error()
	if len(reason) > 4096 {
		reason = reason[:4096] + "…"
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	if r.isClosed() {
		return rej
	}
	ctx, cancel := ioContext(context.Background())
	defer cancel()
	e := AuditEntry{Time: r.now().UTC(), Actor: actor, Action: ActionReject, Rule: name, Hash: hash, Reason: reason}
	if _, err := r.commit(ctx, func() (AuditEntry, bool, error) { return e, true, nil }); err != nil {
		r.log.Error("rejected upload not audited", "rule", name, "error", err)
	}
	return rej
}

// RejectTooLarge records an upload refused for its size (hash unknown).
func (r *Registry) RejectTooLarge(name, actor string) error {
	return r.reject(name, "", actor, &Rejection{Reason: ReasonTooLarge,
		Detail: fmt.Sprintf("upload is larger than %d bytes", r.maxModule)})
}
