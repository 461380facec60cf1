package clickhouse

import (
	"context"
	"fmt"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/internal/subject"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// row is one event as inserted.
type row struct {
	ev   *eventpb.Event
	body []byte
}

// Ingest implements store.Store.
func (s *Store) Ingest(ctx context.Context, events []*eventpb.Event) (st store.IngestStats, err error) {
	if err := s.acquire(); err != nil {
		return store.IngestStats{}, err
	}
	defer s.release()
	if err := ctx.Err(); err != nil {
		return store.IngestStats{}, err
	}
	began := time.Now()
	defer func() {
		if err == nil {
			s.metrics.Observe(st, time.Since(began))
		}
	}()

	// Validate and encode outside the lock; the first copy of each id in
	// the call goes on.
	first := make([]row, 0, len(events))
	seen := make(map[string]struct{}, len(events))
	for i, ev := range events {
		reason := store.Problem(ev)
		var body []byte
		if reason == "" {
			var err error
			if body, err = marshal.Marshal(ev); err != nil {
				reason = store.ReasonUnencodable + err.Error()
			}
		}
		if reason != "" {
			st.Rejected = append(st.Rejected, store.Rejection{Index: i, ID: ev.GetId(), Reason: reason})
			continue
		}
		if _, dup := seen[ev.GetId()]; dup {
			st.Duplicates++
			continue
		}
		seen[ev.GetId()] = struct{}{}
		first = append(first, row{ev, body})
	}
	if len(first) == 0 {
		return st, nil
	}

	fresh, err := s.insertNew(ctx, first, &st)
	if err != nil {
		return store.IngestStats{}, err
	}
	if len(fresh) == 0 {
		return st, nil
	}
	st.Stored = len(fresh)

	// Outside the lock: the next call can go on meanwhile.
	ids := make([]string, len(fresh))
	for i, r := range fresh {
		ids[i] = r.ev.GetId()
	}
	lost, err := s.checkRaces(ctx, ids)
	if err != nil {
		return store.IngestStats{}, fmt.Errorf("store: clickhouse: ingest: %w", err)
	}
	st.Stored -= lost
	st.Duplicates += lost
	return st, nil
}

// insertNew is the part of Ingest under ingestMu: it looks up the ids of first
// (the first copy of each id in the call), counts those stored already in
// st, and inserts the others, which it returns.
func (s *Store) insertNew(ctx context.Context, first []row, st *store.IngestStats) ([]row, error) {
	s.ingestMu.Lock()
	defer s.ingestMu.Unlock()
	if err := ctx.Err(); err != nil { // the wait for the lock can be long
		return nil, err
	}
	ids := make([]string, len(first))
	for i, r := range first {
		ids[i] = r.ev.GetId()
	}
	stored, err := s.copies(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("store: clickhouse: ingest: look up ids: %w", err)
	}
	fresh := first[:0]
	var raced []string
	for _, r := range first {
		n, ok := stored[r.ev.GetId()]
		if !ok {
			fresh = append(fresh, r)
			continue
		}
		st.Duplicates++
		if n > 1 {
			// Two aggregators raced on it, and the one that lost may
			// have stopped before recording it; record it now.
			raced = append(raced, r.ev.GetId())
		}
	}
	if len(raced) > 0 {
		if err := s.recordDuplicates(ctx, raced); err != nil {
			return nil, fmt.Errorf("store: clickhouse: ingest: %w", err)
		}
	}
	if len(fresh) == 0 {
		return nil, nil
	}

	seq := s.nextSeq()
	err = s.insert(ctx, fresh, seq)
	// Also after an error: the server may have stored the rows all the
	// same, and their numbers must not be given out again.
	s.lastSeq.Store(seq + uint64(len(fresh)) - 1)
	if err != nil {
		return nil, fmt.Errorf("store: clickhouse: ingest: insert %d events: %w", len(fresh), err)
	}
	s.notifyStored()

	return fresh, nil
}

// checkRaces looks, after an insert of ids, for copies of them that
// another aggregator inserted meanwhile. Of two racing inserts, whichever
// looks second sees both copies and records the id in the duplicates
// table (and when it stops before it can, the pre-check of the events'
// resend does). It returns how many of ids have a canonical copy that is
// not this store's: those the call reports as duplicates.
func (s *Store) checkRaces(ctx context.Context, ids []string) (lost int, err error) {
	after, err := s.copies(ctx, ids)
	if err != nil {
		return 0, fmt.Errorf("check for racing copies: %w", err)
	}
	var raced []string
	for _, id := range ids {
		if after[id] > 1 {
			raced = append(raced, id)
		}
	}
	if len(raced) == 0 {
		return 0, nil
	}
	if err := s.recordDuplicates(ctx, raced); err != nil {
		return 0, err
	}
	if lost, err = s.lostRaces(ctx, raced); err != nil {
		return 0, err
	}
	s.metrics.raced.Add(float64(len(raced)))
	s.log.Warn("events were inserted by two aggregators at once; reads keep one copy of each", "events", len(raced), "lost", lost)
	return lost, nil
}

// nextSeq is the sequence number of the next row, under ingestMu. Sequence
// numbers follow time (microseconds, with 10 bits to spare for the events
// of one microsecond) so that the rows of several aggregators interleave
// about as they were stored; within this process they only grow.
func (s *Store) nextSeq() uint64 {
	return max(s.lastSeq.Load()+1, uint64(time.Now().UnixMicro())<<10)
}

// idTable carries ids to the server as external data, which has no size
// limit (an IN list in the query text is bounded by max_query_size).
func idTable(ids []string) (*ext.Table, error) {
	t, err := ext.NewTable("ids", ext.Column("id", "String"))
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if err := t.Append(id); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// copies returns how many rows each of ids has in the events table (ids
// that have none are absent).
func (s *Store) copies(ctx context.Context, ids []string) (map[string]uint64, error) {
	t, err := idTable(ids)
	if err != nil {
		return nil, err
	}
	rows, err := s.conn.Query(ch.Context(ctx, ch.WithExternalTable(t)),
		"SELECT id, count() FROM "+s.table("events")+" WHERE id IN (SELECT id FROM ids) GROUP BY id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]uint64)
	for rows.Next() {
		var id string
		var n uint64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}

// insert stores rows with the sequence numbers from seq on, in one INSERT:
// it returns when the server has written them (and the rollups' view has
// counted them).
func (s *Store) insert(ctx context.Context, rows []row, seq uint64) error {
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.table("events")+
		" (id, seq, writer, event_time, session, category, name, body, user_id, device_id, subjects)")
	if err != nil {
		return err
	}
	for i, r := range rows {
		ev := r.ev
		// What an erasure of a user or device matches (subject.Matches);
		// "" matches no subject.
		user, _ := subject.DataValue(subject.User, ev.GetData())
		device, _ := subject.DataValue(subject.Device, ev.GetData())
		if err := b.Append(ev.GetId(), seq+uint64(i), s.writer, store.EventTime(ev),
			ev.GetSession(), ev.GetCategory(), ev.GetName(), string(r.body), user, device, uint8(1)); err != nil {
			b.Abort()
			return err
		}
	}
	return b.Send()
}

// recordDuplicates records ids that have more than one row.
func (s *Store) recordDuplicates(ctx context.Context, ids []string) error {
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.table("duplicates")+" (id)")
	if err != nil {
		return fmt.Errorf("record duplicates: %w", err)
	}
	for _, id := range ids {
		if err := b.Append(id); err != nil {
			b.Abort()
			return fmt.Errorf("record duplicates: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("record duplicates: %w", err)
	}
	return nil
}

// lostRaces counts the ids among ids whose canonical copy is not this
// store's.
func (s *Store) lostRaces(ctx context.Context, ids []string) (int, error) {
	best, err := s.canonical(ctx, ids)
	if err != nil {
		return 0, fmt.Errorf("read racing copies: %w", err)
	}
	lost := 0
	for _, k := range best {
		if k.writer != s.writer {
			lost++
		}
	}
	return lost, nil
}

// storedSignal returns a channel that is closed when this store next
// inserts events.
func (s *Store) storedSignal() <-chan struct{} {
	s.signalMu.Lock()
	defer s.signalMu.Unlock()
	return s.signal
}

// notifyStored wakes the Export calls waiting for events.
func (s *Store) notifyStored() {
	s.signalMu.Lock()
	defer s.signalMu.Unlock()
	close(s.signal)
	s.signal = make(chan struct{})
}
