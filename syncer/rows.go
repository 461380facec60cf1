package syncer

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/edgetrack/edgetrack/internal/eventdata"
)

// row is an event as the SQL targets store it.
type row struct {
	id, session, category, name, source string
	eventTime, receivedAt               time.Time
	edge, ip                            string
	userID                              *string // data.user_id, when the event has one
	data                                []byte  // JSON; nil for none
}

// args are the row's values in the order of eventCols.
func (r row) args() []any {
	var data, user any
	if r.data != nil {
		data = string(r.data)
	}
	if r.userID != nil {
		user = *r.userID
	}
	return []any{r.id, r.session, r.category, r.name, r.eventTime, r.receivedAt, r.source, r.edge, r.ip, user, data}
}

// match is a cookie-sync match: the cookiesync rule's events with ids
// "cs:<partner>:<partner id>:<uid>".
type match struct {
	partner, partnerID, uid string
	at                      time.Time
}

func parseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: %w", field, s, err)
	}
	return t.UTC(), nil
}

// toRow maps an event of the feed to its row.
func toRow(e Event) (row, error) {
	r := row{id: e.ID, session: e.SessionID, category: e.Category, name: e.Name, source: e.Source, edge: e.Edge, ip: e.IP}
	var err error
	if r.eventTime, err = parseTime("timestamp", e.Timestamp); err != nil {
		return row{}, fmt.Errorf("event %s: %w", e.ID, err)
	}
	if r.receivedAt, err = parseTime("received_at", e.ReceivedAt); err != nil {
		return row{}, fmt.Errorf("event %s: %w", e.ID, err)
	}
	if d := bytes.TrimSpace(e.Data); len(d) > 0 && !bytes.Equal(d, []byte("null")) {
		r.data = d
		r.userID = userID(d)
	}
	return r, nil
}

// userID is data's top-level user_id as text (eventdata.Field), or nil.
func userID(data []byte) *string {
	if s, ok := eventdata.Field(data, "user_id"); ok {
		return &s
	}
	return nil
}

// toMatch reads a cookie-sync match out of an event, if it is one.
func toMatch(e Event, r row) (match, bool) {
	if e.Source != "cookiesync" || e.Category != "cookiesync" || e.Name != "match" {
		return match{}, false
	}
	m, ok := matchOfID(e.ID)
	m.at = r.eventTime
	return m, ok
}

// matchOfID reads partner, partner id and uid out of a match event's id,
// "cs:<partner>:<partner id>:<uid>" (the rule refuses ':' in them).
func matchOfID(id string) (match, bool) {
	rest, ok := strings.CutPrefix(id, "cs:")
	if !ok {
		return match{}, false
	}
	parts := strings.Split(rest, ":")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return match{}, false
	}
	return match{partner: parts[0], partnerID: parts[1], uid: parts[2]}, true
}

// latestMatches keeps, per partner and partner id, the latest match of a
// batch (an upsert may touch a row once per statement).
func latestMatches(ms []match) []match {
	idx := map[[2]string]int{}
	out := ms[:0:0]
	for _, m := range ms {
		k := [2]string{m.partner, m.partnerID}
		if i, ok := idx[k]; ok {
			if !m.at.Before(out[i].at) {
				out[i] = m
			}
			continue
		}
		idx[k] = len(out)
		out = append(out, m)
	}
	return out
}

// placeholderList writes n groups of k placeholders: "(p1, p2), (p3, p4)".
func placeholderList(n, k int, ph func(i int) string) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j := 0; j < k; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(ph(i*k + j + 1))
		}
		b.WriteByte(')')
	}
	return b.String()
}

// placeholders writes n placeholders: "p1, p2, p3".
func placeholders(n int, ph func(i int) string) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		if i > 1 {
			b.WriteString(", ")
		}
		b.WriteString(ph(i))
	}
	return b.String()
}

func dollar(i int) string { return "$" + strconv.Itoa(i) }
func question(int) string { return "?" }
func atP(i int) string    { return "@p" + strconv.Itoa(i) }
