package registry

import (
	"context"
	"fmt"
	"time"

	"github.com/edgetrack/edgetrack/aggregator/internal/store/clickhouse"
)

// Following a shared storage.
const (
	// DefaultPollInterval is how often a registry on a shared storage
	// reads what other aggregators appended (Options.PollInterval): well
	// under an edge's rules.poll_wait (30s), so that an edge long-polling
	// any aggregator learns of an activation on another one within it.
	DefaultPollInterval = time.Second
	// ioTimeout bounds one operation on the storage.
	ioTimeout = 30 * time.Second
	// maxAppends bounds how often commit tries to append one entry while
	// other aggregators append before it.
	maxAppends = 10
)

// ioContext returns a context for storage operations that a client going
// away does not cut short: an append it interrupted would leave the
// registry not knowing whether the entry counts.
func ioContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), ioTimeout)
}

// commit appends the entry decide returns to the log and applies it.
// decide runs on the state after every entry of the log; it returns write
// false to append nothing, or an error. When another aggregator appended
// first, commit reads what it missed and decide runs again on that state.
// It reports whether it appended. Callers hold writeMu.
func (r *Registry) commit(ctx context.Context, decide func() (e AuditEntry, write bool, err error)) (bool, error) {
	for range maxAppends {
		if err := r.catchUp(ctx); err != nil {
			return false, err
		}
		e, write, err := decide()
		if err != nil || !write {
			return false, err
		}
		ok, err := r.store.append(ctx, r.pos, e)
		if err != nil {
			return false, err
		}
		if !ok {
			continue
		}
		r.publish([]AuditEntry{e}, r.pos+1, false)
		if e.Action != ActionReject {
			if err := r.store.writeIndex(&r.idx); err != nil {
				// The log, from which Open replays, has the entry.
				r.log.Error("entry logged but index.json not written; it is rewritten at the next start", "action", e.Action, "rule", e.Rule, "error", err)
			}
		}
		return true, nil
	}
	return false, fmt.Errorf("registry: other aggregators appended to the log before each of %d tries; try again", maxAppends)
}

// catchUp applies the entries other aggregators appended to the log since
// the registry last read it. Callers hold writeMu.
func (r *Registry) catchUp(ctx context.Context) error {
	entries, end, err := r.store.entries(ctx, r.pos)
	if err != nil {
		return err
	}
	if end != r.pos {
		r.publish(entries, end, true)
	}
	return nil
}

// publish applies entries, which bring the log to position end, and wakes
// the long-polls when the manifest changed. followed says they are other
// aggregators' entries. Callers hold writeMu.
func (r *Registry) publish(entries []AuditEntry, end int64, followed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	before := r.idx.Version
	for _, e := range entries {
		if r.apply(e) && followed {
			r.log.Info("rule registry entry of another aggregator applied", "action", e.Action, "rule", e.Rule, "version", short(e.Hash), "actor", e.Actor)
		}
	}
	r.pos = end
	if r.idx.Version != before {
		close(r.changed)
		r.changed = make(chan struct{})
		r.metrics.version.Set(float64(r.idx.Version))
	}
}

// follow reads, every interval until ctx ends, what other aggregators
// wrote to a shared storage: log entries, and edges' reports.
func (r *Registry) follow(ctx context.Context, interval time.Duration) {
	defer close(r.followed)
	clickhouse.Follow(ctx, interval, r.log, "the shared rule registry", r.poll)
}

// poll catches up with the log and takes in newer reports of edges.
func (r *Registry) poll(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, ioTimeout)
	defer cancel()
	r.writeMu.Lock()
	err := r.catchUp(ctx)
	r.writeMu.Unlock()
	if err != nil {
		return err
	}
	r.mu.Lock()
	have := make(map[string]time.Time, len(r.edges))
	for id, rep := range r.edges {
		have[id] = rep.Reported
	}
	r.mu.Unlock()
	reps, err := r.store.reports(ctx, have)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, rep := range reps {
		cur := r.edges[id]
		switch {
		case cur == nil:
			r.edges[id] = rep
		case rep.Reported.After(cur.Reported):
			cur.Rules, cur.Reported = rep.Rules, rep.Reported
			if cur.LastSeen.Before(rep.Reported) {
				cur.LastSeen = rep.Reported
			}
		}
	}
	return nil
}
