package registry

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/edgetrack/edgetrack/internal/ruleapi"
	"github.com/edgetrack/edgetrack/wasm/host"
)

// Manifest returns the current manifest.
func (r *Registry) Manifest() ruleapi.Manifest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.manifest()
}

func (r *Registry) manifest() ruleapi.Manifest {
	m := ruleapi.Manifest{Version: r.idx.Version, Rules: map[string]ruleapi.ManifestRule{}}
	for _, name := range r.names {
		ri := r.idx.Rules[name]
		if ri.Active == ruleapi.Builtin {
			if b, ok := r.builtin[name]; ok {
				m.Rules[name] = ruleapi.ManifestRule{Hash: b.hash, Source: ruleapi.SourceBuiltin, Size: len(b.wasm)}
			}
			continue
		}
		v, _ := ri.find(ri.Active)
		m.Rules[name] = ruleapi.ManifestRule{Hash: v.Hash, Source: ruleapi.SourceRegistry, Size: v.Size}
	}
	return m
}

// Wait returns the manifest as soon as its version differs from since, or
// when wait has passed, ctx is done or the registry drains; changed reports
// whether the version differs.
func (r *Registry) Wait(ctx context.Context, since int64, wait time.Duration) (m ruleapi.Manifest, changed bool) {
	r.mu.Lock()
	if r.idx.Version != since || wait <= 0 || r.drained {
		defer r.mu.Unlock()
		return r.manifest(), r.idx.Version != since
	}
	ch := r.changed
	r.mu.Unlock()

	r.metrics.waiting.Inc()
	defer r.metrics.waiting.Dec()
	t := time.NewTimer(min(wait, MaxWait))
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-ctx.Done():
	case <-r.drain:
	}
	m = r.Manifest()
	return m, m.Version != since
}

// Module returns the bytes of the module with the given hash: an uploaded
// version of any rule, or a built-in module.
func (r *Registry) Module(hash string) ([]byte, error) {
	if len(hash) != sha256.Size*2 || !isHex(hash) {
		return nil, fmt.Errorf("%w %q: not a SHA-256 in lower-case hex", ErrUnknownVersion, hash)
	}
	for _, b := range r.builtin {
		if b.hash == hash {
			return b.wasm, nil
		}
	}
	r.mu.Lock()
	known := false
	for _, ri := range r.idx.Rules {
		if _, ok := ri.find(hash); ok {
			known = true
			break
		}
	}
	r.mu.Unlock()
	if !known {
		return nil, fmt.Errorf("%w %s", ErrUnknownVersion, hash)
	}
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	b, err := r.store.module(ctx, hash)
	if err != nil {
		return nil, err
	}
	if host.Hash(b) != hash { // bit rot or tampering: never serve it
		return nil, fmt.Errorf("registry: module %s as stored does not hash to its name", hash)
	}
	return b, nil
}
