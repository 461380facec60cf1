package query

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/proto/eventpb"
)

func TestNewEventJSON(t *testing.T) {
	received := time.Date(2025, 3, 1, 12, 0, 0, 5, time.UTC).UnixNano()
	client := time.Date(2025, 3, 1, 11, 59, 58, 0, time.FixedZone("x", 3600)).UnixNano()
	for _, tc := range []struct {
		name string
		ev   *eventpb.Event
		want string
	}{
		{
			name: "client time and object data",
			ev: &eventpb.Event{
				Id: "h:s1:1", Source: eventpb.Source_SOURCE_HAMUSTRO, Session: "s1", Category: "c", Name: "n",
				ReceivedAt: received, ClientTime: client, Data: []byte(` {"a": 1, "b": "<x>"} `),
				Ip: "10.0.0.1", Edge: "e1", Rule: "hamustro@abc",
			},
			want: `{"id":"h:s1:1","source":"hamustro","session_id":"s1","category":"c","name":"n",` +
				`"timestamp":"2025-03-01T10:59:58.000000000Z","received_at":"2025-03-01T12:00:00.000000005Z",` +
				`"client_time":"2025-03-01T10:59:58.000000000Z","data":{"a":1,"b":"<x>"},` +
				`"ip":"10.0.0.1","edge":"e1","rule":"hamustro@abc"}`,
		},
		{
			name: "no client time, invalid JSON data",
			ev:   &eventpb.Event{Id: "x", Source: eventpb.Source_SOURCE_EYE, ReceivedAt: received, Data: []byte(`{"a":`)},
			want: `{"id":"x","source":"eye","session_id":"","category":"","name":"",` +
				`"timestamp":"2025-03-01T12:00:00.000000005Z","received_at":"2025-03-01T12:00:00.000000005Z",` +
				`"data":"{\"a\":","ip":"","edge":"","rule":""}`,
		},
		{
			name: "no data, unknown source",
			ev:   &eventpb.Event{Id: "y", Source: 42, ReceivedAt: received},
			want: `{"id":"y","source":"unknown","session_id":"","category":"","name":"",` +
				`"timestamp":"2025-03-01T12:00:00.000000005Z","received_at":"2025-03-01T12:00:00.000000005Z",` +
				`"data":null,"ip":"","edge":"","rule":""}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := marshal(NewEvent(tc.ev))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// marshal encodes like the server does: no HTML escaping.
func marshal(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}
