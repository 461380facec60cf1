package pebble

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

var _ store.Eraser = (*Store)(nil)

// eraseBatch is the most events one erasure batch removes: a subject with
// more is removed in several synced batches, each under ingestMu, so ingest
// waits for one batch at a time, never for the whole erasure.
const eraseBatch = 4096

// Erase implements store.Eraser. Finding the subject's events reads the
// session index's keys for a session or uid (O(the session's events)), and
// every stored event for a user or device, which no index holds (O(the
// store)); neither holds ingestMu. The events found are then removed in
// batches under ingestMu: each event is read again (an erasure running at
// the same time may have taken it), and its primary key, its index entries
// and its counts in the rollups go in one synced batch, which also empties
// the event's feed entry: the feed keeps its numbers (a cursor, and the next
// number after a restart, stay as they were) but no longer holds the id,
// and Export passes over it. Finding the feed entries reads the whole feed,
// O(events stored).
func (p *Store) Erase(ctx context.Context, s store.Subject) ([]string, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("store: erase: %w", err)
	}
	if err := p.acquire(); err != nil {
		return nil, err
	}
	defer p.release()
	ids, err := p.subjectIDs(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("store: erase %s: %w", s, err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	seqs, err := p.feedSeqs(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("store: erase %s: %w", s, err)
	}
	var erased []string
	for len(ids) > 0 {
		n := min(len(ids), eraseBatch)
		got, err := p.eraseIDs(ctx, ids[:n], seqs)
		erased = append(erased, got...)
		if err != nil {
			return erased, fmt.Errorf("store: erase %s: %d events removed, then: %w", s, len(erased), err)
		}
		ids = ids[n:]
	}
	return erased, nil
}

// subjectIDs returns the ids of the stored events of s.
func (p *Store) subjectIDs(ctx context.Context, s store.Subject) ([]string, error) {
	var ids []string
	if s.BySession() {
		prefix := indexPrefix(nil, ksSession, s.Value)
		it, err := p.db.NewIterWithContext(ctx, &pebbledb.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
		if err != nil {
			return nil, err
		}
		for ok := it.First(); ok; ok = it.Next() {
			ids = append(ids, string(it.Key()[len(prefix)+timeLen:]))
		}
		return ids, errors.Join(it.Error(), it.Close())
	}
	it, err := p.db.NewIterWithContext(ctx, &pebbledb.IterOptions{LowerBound: []byte{ksEvent}, UpperBound: []byte{ksEvent + 1}})
	if err != nil {
		return nil, err
	}
	ev := new(eventpb.Event)
	for ok, n := it.First(), 0; ok; ok, n = it.Next(), n+1 {
		if n%1024 == 1023 {
			if err := ctx.Err(); err != nil {
				_ = it.Close()
				return nil, err
			}
		}
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return nil, err
		}
		if err := proto.Unmarshal(v, ev); err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("decode event %q: %w", it.Key()[1:], err)
		}
		if store.SubjectMatches(s, ev) {
			ids = append(ids, ev.GetId())
		}
	}
	return ids, errors.Join(it.Error(), it.Close())
}

// feedSeqs finds the feed entries of ids: id → seq. An event's entry is
// written with it and never changes but by an erasure, so what it finds
// stays true while the erasure runs.
func (p *Store) feedSeqs(ctx context.Context, ids []string) (map[string]uint64, error) {
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	seqs := make(map[string]uint64, len(ids))
	it, err := p.db.NewIterWithContext(ctx, &pebbledb.IterOptions{LowerBound: []byte{ksFeed}, UpperBound: []byte{ksFeed + 1}})
	if err != nil {
		return nil, err
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return nil, err
		}
		if k := it.Key(); len(k) == 9 && want[string(v)] {
			seqs[string(v)] = binary.BigEndian.Uint64(k[1:])
		}
	}
	return seqs, errors.Join(it.Error(), it.Close())
}

// eraseIDs removes the events with these ids that are still stored, and
// empties their feed entries (seqs), in one synced batch, and returns the
// ids it removed.
func (p *Store) eraseIDs(ctx context.Context, ids []string, seqs map[string]uint64) ([]string, error) {
	p.ingestMu.Lock()
	defer p.ingestMu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b := p.db.NewBatch()
	defer b.Close()
	rollups := rollupDeltas{}
	var key []byte
	var erased []string
	for _, id := range ids {
		key = eventKey(key[:0], id)
		ev, err := p.get(p.db, key)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := b.Delete(key, nil); err != nil {
			return nil, err
		}
		if key, err = indexKeys(key, ev, func(k []byte) error { return b.Delete(k, nil) }); err != nil {
			return nil, err
		}
		if seq, ok := seqs[id]; ok {
			if err := b.Set(feedKey(seq), nil, nil); err != nil {
				return nil, err
			}
		}
		rollups.remove(ev)
		erased = append(erased, id)
	}
	if len(erased) == 0 {
		return nil, nil
	}
	if err := rollups.apply(p.db, b); err != nil {
		return nil, fmt.Errorf("rollups: %w", err)
	}
	if err := b.Commit(pebbledb.Sync); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return erased, nil
}
