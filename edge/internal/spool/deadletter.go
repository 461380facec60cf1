package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// DeadLetter is an entry the forwarder gave up on, with the reason.
type DeadLetter struct {
	Pos    Position // its position in the queue when it was dead-lettered
	Reason string
	At     time.Time
	Value  []byte
}

// Dead-letter record: version byte, At as big-endian Unix nanoseconds, uvarint
// length of Reason, Reason, Value.
const deadRecordV1 = 1

// undecodableReason is the Reason of a dead letter whose record does not
// parse; its Value is then the whole record, so nothing is lost.
const undecodableReason = "spool: undecodable dead letter record"

func encodeDead(at time.Time, reason string, value []byte) []byte {
	rec := make([]byte, 0, 1+8+binary.MaxVarintLen64+len(reason)+len(value))
	rec = append(rec, deadRecordV1)
	rec = binary.BigEndian.AppendUint64(rec, uint64(at.UnixNano()))
	rec = binary.AppendUvarint(rec, uint64(len(reason)))
	rec = append(rec, reason...)
	return append(rec, value...)
}

// decodeDead parses a dead-letter record. value aliases rec.
func decodeDead(rec []byte) (at time.Time, reason string, value []byte, ok bool) {
	if len(rec) < 1+8 || rec[0] != deadRecordV1 {
		return time.Time{}, "", nil, false
	}
	at = time.Unix(0, int64(binary.BigEndian.Uint64(rec[1:9])))
	n, w := binary.Uvarint(rec[9:])
	if w <= 0 || n > uint64(len(rec)-9-w) {
		return time.Time{}, "", nil, false
	}
	r := rec[9+w:]
	return at, string(r[:n]), r[n:], true
}

// deadValue returns the value a dead-letter record carries: the stored value,
// or the whole record if it does not parse. Every counter uses this length.
func deadValue(rec []byte) []byte {
	if _, _, v, ok := decodeDead(rec); ok {
		return v
	}
	return rec
}

func deadValueLen(rec []byte) int64 { return int64(len(deadValue(rec))) }

// DeadLetter moves the given queue entries to the dead letters, with
// reasons[i] for entries[i], in one synced batch. Only the positions of the
// entries are used: the value moved is the one stored. Entries no longer in
// the queue (already acked or dead-lettered) are skipped, so a retry after an
// error is harmless.
func (s *Spool) DeadLetter(entries []Entry, reasons []string) error {
	if len(entries) != len(reasons) {
		return fmt.Errorf("spool: dead letter: %d entries but %d reasons", len(entries), len(reasons))
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if err := s.usable(); err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	s.adminMu.Lock()
	defer s.adminMu.Unlock()

	at := s.now()
	b := s.db.NewBatch()
	defer func() { _ = b.Close() }()
	seen := make(map[Position]struct{}, len(entries))
	var n, size int64
	key := make([]byte, keyLen)
	for i, e := range entries {
		if _, dup := seen[e.Pos]; dup {
			continue
		}
		seen[e.Pos] = struct{}{}
		putKey(key, prefixQueue, e.Pos)
		v, closer, err := s.db.Get(key)
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("spool: dead letter %s: %w", e.Pos, err)
		}
		rec := encodeDead(at, reasons[i], v)
		n++
		size += int64(len(v))
		_ = closer.Close()
		if err := errors.Join(b.Delete(key, nil), b.Set(appendKey(nil, prefixDead, e.Pos), rec, nil)); err != nil {
			return fmt.Errorf("spool: dead letter %s: %w", e.Pos, err)
		}
	}
	if n == 0 {
		return nil
	}
	if err := s.db.Apply(b, pebble.Sync); err != nil {
		return s.writeFailed("dead letter", err)
	}
	// Add before subtracting (invariant 5).
	s.dead.Add(n)
	s.deadBytes.Add(size)
	s.depth.Add(-n)
	s.bytes.Add(-size)
	return nil
}

// DeadLetters lists at most limit dead letters after position after, in
// order; limit <= 0 means no limit. The dead letters own their values.
func (s *Spool) DeadLetters(after Position, limit int) ([]DeadLetter, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if err := s.usable(); err != nil {
		return nil, err
	}
	var out []DeadLetter
	err := s.eachDead(after, func(pos Position, rec []byte) bool {
		d := DeadLetter{Pos: pos}
		at, reason, v, ok := decodeDead(rec)
		if ok {
			d.At, d.Reason, d.Value = at, reason, slices.Clone(v)
		} else {
			d.Reason, d.Value = undecodableReason, slices.Clone(rec)
		}
		out = append(out, d)
		return limit <= 0 || len(out) < limit
	})
	if err != nil {
		return nil, fmt.Errorf("spool: list dead letters after %s: %w", after, err)
	}
	return out, nil
}

// eachDead calls f for the dead letters after position after, in order, until
// f returns false. rec is only valid during the call.
func (s *Spool) eachDead(after Position, f func(pos Position, rec []byte) bool) error {
	_, upper := prefixBounds(prefixDead)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: keyAfter(prefixDead, after), UpperBound: upper})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		pos, err := decodeKey(it.Key(), prefixDead)
		if err != nil {
			_ = it.Close()
			return err
		}
		rec, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return err
		}
		if !f(pos, rec) {
			break
		}
	}
	return errors.Join(it.Error(), it.Close())
}

// A replay or purge is done in batches of at most this many dead letters or
// (about) bytes, so "all" never builds one huge batch. Each batch is atomic.
const (
	moveBatchEntries = 1024
	moveBatchBytes   = 4 << 20
)

type deadItem struct {
	pos   Position
	value []byte // the value carried (see deadValue), owned
}

// collectDead returns the next batch of dead letters to act on: the given
// positions (those that exist) from index *i on, or when positions is nil the
// dead letters after *after.
func (s *Spool) collectDead(positions []Position, i *int, after *Position) ([]deadItem, error) {
	var items []deadItem
	var size int
	if positions == nil {
		err := s.eachDead(*after, func(pos Position, rec []byte) bool {
			v := deadValue(rec)
			items = append(items, deadItem{pos: pos, value: slices.Clone(v)})
			*after = pos
			size += len(v)
			return len(items) < moveBatchEntries && size < moveBatchBytes
		})
		return items, err
	}
	key := make([]byte, keyLen)
	for ; *i < len(positions) && len(items) < moveBatchEntries && size < moveBatchBytes; *i++ {
		pos := positions[*i]
		putKey(key, prefixDead, pos)
		rec, closer, err := s.db.Get(key)
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		v := slices.Clone(deadValue(rec))
		_ = closer.Close()
		items = append(items, deadItem{pos: pos, value: v})
		size += len(v)
	}
	return items, nil
}

// sortedUnique returns the positions sorted without duplicates, or nil when
// none are given (meaning all).
func sortedUnique(positions []Position) []Position {
	if len(positions) == 0 {
		return nil
	}
	ps := slices.Clone(positions)
	slices.SortFunc(ps, func(a, b Position) int {
		switch {
		case a.Less(b):
			return -1
		case b.Less(a):
			return 1
		}
		return 0
	})
	return slices.Compact(ps)
}

// Replay moves dead letters back to the tail of the queue, with new positions
// in the current epoch, in the order of their old positions: the given
// positions (those that exist), or all dead letters when none are given. It
// returns how many moved. Each batch of up to 1024 is moved atomically and
// synced; on error, the ones counted so far were moved.
func (s *Spool) Replay(positions ...Position) (int, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if err := s.usable(); err != nil {
		return 0, err
	}
	s.adminMu.Lock()
	defer s.adminMu.Unlock()

	positions = sortedUnique(positions)
	var (
		moved int
		i     int
		after Position
	)
	for {
		items, err := s.collectDead(positions, &i, &after)
		if err != nil {
			return moved, fmt.Errorf("spool: replay: %w", err)
		}
		if len(items) == 0 {
			return moved, nil
		}
		if err := s.replay(items); err != nil {
			return moved, err
		}
		moved += len(items)
	}
}

// replay moves items to the tail of the queue through the ordered commit path
// (see Spool.mu). s.adminMu must be held.
func (s *Spool) replay(items []deadItem) error {
	var size int64
	b := s.db.NewBatch()
	key := make([]byte, keyLen)
	s.mu.Lock()
	first := s.nextSeq
	for i, it := range items {
		putKey(key, prefixDead, it.pos)
		err := b.Delete(key, nil)
		putKey(key, prefixQueue, Position{Epoch: s.epoch, Seq: first + uint64(i)})
		if err = errors.Join(err, b.Set(key, it.value, nil)); err != nil {
			s.mu.Unlock()
			_ = b.Close()
			return fmt.Errorf("spool: replay: %w", err)
		}
		size += int64(len(it.value))
	}
	err := s.db.ApplyNoSyncWait(b, pebble.Sync)
	s.nextSeq += uint64(len(items))
	s.lastSeq.Store(s.nextSeq - 1)
	if err == nil {
		// Add before subtracting (invariant 5).
		n := int64(len(items))
		s.depth.Add(n)
		s.bytes.Add(size)
		s.dead.Add(-n)
		s.deadBytes.Add(-size)
		s.wakeLocked()
	}
	s.mu.Unlock()
	if err != nil {
		_ = b.Close()
		return s.writeFailed("replay", err)
	}
	err = b.SyncWait()
	_ = b.Close()
	if err != nil {
		return s.writeFailed("replay: sync", err)
	}
	return nil
}

// Purge deletes dead letters: the given positions (those that exist), or all
// when none are given. It returns how many were deleted. Deleting all is one
// synced DeleteRange; given positions are deleted in synced batches.
func (s *Spool) Purge(positions ...Position) (int, error) {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if err := s.usable(); err != nil {
		return 0, err
	}
	s.adminMu.Lock()
	defer s.adminMu.Unlock()

	if len(positions) == 0 {
		_, _, n, size, err := s.scan(prefixDead, nil, nil, deadValueLen)
		if err != nil {
			return 0, fmt.Errorf("spool: purge: count: %w", err)
		}
		if n == 0 {
			return 0, nil
		}
		lower, upper := prefixBounds(prefixDead)
		if err := s.db.DeleteRange(lower, upper, pebble.Sync); err != nil {
			return 0, s.writeFailed("purge", err)
		}
		s.dead.Add(-n)
		s.deadBytes.Add(-size)
		return int(n), nil
	}

	positions = sortedUnique(positions)
	var (
		purged int
		i      int
	)
	for {
		items, err := s.collectDead(positions, &i, nil)
		if err != nil {
			return purged, fmt.Errorf("spool: purge: %w", err)
		}
		if len(items) == 0 {
			return purged, nil
		}
		b := s.db.NewBatch()
		var size int64
		key := make([]byte, keyLen)
		for _, it := range items {
			putKey(key, prefixDead, it.pos)
			if err := b.Delete(key, nil); err != nil {
				_ = b.Close()
				return purged, fmt.Errorf("spool: purge: %w", err)
			}
			size += int64(len(it.value))
		}
		err = s.db.Apply(b, pebble.Sync)
		_ = b.Close()
		if err != nil {
			return purged, s.writeFailed("purge", err)
		}
		s.dead.Add(-int64(len(items)))
		s.deadBytes.Add(-size)
		purged += len(items)
	}
}
