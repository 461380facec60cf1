package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

var _ store.Expirer = (*Store)(nil)

// expireChunk is the most events one batch of Expire removes, and
// expireScan the most index keys it reads for one batch; ingestMu is held
// while a batch is read and committed, so these bound how long ingest
// waits.
const (
	expireChunk = 1000
	expireScan  = 20 * expireChunk
)

// Expire implements store.Expirer; see the package doc (Retention) for how.
func (p *Store) Expire(ctx context.Context, r store.Retention, now time.Time) (store.ExpireStats, error) {
	if err := p.acquire(); err != nil {
		return store.ExpireStats{}, err
	}
	defer p.release()
	st := store.ExpireStats{ByCategory: map[string]int{}}
	if !r.Enabled() {
		return st, nil
	}
	cats, err := p.rollupCategories(ctx)
	if err != nil {
		return st, fmt.Errorf("store: expire: %w", err)
	}
	var spans [][2][]byte // time-ordered key ranges to compact afterwards
	for _, c := range cats {
		cut, ok := r.Cutoff(c, now)
		if !ok || cut == math.MinInt64 {
			continue
		}
		// An event of c has its category index entry when c is not
		// empty; events without a category are found through the time
		// index, whose entries of other categories are passed over.
		prefix := []byte{ksTime}
		if c != "" {
			prefix = indexPrefix(nil, ksCategory, c)
		}
		// Keys from prefix+T(cut-1) to the prefix's end are the events
		// with a time before cut (later times sort first).
		lower := binary.BigEndian.AppendUint64(bytes.Clone(prefix), invTime(cut-1))
		upper := prefixEnd(prefix)
		spans = append(spans, [2][]byte{bytes.Clone(lower), upper})
		for {
			n, next, err := p.expireBatch(ctx, c, cut, prefix, lower, upper)
			st.Removed += n
			if n > 0 {
				st.ByCategory[c] += n
			}
			if err != nil {
				return st, fmt.Errorf("store: expire category %q: %w", c, err)
			}
			if next == nil {
				break
			}
			lower = next
		}
	}
	if st.Removed == 0 {
		return st, nil
	}
	if err := p.trimFeed(ctx); err != nil {
		return st, fmt.Errorf("store: expire: trim the feed: %w", err)
	}
	// Removed events leave tombstones; compacting the time-ordered ranges
	// they were in drops them (and the range deletions) now instead of when
	// Pebble gets to them. Tombstones of the primary and the session and
	// name indexes are scattered and left to Pebble's own compactions.
	for _, sp := range spans {
		if err := p.db.Compact(ctx, sp[0], sp[1], false); err != nil {
			return st, fmt.Errorf("store: expire: compact: %w", err)
		}
	}
	return st, nil
}

// expireBatch removes, in one synced batch, up to expireChunk events of
// category from the index range [lower, upper) whose keys start with prefix.
// It returns how many it removed and where the next batch starts, nil when
// the range is done.
//
// Walking a category's index, it holds ingestMu from the first read to the
// commit, because it covers the entries it read with one range deletion and
// no ingest may add an entry inside that range meanwhile. Walking the time
// index (events without a category) it deletes keys one by one and reads
// without the lock, taking it only to check that the events it found are
// still stored (a concurrent Expire may have removed them; nothing else
// changes a stored event) and to commit.
func (p *Store) expireBatch(ctx context.Context, category string, cut int64, prefix, lower, upper []byte) (int, []byte, error) {
	byCategory := prefix[0] == ksCategory
	if byCategory {
		p.ingestMu.Lock()
		defer p.ingestMu.Unlock()
	}
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	it, err := p.db.NewIterWithContext(ctx, &pebbledb.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return 0, nil, err
	}
	defer it.Close()
	idKey := []byte{ksEvent}
	var first, last []byte
	var found []*eventpb.Event
	scanned := 0
	valid := it.First()
	for ; valid && len(found) < expireChunk && scanned < expireScan; valid = it.Next() {
		scanned++
		k := it.Key()
		if len(k) < len(prefix)+timeLen {
			return 0, nil, fmt.Errorf("malformed index key %q", k)
		}
		if first == nil {
			first = bytes.Clone(k)
		}
		last = append(last[:0], k...)
		idKey = append(idKey[:1], k[len(prefix)+timeLen:]...)
		ev, err := p.get(p.db, idKey)
		if errors.Is(err, store.ErrNotFound) {
			continue // removed meanwhile; on the category index, an entry the range deletion drops
		}
		if err != nil {
			return 0, nil, err
		}
		if ev.GetCategory() != category || store.EventTime(ev) >= cut {
			if byCategory {
				return 0, nil, fmt.Errorf("index entry %q names event %q of category %q at %d", k, ev.GetId(), ev.GetCategory(), store.EventTime(ev))
			}
			continue // another category's event in the time index
		}
		found = append(found, ev)
	}
	if err := it.Error(); err != nil {
		return 0, nil, err
	}
	if first == nil {
		return 0, nil, nil
	}
	after := append(bytes.Clone(last), 0)
	next := after
	if !valid {
		next = nil
	}
	if len(found) == 0 && !byCategory {
		return 0, next, nil
	}
	if !byCategory {
		p.ingestMu.Lock()
		defer p.ingestMu.Unlock()
		kept := found[:0]
		for _, ev := range found {
			ok, err := p.has(eventKey(idKey[:0], ev.GetId()))
			if err != nil {
				return 0, nil, err
			}
			if ok {
				kept = append(kept, ev)
			}
		}
		found = kept
	}

	b := p.db.NewBatch()
	defer b.Close()
	rollups := rollupDeltas{}
	var key []byte
	for _, ev := range found {
		if err := b.Delete(eventKey(idKey[:0], ev.GetId()), nil); err != nil {
			return 0, nil, err
		}
		key, err = indexKeys(key, ev, func(ik []byte) error {
			if byCategory && ik[0] == ksCategory {
				return nil // in the range deleted below
			}
			return b.Delete(ik, nil)
		})
		if err != nil {
			return 0, nil, err
		}
		rollups.remove(ev)
	}
	if byCategory {
		// Every key of [first, last] was read under ingestMu, which no
		// ingest can add to meanwhile: the range deletion removes exactly
		// those.
		if err := b.DeleteRange(first, after, nil); err != nil {
			return 0, nil, err
		}
	}
	if err := rollups.apply(p.db, b); err != nil {
		return 0, nil, fmt.Errorf("rollups: %w", err)
	}
	if err := b.Commit(pebbledb.Sync); err != nil {
		return 0, nil, fmt.Errorf("commit removal of %d events: %w", len(found), err)
	}
	return len(found), next, nil
}

// rollupCategories returns every category that has a day rollup: every
// category of a stored event ("" included).
func (p *Store) rollupCategories(ctx context.Context) ([]string, error) {
	pre := rollupPrefix(nil, store.Day)
	it, err := p.db.NewIterWithContext(ctx, &pebbledb.IterOptions{LowerBound: pre, UpperBound: prefixEnd(pre)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	seen := map[string]bool{}
	var out []string
	for valid := it.First(); valid; valid = it.Next() {
		_, c, _, err := parseRollupKey(it.Key())
		if err != nil {
			return nil, err
		}
		if !seen[string(c)] {
			seen[string(c)] = true
			out = append(out, string(c))
		}
	}
	return out, it.Error()
}

// trimFeed deletes the feed entries at its head whose events were removed,
// up to the first entry whose event is stored. The last entry is always
// kept, even when its event is gone: Open reads the last sequence number
// given out from it, and a number given again would be skipped by readers
// whose cursors passed it.
func (p *Store) trimFeed(ctx context.Context) error {
	it, err := p.db.NewIterWithContext(ctx, &pebbledb.IterOptions{LowerBound: []byte{ksFeed}, UpperBound: []byte{ksFeed + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	var first, end []byte
	idKey := []byte{ksEvent}
	for valid := it.First(); valid; valid = it.Next() {
		k := bytes.Clone(it.Key()) // the iterator moves below
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		ok, err := p.has(append(idKey[:1], v...))
		if err != nil {
			return err
		}
		if ok {
			break
		}
		if !it.Next() { // k is the last entry: keep it
			break
		}
		it.Prev()
		if first == nil {
			first = k
		}
		end = append(k, 0)
	}
	if err := it.Error(); err != nil {
		return err
	}
	if first == nil {
		return nil
	}
	// Not synced: after a crash the next pass trims them again.
	return p.db.DeleteRange(first, end, pebbledb.NoSync)
}
