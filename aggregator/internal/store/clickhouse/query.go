package clickhouse

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/fnv"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// filter is the WHERE clause of a query's filters and time range, or none
// when nothing can match.
func filter(q store.Query) (w where, none bool) {
	for _, f := range []struct{ col, v string }{{"session", q.Session}, {"category", q.Category}, {"name", q.Name}} {
		if f.v == "" {
			continue
		}
		if !store.ValidFilter(f.v) {
			return w, true
		}
		w.add(f.col+" = ?", f.v)
	}
	var start, end int64
	if !q.Start.IsZero() {
		start = store.UnixNano(q.Start)
		w.add("event_time >= ?", start)
	}
	if !q.End.IsZero() {
		end = store.UnixNano(q.End)
		if !q.Start.IsZero() && end <= start {
			return w, true
		}
		w.add("event_time < ?", end)
	}
	return w, false
}

// cursor is a position in a query's order: after the event (t, id). It is
// base64url of version(1) filters(8) t(8) id, where filters is an FNV-64a
// fingerprint of the query's filters and time range.
type cursor struct {
	filters uint64
	t       int64
	id      string
}

const cursorVersion = 1

func (c cursor) encode() string {
	b := make([]byte, 0, 17+len(c.id))
	b = append(b, cursorVersion)
	b = binary.BigEndian.AppendUint64(b, c.filters)
	b = binary.BigEndian.AppendUint64(b, uint64(c.t))
	b = append(b, c.id...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string, filters uint64) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 18 || b[0] != cursorVersion {
		return cursor{}, fmt.Errorf("%w: not a cursor of this store", store.ErrBadCursor)
	}
	c := cursor{filters: binary.BigEndian.Uint64(b[1:9]), t: int64(binary.BigEndian.Uint64(b[9:17])), id: string(b[17:])}
	if c.filters != filters {
		return cursor{}, fmt.Errorf("%w: the cursor belongs to a query with other filters or another time range", store.ErrBadCursor)
	}
	return c, nil
}

// fingerprint identifies q's filters and time range.
func fingerprint(q store.Query) uint64 {
	h := fnv.New64a()
	for _, v := range []string{q.Session, q.Category, q.Name} {
		h.Write([]byte(v))
		h.Write([]byte{0})
	}
	for _, t := range [][2]int64{{b2i(q.Start.IsZero()), store.UnixNano(q.Start)}, {b2i(q.End.IsZero()), store.UnixNano(q.End)}} {
		if t[0] == 1 {
			t[1] = 0
		}
		h.Write(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(t[0])), uint64(t[1])))
	}
	return h.Sum64()
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Query implements store.Store.
func (s *Store) Query(ctx context.Context, q store.Query) (store.Result, error) {
	if err := s.acquire(); err != nil {
		return store.Result{}, err
	}
	defer s.release()
	if err := ctx.Err(); err != nil {
		return store.Result{}, err
	}
	if err := q.CheckPaging(); err != nil {
		return store.Result{}, err
	}
	fp := fingerprint(q)
	w, none := filter(q)
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor, fp)
		if err != nil {
			return store.Result{}, err
		}
		w.add("(event_time < ? OR event_time = ? AND id > ?)", c.t, c.t, c.id)
	}
	res := store.Result{Events: []*eventpb.Event{}}
	if none {
		return res, nil
	}
	s.canonicalOnly(&w)
	limit := q.PageSize()
	// One row per id (racing copies of an event have its id and time, so
	// they sort together), the canonical copy first; one more than the
	// page to know whether there is a next one.
	sql := "SELECT event_time, id, body FROM " + s.table("events") + w.sql() +
		" ORDER BY event_time DESC, id ASC, seq ASC, writer ASC LIMIT 1 BY id LIMIT ?, ?"
	rows, err := s.conn.Query(ctx, sql, append(w.args, q.Offset, limit+1)...)
	if err != nil {
		return store.Result{}, fmt.Errorf("store: clickhouse: query: %w", err)
	}
	defer rows.Close()
	var last cursor
	for rows.Next() {
		var t int64
		var id, body string
		if err := rows.Scan(&t, &id, &body); err != nil {
			return store.Result{}, fmt.Errorf("store: clickhouse: query: %w", err)
		}
		if len(res.Events) == limit {
			res.Next = cursor{filters: fp, t: last.t, id: last.id}.encode()
			break
		}
		ev, err := decode(body)
		if err != nil {
			return store.Result{}, err
		}
		res.Events = append(res.Events, ev)
		last = cursor{t: t, id: id}
	}
	if err := rows.Err(); err != nil {
		return store.Result{}, fmt.Errorf("store: clickhouse: query: %w", err)
	}
	return res, nil
}

// Count implements store.Store: the distinct ids of the matching rows.
func (s *Store) Count(ctx context.Context, q store.Query) (int, error) {
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.release()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	w, none := filter(q)
	if none {
		return 0, nil
	}
	s.canonicalOnly(&w)
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT uniqExact(id) FROM "+s.table("events")+w.sql(), w.args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: clickhouse: count: %w", err)
	}
	return int(n), nil
}
