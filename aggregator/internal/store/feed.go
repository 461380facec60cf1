package store

import (
	"strings"
	"time"

	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// ExportQuery reads the change feed: events in the order they were stored.
// Filters combine with AND, as in Query.
type ExportQuery struct {
	// After continues from a previous ExportResult.Next; "" starts at the
	// first event ever stored.
	After string
	// Limit is the most events returned; <= 0 means DefaultLimit, capped
	// at MaxLimit.
	Limit int

	Session, Category, Name string // optional exact-match filters ("" = any)
	// NamePrefixes, when not empty, keeps the events whose name starts
	// with one of them.
	NamePrefixes []string
	// Event-time range [Start, End); a zero time leaves that side unbounded.
	Start, End time.Time

	// Wait, when positive, is how long to wait for an event to be stored
	// when none matches after After: the call returns as soon as one does
	// (a long-poll), or with no events once Wait has passed.
	Wait time.Duration
}

// ExportResult is one read of the feed.
type ExportResult struct {
	Events []*eventpb.Event
	// Next is where the following read starts: after the last event
	// returned, or further when events that did not match the filters were
	// passed over. It is set on every result, also without events, and
	// stays valid across restarts of the store.
	Next string
}

// PageSize returns the most events one read returns: Limit, or DefaultLimit
// when that is <= 0, capped at MaxLimit.
func (q ExportQuery) PageSize() int { return Query{Limit: q.Limit}.PageSize() }

// Matches reports whether ev passes the query's filters and time range. It
// is the reference every backend's feed must agree with.
func (q ExportQuery) Matches(ev *eventpb.Event) bool {
	if !(Query{Session: q.Session, Category: q.Category, Name: q.Name, Start: q.Start, End: q.End}).Matches(ev) {
		return false
	}
	if len(q.NamePrefixes) == 0 {
		return true
	}
	for _, p := range q.NamePrefixes {
		if strings.HasPrefix(ev.GetName(), p) {
			return true
		}
	}
	return false
}
