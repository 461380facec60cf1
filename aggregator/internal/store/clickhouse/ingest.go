package clickhouse

import (
	"context"
	"fmt"
	"time"

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

	fresh, found, err := s.insertNew(ctx, first, &st)
	if err != nil {
		return store.IngestStats{}, err
	}
	st.Stored = len(fresh)

	// Outside the lock: the next call can go on meanwhile.
	ids := make([]string, len(fresh))
	for i, r := range fresh {
		ids[i] = r.ev.GetId()
	}
	if len(ids) > 0 {
		lost, err := s.checkRaces(ctx, ids)
		if err != nil {
			return store.IngestStats{}, fmt.Errorf("store: clickhouse: ingest: %w", err)
		}
		st.Stored -= lost
		st.Duplicates += lost
	}
	// The events answered as stored, also those stored before, are
	// acknowledged only once the servers Options.AckReplicas asks for
	// hold them.
	if err := s.awaitReplicas(ctx, append(ids, found...)); err != nil {
		return store.IngestStats{}, fmt.Errorf("store: clickhouse: ingest: %w", err)
	}
	return st, nil
}

// insertNew is the part of Ingest under ingestMu: it looks up the ids of first
// (the first copy of each id in the call), counts those stored already in
// st, and inserts the others. It returns the rows it inserted and the ids
// it found stored.
func (s *Store) insertNew(ctx context.Context, first []row, st *store.IngestStats) (fresh []row, found []string, err error) {
	s.ingestMu.Lock()
	defer s.ingestMu.Unlock()
	if err := ctx.Err(); err != nil { // the wait for the lock can be long
		return nil, nil, err
	}
	ids := make([]string, len(first))
	for i, r := range first {
		ids[i] = r.ev.GetId()
	}
	stored, err := s.copies(ctx, ids)
	if err != nil {
		return nil, nil, fmt.Errorf("store: clickhouse: ingest: look up ids: %w", err)
	}
	fresh = first[:0]
	var raced []string
	for _, r := range first {
		n, ok := stored[r.ev.GetId()]
		if !ok {
			fresh = append(fresh, r)
			continue
		}
		st.Duplicates++
		found = append(found, r.ev.GetId())
		if n > 1 {
			// Two aggregators raced on it, and the one that lost may
			// have stopped before recording it; record it now.
			raced = append(raced, r.ev.GetId())
		}
	}
	if len(raced) > 0 {
		if err := s.recordDuplicates(ctx, raced); err != nil {
			return nil, nil, fmt.Errorf("store: clickhouse: ingest: %w", err)
		}
	}
	if len(fresh) == 0 {
		return nil, found, nil
	}

	if err := s.freshMark(ctx); err != nil {
		return nil, nil, fmt.Errorf("store: clickhouse: ingest: %w", err)
	}
	seq := s.nextSeq()
	err = s.insert(ctx, fresh, seq)
	// Also after an error: the server may have stored the rows all the
	// same, and their numbers must not be given out again.
	s.inserted(seq, len(fresh), err)
	if err != nil {
		return nil, nil, fmt.Errorf("store: clickhouse: ingest: insert %d events: %w", len(fresh), err)
	}
	s.notifyStored()

	return fresh, found, nil
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
	now := time.Now().Add(time.Duration(s.clockSkew.Load()))
	return max(s.lastSeq.Load()+1, uint64(now.UnixMicro())<<10)
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

// copies returns how many rows each of ids has (ids that have none are
// absent): see allCopies.
func (s *Store) copies(ctx context.Context, ids []string) (map[string]int, error) {
	all, err := s.allCopies(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(all))
	for id, hs := range all {
		out[id] = len(hs)
	}
	return out, nil
}

// allCopies returns the rows of each of ids in the events table; with a
// cluster, those on any of its servers, whether or not they have reached
// the others (cluster.copies).
func (s *Store) allCopies(ctx context.Context, ids []string) (map[string]holders, error) {
	if s.cluster != nil {
		return s.cluster.copies(ctx, s.db, ids)
	}
	return copyKeys(ctx, s.conn, s.table("events"), ids)
}

// insert stores rows with the sequence numbers from seq on, in one INSERT:
// it returns when the server has written them (and the rollups' view has
// counted them).
func (s *Store) insert(ctx context.Context, rows []row, seq uint64) error {
	return s.send(ctx, "INSERT INTO "+s.table("events")+
		" (id, seq, writer, event_time, session, category, name, body, user_id, device_id, subjects)", func(b batch) error {
		for i, r := range rows {
			ev := r.ev
			// What an erasure of a user or device matches (subject.Matches);
			// "" matches no subject.
			user, _ := subject.DataValue(subject.User, ev.GetData())
			device, _ := subject.DataValue(subject.Device, ev.GetData())
			if err := b.Append(ev.GetId(), seq+uint64(i), s.writer, store.EventTime(ev),
				ev.GetSession(), ev.GetCategory(), ev.GetName(), string(r.body), user, device, uint8(1)); err != nil {
				return err
			}
		}
		return nil
	})
}

// recordDuplicates records ids that have more than one row.
func (s *Store) recordDuplicates(ctx context.Context, ids []string) error {
	err := s.send(ctx, "INSERT INTO "+s.table("duplicates")+" (id)", func(b batch) error {
		for _, id := range ids {
			if err := b.Append(id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record duplicates: %w", err)
	}
	return nil
}

// lostRaces counts the ids among ids whose canonical copy is not this
// store's.
func (s *Store) lostRaces(ctx context.Context, ids []string) (int, error) {
	keys, err := s.allCopies(ctx, ids)
	if err != nil {
		return 0, fmt.Errorf("read racing copies: %w", err)
	}
	best := least(keys)
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
