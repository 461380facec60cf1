package registry

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/edgetrack/edgetrack/internal/ruleapi"
)

// edgeReport is an edge's last report, as kept in edges.json (or the
// registry_edges table).
type edgeReport struct {
	Rules    map[string]ruleapi.RuleStatus `json:"rules"`
	Reported time.Time                     `json:"reported_at"`
	LastSeen time.Time                     `json:"last_seen"` // last report or manifest poll
}

// Report records an edge's status report.
func (r *Registry) Report(edge string, rules map[string]ruleapi.RuleStatus) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	rep := r.edges[edge]
	if rep == nil {
		if len(r.edges) >= maxEdges {
			r.mu.Unlock()
			return fmt.Errorf("%w: status of %d edges kept already", ErrTooManyEdges, maxEdges)
		}
		rep = &edgeReport{}
		r.edges[edge] = rep
	}
	now := r.now().UTC()
	rep.Rules, rep.Reported, rep.LastSeen = map[string]ruleapi.RuleStatus{}, now, now
	for name, st := range rules {
		if r.Known(name) {
			rep.Rules[name] = st
		}
	}
	saved := *rep // its Rules are replaced, never changed
	r.mu.Unlock()
	ctx, cancel := ioContext(context.Background())
	defer cancel()
	return r.store.saveReport(ctx, edge, saved)
}

// Seen notes that edge polled the manifest. Only edges that have reported
// are tracked; it is not stored, so each aggregator knows only the polls it
// answered.
func (r *Registry) Seen(edge string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rep := r.edges[edge]; rep != nil {
		rep.LastSeen = r.now().UTC()
	}
}

// List returns every rule with its versions, oldest first, and the edges'
// reports, by edge id.
func (r *Registry) List() ruleapi.Listing {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := ruleapi.Listing{Version: r.idx.Version, Rules: map[string]ruleapi.RuleListing{}}
	for _, name := range r.names {
		ri := r.idx.Rules[name]
		rl := ruleapi.RuleListing{Active: ri.Active, Builtin: r.builtin[name].hash, Versions: []ruleapi.VersionListing{}, Edges: []ruleapi.EdgeListing{}}
		for _, v := range ri.Versions {
			rl.Versions = append(rl.Versions, ruleapi.VersionListing{Version: v, Active: v.Hash == ri.Active})
		}
		for _, id := range slices.Sorted(maps.Keys(r.edges)) {
			rep := r.edges[id]
			if st, ok := rep.Rules[name]; ok {
				rl.Edges = append(rl.Edges, ruleapi.EdgeListing{Edge: id, RuleStatus: st, ReportedAt: rep.Reported, LastSeen: rep.LastSeen})
			}
		}
		l.Rules[name] = rl
	}
	return l
}
