package store

import (
	"context"
	"time"

	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// Expirer is implemented by a backend that can remove events past their
// retention. It is optional: the aggregator runs retention passes only on a
// store that implements it (and says so at start when retention is
// configured on one that does not); storetest.Run checks its promises for
// every backend that does.
type Expirer interface {
	// Expire removes every stored event whose EventTime is before now minus
	// the retention of its category (Retention.Expired), with everything
	// that refers to it, and returns how many it removed. Events kept
	// forever (retention 0), newer events and other categories are not
	// touched. It is safe to call while other calls run, and to call again
	// after an error or a crash: what it did not finish, the next call does.
	// See the package doc for what readers see.
	Expire(ctx context.Context, r Retention, now time.Time) (ExpireStats, error)
}

// ExpireStats is what one Expire call removed.
type ExpireStats struct {
	Removed int
	// ByCategory counts the removed events by category ("" for events
	// without one).
	ByCategory map[string]int
}

// Retention says how long events are kept, by category.
type Retention struct {
	// Default applies to categories not in Categories (and to events
	// without a category); 0 keeps them forever.
	Default time.Duration
	// Categories overrides Default per category; 0 keeps that category
	// forever.
	Categories map[string]time.Duration
}

// For returns the retention of category; 0 means forever.
func (r Retention) For(category string) time.Duration {
	if d, ok := r.Categories[category]; ok {
		return d
	}
	return r.Default
}

// Enabled reports whether any event can expire.
func (r Retention) Enabled() bool {
	if r.Default > 0 {
		return true
	}
	for _, d := range r.Categories {
		if d > 0 {
			return true
		}
	}
	return false
}

// Cutoff returns the event time (unix nanoseconds) before which events of
// category are expired at now, and false when the category is kept
// forever.
func (r Retention) Cutoff(category string, now time.Time) (int64, bool) {
	d := r.For(category)
	if d <= 0 {
		return 0, false
	}
	return now.Add(-d).UnixNano(), true
}

// Expired reports whether ev is past its retention at now: its EventTime
// is before Cutoff.
func (r Retention) Expired(ev *eventpb.Event, now time.Time) bool {
	cut, ok := r.Cutoff(ev.GetCategory(), now)
	return ok && EventTime(ev) < cut
}
