package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/edgetrack/edgetrack/internal/storable"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// Store keeps events. Implementations are safe for concurrent use.
type Store interface {
	// Ingest makes the events durable (synced) before returning. It is
	// idempotent: an event whose id is already stored counts as a duplicate
	// and is not stored again, however often and in whatever order batches
	// arrive, also within one call and across concurrent calls. Events that
	// can never be stored are rejected (not stored) with a reason.
	//
	// When Ingest returns an error the caller must take none of the events
	// as stored and send them again; being idempotent, that is safe.
	Ingest(ctx context.Context, events []*eventpb.Event) (IngestStats, error)

	// Get returns the event with the given id, or ErrNotFound.
	Get(ctx context.Context, id string) (*eventpb.Event, error)

	// Query returns one page of the events matching q, newest first.
	Query(ctx context.Context, q Query) (Result, error)

	// Count returns the number of events matching q's filters and time
	// range, exactly; its Limit, Offset and Cursor do not matter. What it
	// costs is each backend's (see its package doc).
	Count(ctx context.Context, q Query) (int, error)

	// Stats returns event counts per bucket of time, from counters kept at
	// ingest, which count exactly the stored events.
	Stats(ctx context.Context, q StatsQuery) ([]Series, error)

	// Export reads the change feed: events in the order they were stored,
	// each once, after a cursor that stays valid across restarts; with
	// q.Wait it long-polls. Duplicates and rejected events are not in it.
	Export(ctx context.Context, q ExportQuery) (ExportResult, error)

	// IDPrefix returns up to limit events whose ids start with prefix, in
	// id order (lookups by structured ids, such as cookie-sync matches).
	IDPrefix(ctx context.Context, prefix string, limit int) ([]*eventpb.Event, error)

	// Ready reports whether the store can serve requests.
	Ready() error

	// Close releases the store. Calls after Close return ErrClosed.
	Close() error
}

// IngestStats is what one Ingest call did with its events. Every event is
// counted exactly once: Stored + Duplicates + len(Rejected) == len(events).
type IngestStats struct {
	Stored, Duplicates int
	Rejected           []Rejection
}

// Rejection names an event that can never be stored.
type Rejection struct {
	Index  int // position in the slice given to Ingest
	ID     string
	Reason string
}

// Query selects events. Filters combine with AND.
type Query struct {
	Session, Category, Name string // optional exact-match filters ("" = any)

	// Event-time range [Start, End); a zero time leaves that side unbounded.
	Start, End time.Time

	// Limit is the page size; <= 0 means DefaultLimit, and it is capped at
	// MaxLimit.
	Limit int

	// Offset skips that many matching events before the page (page N of
	// size L is Offset (N-1)·L); what skipping costs is each backend's (see
	// its package doc). It cannot be combined with Cursor.
	Offset int

	// Cursor continues from a previous Result.Next. It must come with the
	// same filters and time range as the query that returned it.
	Cursor string
}

// Result is one page of a query.
type Result struct {
	Events []*eventpb.Event
	Next   string // cursor for the next page; "" when there is nothing more
}

// Page sizes.
const (
	DefaultLimit = 10
	MaxLimit     = 10000
)

// Limits on stored values; longer values are rejected (see
// internal/storable, which the edge checks too).
const (
	MaxIDLen    = storable.MaxIDLen
	MaxValueLen = storable.MaxValueLen // session, category, name
)

var (
	ErrNotFound  = errors.New("store: not found")
	ErrBadCursor = errors.New("store: bad cursor")
	ErrClosed    = errors.New("store: closed")
)

// Rejection reasons besides those of storable.Problem.
const (
	ReasonNilEvent    = "nil event"
	ReasonUnencodable = "cannot be encoded: " // + the encoder's error
)

// Problem returns why ev can never be stored, or "" when it can: a nil event,
// or one of the rules of storable.Problem, which the edge applies before it
// acknowledges an event, so that an event an edge accepted is not rejected
// here. A backend rejects an event that does not encode as well, with
// ReasonUnencodable.
func Problem(ev *eventpb.Event) string {
	if ev == nil {
		return ReasonNilEvent
	}
	return storable.Problem(&storable.Fields{
		ID: ev.GetId(), Session: ev.GetSession(), Category: ev.GetCategory(), Name: ev.GetName(),
		IP: ev.GetIp(), Edge: ev.GetEdge(), Rule: ev.GetRule(),
	})
}

// ValidFilter reports whether some storable event could have v as its
// session, category or name. Filters that cannot match select nothing.
func ValidFilter(v string) bool {
	return len(v) <= MaxValueLen && strings.IndexByte(v, 0) < 0
}

// EventTime is the time an event is ordered and ranged by: client_time when
// it is > 0, else received_at, in unix nanoseconds.
func EventTime(ev *eventpb.Event) int64 {
	if t := ev.GetClientTime(); t > 0 {
		return t
	}
	return ev.GetReceivedAt()
}

// PageSize returns the page size for q: its Limit, or DefaultLimit when that
// is <= 0, capped at MaxLimit.
func (q Query) PageSize() int {
	switch {
	case q.Limit <= 0:
		return DefaultLimit
	case q.Limit > MaxLimit:
		return MaxLimit
	}
	return q.Limit
}

// Matches reports whether ev passes q's filters and time range. It is the
// reference every backend's answers must agree with.
func (q Query) Matches(ev *eventpb.Event) bool {
	if q.Session != "" && ev.GetSession() != q.Session ||
		q.Category != "" && ev.GetCategory() != q.Category ||
		q.Name != "" && ev.GetName() != q.Name {
		return false
	}
	t := EventTime(ev)
	if !q.Start.IsZero() && t < UnixNano(q.Start) {
		return false
	}
	if !q.End.IsZero() && t >= UnixNano(q.End) {
		return false
	}
	return true
}

var (
	minUnixNano = time.Unix(0, -1<<63)
	maxUnixNano = time.Unix(0, 1<<63-1)
)

// UnixNano is t.UnixNano clamped to int64 (UnixNano is undefined outside
// it): a time before or after every event time there can be stands for the
// first or the last one.
func UnixNano(t time.Time) int64 {
	switch {
	case t.Before(minUnixNano):
		return -1 << 63
	case t.After(maxUnixNano):
		return 1<<63 - 1
	}
	return t.UnixNano()
}

// CheckPaging reports a Query whose paging is invalid: a negative Offset, or
// an Offset with a Cursor.
func (q Query) CheckPaging() error {
	switch {
	case q.Offset < 0:
		return fmt.Errorf("store: query: negative offset %d", q.Offset)
	case q.Offset > 0 && q.Cursor != "":
		return errors.New("store: query: offset and cursor are exclusive")
	}
	return nil
}
