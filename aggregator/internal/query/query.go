// Package query is the analyst API's view of stored events: how the
// parameters of GET /events and GET /stats become store queries, and how
// events, pages and statistics are written as JSON.
//
// The JSON shapes (see [Event], [Page], [Stats]) are a contract with analysts
// and their tools; fields may be added, never renamed or retyped. Event times
// are RFC 3339 in UTC with exactly nine fractional digits, so that they sort
// as strings and parse with time.RFC3339Nano; bucket times of statistics are
// whole seconds (time.RFC3339).
//
// Each endpoint declares the parameters it reads ([EventsParams],
// [StatsParams]); the parsers can read no other, and the OpenAPI document is
// tested against these lists.
package query

import (
	"encoding/json"
	"time"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// TimeFormat is how times are written: RFC 3339, UTC, nanoseconds.
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

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
