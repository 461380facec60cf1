package store

import (
	"context"
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

// LongPoll answers an Export: it calls read, and while q.Wait has not passed
// and read found no events, reads again after the next store (stored
// returns a channel closed at the next commit that stores events; it is
// taken before each read, so a commit between the read and the wait still
// wakes the call), or every poll when poll > 0 (for events other processes
// store). It returns what was read so far when ctx ends or closing is
// closed: a valid answer without events.
func LongPoll(ctx context.Context, q ExportQuery, stored func() <-chan struct{}, poll time.Duration,
	closing <-chan struct{}, read func(context.Context, ExportQuery) (ExportResult, error)) (ExportResult, error) {
	deadline := time.Now().Add(q.Wait)
	for {
		signal := stored()
		res, err := read(ctx, q)
		if err != nil || len(res.Events) > 0 || q.Wait <= 0 {
			return res, err
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return res, nil
		}
		if poll > 0 {
			wait = min(wait, poll)
		}
		q.After = res.Next
		t := time.NewTimer(wait)
		select {
		case <-signal:
			t.Stop()
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return res, nil
		case <-closing:
			t.Stop()
			return res, nil
		}
	}
}
