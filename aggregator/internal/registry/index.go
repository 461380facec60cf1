package registry

import (
	"context"
	"fmt"

	"github.com/edgetrack/edgetrack/internal/ruleapi"
)

// index is index.json, and the registry's state in memory: the log
// replayed.
type index struct {
	// Version is the manifest version.
	Version int64                 `json:"version"`
	Rules   map[string]*ruleIndex `json:"rules"`
}

type ruleIndex struct {
	// Active is the active version's hash, or ruleapi.Builtin.
	Active   string            `json:"active"`
	Versions []ruleapi.Version `json:"versions"`
}

func (ri *ruleIndex) find(hash string) (ruleapi.Version, bool) {
	for _, v := range ri.Versions {
		if v.Hash == hash {
			return v, true
		}
	}
	return ruleapi.Version{}, false
}

// load reads the storage and replays the log over the index it kept: the
// log wins (Open).
func (r *Registry) load(ctx context.Context) error {
	st, err := r.store.load(ctx)
	if err != nil {
		return err
	}
	r.edges = st.edges
	if r.edges == nil {
		r.edges = map[string]*edgeReport{}
	}
	if st.index != nil {
		r.idx = *st.index
	}
	if r.idx.Rules == nil {
		r.idx.Rules = map[string]*ruleIndex{}
	}

	// Replay the activations, and the versions the index lacks, from the
	// start: the active versions as the index has them are only compared.
	written := map[string]string{} // by rule
	for _, name := range r.names {
		ri := r.rule(name)
		written[name] = ri.Active
		if written[name] == "" {
			written[name] = ruleapi.Builtin
		}
		ri.Active = ruleapi.Builtin
	}
	indexed := r.idx.Version
	r.idx.Version = 1
	dirty := false
	for _, e := range st.log {
		if r.apply(e) && e.Action == ActionUpload {
			dirty = true // a version the index did not list
		}
	}
	dirty = dirty || r.idx.Version != indexed
	r.pos = st.end
	for _, name := range r.names {
		ri := r.rule(name)
		if st.index != nil && written[name] != ri.Active {
			r.log.Warn("index.json disagrees with the audit log about the active version; the log wins",
				"rule", name, "index", short(written[name]), "audit", short(ri.Active))
			dirty = true
		}
		if ri.Active == ruleapi.Builtin {
			continue
		}
		if _, ok := ri.find(ri.Active); !ok {
			// The index lost the version (a crash before its write, or
			// an index restored from a backup): rebuild its entry from
			// the stored module.
			size, at, err := r.store.moduleInfo(ctx, ri.Active)
			if err != nil {
				return fmt.Errorf("registry: rule %s: the active version %s is not stored: %w", name, short(ri.Active), err)
			}
			ri.Versions = append(ri.Versions, ruleapi.Version{Hash: ri.Active, Size: size, UploadedAt: at, UploadedBy: "unknown"})
			dirty = true
		}
	}
	if dirty && st.index != nil {
		return r.store.writeIndex(&r.idx)
	}
	return nil
}

// apply applies one entry of the log to the state and reports whether it
// changed anything. Callers hold writeMu and mu, or own r (in Open).
func (r *Registry) apply(e AuditEntry) bool {
	switch e.Action {
	case ActionUpload:
		v, ok := e.version()
		if !ok || !r.Known(e.Rule) {
			return false
		}
		ri := r.rule(e.Rule)
		if _, dup := ri.find(v.Hash); dup {
			return false
		}
		ri.Versions = append(ri.Versions, v)
		return true
	case ActionActivate:
		r.history[e.Rule] = append(r.history[e.Rule], e.Previous)
	case ActionRollback:
		if h := r.history[e.Rule]; len(h) > 0 {
			r.history[e.Rule] = h[:len(h)-1]
		}
	default:
		return false
	}
	if r.Known(e.Rule) {
		r.rule(e.Rule).Active = e.Hash
	}
	r.idx.Version++
	return true
}

// rule returns the index entry of name, creating it. Open creates the
// entries of every rule served, so that later only apply creates any.
func (r *Registry) rule(name string) *ruleIndex {
	ri := r.idx.Rules[name]
	if ri == nil {
		ri = &ruleIndex{Active: ruleapi.Builtin}
		r.idx.Rules[name] = ri
	}
	return ri
}
