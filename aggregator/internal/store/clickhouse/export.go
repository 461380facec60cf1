package clickhouse

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// feedCursor is base64url of version(1) store id(8) seq(8) writer(8): the
// position (in the order seq, writer) after which a read continues. The
// store id makes a cursor of another database an error instead of a silent
// skip or repeat.
type feedCursor struct {
	store       [8]byte
	seq, writer uint64
}

const feedCursorVersion = 1

func (c feedCursor) encode() string {
	b := make([]byte, 0, 25)
	b = append(b, feedCursorVersion)
	b = append(b, c.store[:]...)
	b = binary.BigEndian.AppendUint64(b, c.seq)
	b = binary.BigEndian.AppendUint64(b, c.writer)
	return base64.RawURLEncoding.EncodeToString(b)
}

// exportCursor decodes s, a cursor of this database ("" is its start).
func (s *Store) exportCursor(ctx context.Context, c string) (feedCursor, error) {
	id := s.storeID.Load().([8]byte)
	if c == "" {
		return feedCursor{store: id}, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) != 25 || b[0] != feedCursorVersion {
		return feedCursor{}, fmt.Errorf("%w: not an export cursor", store.ErrBadCursor)
	}
	fc := feedCursor{seq: binary.BigEndian.Uint64(b[9:17]), writer: binary.BigEndian.Uint64(b[17:])}
	copy(fc.store[:], b[1:9])
	if fc.store != id {
		// Two stores that created the database at once may have read
		// different ids; the least one recorded is the database's.
		again, ok, err := s.readStoreID(ctx)
		if err != nil {
			return feedCursor{}, fmt.Errorf("store: clickhouse: export: store id: %w", err)
		}
		if ok && again != id {
			s.storeID.Store(again)
			id = again
		}
		if !bytes.Equal(fc.store[:], id[:]) {
			return feedCursor{}, fmt.Errorf("%w: the cursor is from another store (was the database replaced?); start again without one", store.ErrBadCursor)
		}
	}
	return fc, nil
}

// Export implements store.Store. A long-poll wakes when this store inserts
// events, and looks every PollInterval for those of other aggregators on
// the same database.
func (s *Store) Export(ctx context.Context, q store.ExportQuery) (store.ExportResult, error) {
	return store.LongPoll(ctx, q, s.storedSignal, s.poll, s.closing, s.export)
}

// export is one read of the feed, without waiting.
func (s *Store) export(ctx context.Context, q store.ExportQuery) (store.ExportResult, error) {
	if err := s.acquire(); err != nil {
		return store.ExportResult{}, err
	}
	defer s.release()
	after, err := s.exportCursor(ctx, q.After)
	if err != nil {
		return store.ExportResult{}, err
	}
	res := store.ExportResult{Next: after.encode()}
	// The end of the feed now: every row up to it is visible, and every
	// row stored later will be after it (writers.go).
	h, err := s.horizon(ctx)
	if err != nil {
		return store.ExportResult{}, fmt.Errorf("store: clickhouse: export: %w", err)
	}
	if h == 0 || h-1 <= after.seq {
		return res, nil
	}
	end := h - 1
	passed := feedCursor{store: after.store, seq: end, writer: math.MaxUint64}
	w, none := filter(store.Query{Session: q.Session, Category: q.Category, Name: q.Name, Start: q.Start, End: q.End})
	if none {
		res.Next = passed.encode()
		return res, nil
	}
	w.add("(seq > ? OR seq = ? AND writer > ?)", after.seq, after.seq, after.writer)
	w.add("seq <= ?", end)
	if len(q.NamePrefixes) > 0 {
		ors := make([]string, len(q.NamePrefixes))
		for i, p := range q.NamePrefixes {
			ors[i] = "startsWith(name, ?)"
			w.args = append(w.args, p)
		}
		w.conds = append(w.conds, "("+strings.Join(ors, " OR ")+")")
	}
	limit := q.PageSize()
	rows, err := s.conn.Query(ctx, "SELECT seq, writer, id, body FROM "+s.table("events")+w.sql()+
		" ORDER BY seq, writer LIMIT ?", append(w.args, limit)...)
	if err != nil {
		return store.ExportResult{}, fmt.Errorf("store: clickhouse: export: %w", err)
	}
	defer rows.Close()
	type entry struct {
		copyKey
		ev *eventpb.Event
	}
	var page []entry
	for rows.Next() {
		var e entry
		var body string
		if err := rows.Scan(&e.seq, &e.writer, &e.id, &body); err != nil {
			return store.ExportResult{}, fmt.Errorf("store: clickhouse: export: %w", err)
		}
		if e.ev, err = decode(body); err != nil {
			return store.ExportResult{}, err
		}
		page = append(page, e)
	}
	if err := rows.Err(); err != nil {
		return store.ExportResult{}, fmt.Errorf("store: clickhouse: export: %w", err)
	}
	if len(page) < limit {
		res.Next = passed.encode()
	} else {
		last := page[len(page)-1]
		res.Next = feedCursor{store: after.store, seq: last.seq, writer: last.writer}.encode()
	}
	if len(page) == 0 {
		return res, nil
	}
	// A row is in the feed only when it is its id's canonical copy among
	// those visible now: of racing copies, the one read first is the one
	// a later read leaves out, or sorts before this cursor.
	ids := make([]string, len(page))
	for i, e := range page {
		ids[i] = e.id
	}
	best, err := s.canonical(ctx, ids)
	if err != nil {
		return store.ExportResult{}, fmt.Errorf("store: clickhouse: export: %w", err)
	}
	res.Events = make([]*eventpb.Event, 0, len(page))
	for _, e := range page {
		if best[e.id] == e.copyKey {
			res.Events = append(res.Events, e.ev)
		}
	}
	return res, nil
}

// canonical returns the canonical copy of each of ids: its row with the
// least (seq, writer) among those the events table shows.
func (s *Store) canonical(ctx context.Context, ids []string) (map[string]copyKey, error) {
	keys, err := copyKeys(ctx, s.conn, s.table("events"), ids)
	return least(keys), err
}
