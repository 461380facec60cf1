package registry

import (
	"fmt"
	"strings"

	"github.com/edgetrack/edgetrack/internal/ruleapi"
)

// Activate makes version target (a hash, a unique prefix of at least 8 hex
// digits, or ruleapi.Builtin) the active version of rule name.
func (r *Registry) Activate(name, target, actor string) (ruleapi.Activation, error) {
	if !r.Known(name) {
		return ruleapi.Activation{}, fmt.Errorf("%w %q", ErrUnknownRule, name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	hash, err := r.resolve(name, target)
	if err != nil {
		return ruleapi.Activation{}, err
	}
	return r.switchTo(name, hash, actor, ActionActivate)
}

// Rollback activates the version that was active before the current one
// became active, as the audit log records it; rolling back again goes one
// further back. It returns ErrNoPrevious when there is none.
func (r *Registry) Rollback(name, actor string) (ruleapi.Activation, error) {
	if !r.Known(name) {
		return ruleapi.Activation{}, fmt.Errorf("%w %q", ErrUnknownRule, name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.history[name]
	if len(h) == 0 {
		return ruleapi.Activation{}, fmt.Errorf("%w: rule %s has no earlier version to roll back to (each rollback goes one activation further back; activate a version by hash instead)", ErrNoPrevious, name)
	}
	target := h[len(h)-1]
	if _, ok := r.builtin[name]; target == ruleapi.Builtin && !ok {
		return ruleapi.Activation{}, fmt.Errorf("%w: before the current version rule %s had no module", ErrNoPrevious, name)
	}
	return r.switchTo(name, target, actor, ActionRollback)
}

// resolve turns target into a hash the rule has, or ruleapi.Builtin. Callers hold
// mu.
func (r *Registry) resolve(name, target string) (string, error) {
	if target == ruleapi.Builtin {
		if _, ok := r.builtin[name]; !ok {
			return "", fmt.Errorf("%w: rule %s has no built-in module", ErrUnknownVersion, name)
		}
		return ruleapi.Builtin, nil
	}
	target = strings.ToLower(target)
	if len(target) < 8 || !isHex(target) {
		return "", fmt.Errorf("%w %q: give a version's hash (or at least its first 8 hex digits) or %q", ErrUnknownVersion, target, ruleapi.Builtin)
	}
	var found []string
	for _, v := range r.rule(name).Versions {
		if strings.HasPrefix(v.Hash, target) {
			found = append(found, v.Hash)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%w %s of rule %s", ErrUnknownVersion, target, name)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%w: %s matches %d versions of rule %s", ErrAmbiguous, target, len(found), name)
}

// switchTo makes hash active: audit entry first, then memory, index and
// waiters. Callers hold mu.
func (r *Registry) switchTo(name, hash, actor, action string) (ruleapi.Activation, error) {
	if r.closed {
		return ruleapi.Activation{}, ErrClosed
	}
	ri := r.rule(name)
	prev := ri.Active
	if prev == hash {
		return ruleapi.Activation{Name: name, Active: hash, Previous: prev, Version: r.idx.Version}, nil
	}
	if err := r.audit.Append(AuditEntry{Time: r.now().UTC(), Actor: actor, Action: action, Rule: name, Hash: hash, Previous: prev}); err != nil {
		return ruleapi.Activation{}, err
	}
	if action == ActionRollback {
		r.history[name] = r.history[name][:len(r.history[name])-1]
	} else {
		r.history[name] = append(r.history[name], prev)
	}
	ri.Active = hash
	r.idx.Version++
	if err := r.writeIndex(); err != nil {
		// The audit log, from which Open replays, has the activation.
		r.log.Error("activation logged but index.json not written; it is rewritten at the next start", "rule", name, "error", err)
	}
	close(r.changed)
	r.changed = make(chan struct{})
	r.metrics.activations.WithLabelValues(name, action).Inc()
	r.metrics.version.Set(float64(r.idx.Version))
	r.log.Info("rule version activated", "rule", name, "action", action, "version", short(hash), "previous", short(prev), "actor", actor)
	return ruleapi.Activation{Name: name, Active: hash, Previous: prev, Version: r.idx.Version, Changed: true}, nil
}
