package registry

import (
	"context"
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
	return r.switchTo(name, actor, ActionActivate, func() (string, error) { return r.resolve(name, target) })
}

// Rollback activates the version that was active before the current one
// became active, as the audit log records it; rolling back again goes one
// further back. It returns ErrNoPrevious when there is none.
func (r *Registry) Rollback(name, actor string) (ruleapi.Activation, error) {
	if !r.Known(name) {
		return ruleapi.Activation{}, fmt.Errorf("%w %q", ErrUnknownRule, name)
	}
	return r.switchTo(name, actor, ActionRollback, func() (string, error) {
		h := r.history[name]
		if len(h) == 0 {
			return "", fmt.Errorf("%w: rule %s has no earlier version to roll back to (each rollback goes one activation further back; activate a version by hash instead)", ErrNoPrevious, name)
		}
		target := h[len(h)-1]
		if _, ok := r.builtin[name]; target == ruleapi.Builtin && !ok {
			return "", fmt.Errorf("%w: before the current version rule %s had no module", ErrNoPrevious, name)
		}
		return target, nil
	})
}

// resolve turns target into a hash the rule has, or ruleapi.Builtin. Callers
// hold writeMu or mu.
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
	for _, v := range r.idx.Rules[name].Versions {
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

// switchTo makes the version target returns active: the log's entry first
// (commit), then memory, index and waiters. target runs on the state the
// entry follows, again when another aggregator activated first.
func (r *Registry) switchTo(name, actor, action string, target func() (string, error)) (ruleapi.Activation, error) {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	if r.isClosed() {
		return ruleapi.Activation{}, ErrClosed
	}
	ctx, cancel := ioContext(context.Background())
	defer cancel()
	var a ruleapi.Activation
	changed, err := r.commit(ctx, func() (AuditEntry, bool, error) {
		hash, err := target()
		if err != nil {
			return AuditEntry{}, false, err
		}
		prev := r.idx.Rules[name].Active
		a = ruleapi.Activation{Name: name, Active: hash, Previous: prev, Version: r.idx.Version}
		e := AuditEntry{Time: r.now().UTC(), Actor: actor, Action: action, Rule: name, Hash: hash, Previous: prev}
		return e, prev != hash, nil
	})
	if err != nil {
		return ruleapi.Activation{}, err
	}
	if !changed {
		return a, nil
	}
	a.Version, a.Changed = r.idx.Version, true
	r.metrics.activations.WithLabelValues(name, action).Inc()
	r.log.Info("rule version activated", "rule", name, "action", action, "version", short(a.Active), "previous", short(a.Previous), "actor", actor)
	return a, nil
}
