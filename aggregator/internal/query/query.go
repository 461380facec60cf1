// Package query is the analyst API's view of stored events: how a request's
// parameters become a store.Query, and how events are written as JSON.
//
// The JSON shape of an event (see [Event]) is a contract with analysts and
// their tools; fields may be added, never renamed or retyped. Times are
// RFC 3339 in UTC with exactly nine fractional digits, so that they sort as
// strings and parse with time.RFC3339Nano.
package query

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// TimeFormat is how times are written: RFC 3339, UTC, nanoseconds.
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// DefaultLimit is the page size when a request gives none.
const DefaultLimit = 10

// Event is the JSON form of a stored event.
type Event struct {
	ID        string `json:"id"`
	Source    string `json:"source"` // hamustro, eye, cookiesync, or unknown
	SessionID string `json:"session_id"`
	Category  string `json:"category"`
	Name      string `json:"name"`
	// Timestamp is the event time: client_time when the client sent one,
	// else received_at. Queries are ordered and ranged by it.
	Timestamp  string `json:"timestamp"`
	ReceivedAt string `json:"received_at"`
	ClientTime string `json:"client_time,omitempty"` // omitted when the client sent none
	// Data is the event's JSON payload embedded as JSON. A payload that is
	// not valid JSON is embedded as a JSON string; no payload is null.
	Data json.RawMessage `json:"data"`
	IP   string          `json:"ip"`
	Edge string          `json:"edge"`
	Rule string          `json:"rule"`
}

// NewEvent returns the JSON form of ev.
func NewEvent(ev *eventpb.Event) Event {
	out := Event{
		ID:         ev.GetId(),
		Source:     sourceName(ev.GetSource()),
		SessionID:  ev.GetSession(),
		Category:   ev.GetCategory(),
		Name:       ev.GetName(),
		Timestamp:  formatTime(store.EventTime(ev)),
		ReceivedAt: formatTime(ev.GetReceivedAt()),
		Data:       embed(ev.GetData()),
		IP:         ev.GetIp(),
		Edge:       ev.GetEdge(),
		Rule:       ev.GetRule(),
	}
	if t := ev.GetClientTime(); t > 0 {
		out.ClientTime = formatTime(t)
	}
	return out
}

// Page is the JSON answer to a list query.
type Page struct {
	Results []Event `json:"results"` // never null
	Next    string  `json:"next"`    // cursor for the next page; "" on the last
}

// NewPage returns the JSON form of a query result.
func NewPage(res store.Result) Page {
	p := Page{Results: make([]Event, len(res.Events)), Next: res.Next}
	for i, ev := range res.Events {
		p.Results[i] = NewEvent(ev)
	}
	return p
}

func sourceName(s eventpb.Source) string {
	switch s {
	case eventpb.Source_SOURCE_HAMUSTRO:
		return "hamustro"
	case eventpb.Source_SOURCE_EYE:
		return "eye"
	case eventpb.Source_SOURCE_COOKIESYNC:
		return "cookiesync"
	}
	return "unknown"
}

func formatTime(unixNano int64) string {
	return time.Unix(0, unixNano).UTC().Format(TimeFormat)
}

// embed returns data as a JSON value: itself when it is valid JSON, else a
// JSON string of it (invalid UTF-8 becomes U+FFFD), and null when empty.
func embed(data []byte) json.RawMessage {
	if len(data) == 0 {
		return nil
	}
	if json.Valid(data) {
		return data
	}
	s, _ := json.Marshal(string(data)) // a string always marshals
	return s
}

// ParamError is a request parameter that is missing or malformed. Its
// message is meant for the client.
type ParamError struct {
	Param, Problem string
}

func (e *ParamError) Error() string { return e.Param + " " + e.Problem }

// ParseEvents turns the parameters of GET /events into a store query.
// session_id is required; limit is 1 to maxPageSize (default DefaultLimit,
// or maxPageSize when that is smaller); cursor continues a previous page.
// Other parameters are ignored. Errors are *ParamError.
func ParseEvents(params url.Values, maxPageSize int) (store.Query, error) {
	q := store.Query{
		Session: params.Get("session_id"),
		Cursor:  params.Get("cursor"),
		Limit:   min(DefaultLimit, maxPageSize),
	}
	if q.Session == "" {
		return store.Query{}, &ParamError{"session_id", "is required"}
	}
	if s := params.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageSize {
			return store.Query{}, &ParamError{"limit", fmt.Sprintf("must be an integer from 1 to %d, got %q", maxPageSize, s)}
		}
		q.Limit = n
	}
	return q, nil
}
