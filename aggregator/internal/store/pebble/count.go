package pebble

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"github.com/edgetrack/edgetrack/aggregator/internal/store"
)

// Counting and skipping without reading events.
//
// A query that the rollups can answer (no session filter) has its time range
// cut into segments: whole days in the middle, whole hours and minutes around
// them, and at each end the part of a minute that no whole bucket covers.
// A segment of whole buckets is counted from the rollups of its width; a part
// of a minute by counting its index keys. So Count reads at most
// days + 2·23 hours + 2·59 minutes of rollup keys (each times the distinct
// category/name pairs in them) and two minutes' worth of index keys, however
// many events match.
//
// Skipping the first n matching events (Query.Offset) walks the segments
// newest first, subtracting their counts, until the one holding the n-th
// event; inside it, it walks the buckets newest first and descends into the
// one holding it: day, hour, minute, and finally the index keys of one
// minute. Page N of a query therefore costs about what Count costs plus one
// page, not N pages.
//
// Session queries (the rollups have no session) count and skip index keys;
// with a category or name as well, each key's event is read and checked.
// Both are linear in the session's events in the range.

// span is a time range [lo, hi) in unix nanoseconds. lo == negInf and
// hi == posInf stand for "unbounded"; every other value is a bound.
type span struct{ lo, hi int64 }

const (
	negInf = math.MinInt64
	posInf = math.MaxInt64
)

// querySpan returns q's time range as a span, and false when the span
// sentinels cannot express it: an End of exactly the largest time excludes
// that time, which posInf would include.
func querySpan(q store.Query) (span, bool) {
	s := span{negInf, posInf}
	if !q.Start.IsZero() {
		s.lo = store.UnixNano(q.Start) // the smallest time bounds nothing: negInf
	}
	if !q.End.IsZero() {
		if s.hi = store.UnixNano(q.End); s.hi == posInf {
			return s, false
		}
	}
	return s, true
}

// mulSat is q·n for n > 0, saturated to the sentinels.
func mulSat(q, n int64) int64 {
	switch {
	case q > posInf/n:
		return posInf
	case q < negInf/n:
		return negInf
	}
	return q * n
}

// floorTo and ceilTo round t down and up to a start of a bucket of b,
// saturating; sentinels stay what they are.
func floorTo(t int64, b store.Bucket) int64 {
	if t == negInf || t == posInf {
		return t
	}
	return mulSat(b.Index(t), width(b))
}

func ceilTo(t int64, b store.Bucket) int64 {
	if t == negInf || t == posInf {
		return t
	}
	q := b.Index(t)
	if m := mulSat(q, width(b)); m == t {
		return m
	}
	return mulSat(q+1, width(b))
}

// segment is a part of a time range counted one way: level 0 by index keys,
// level k ≥ 1 by the rollups of buckets[k-1].
type segment struct {
	level int
	span
}

// decompose cuts s into segments, newest first, each of the widest buckets
// that fit whole (see the comment at the top of the file).
func decompose(s span) []segment {
	if s.lo >= s.hi {
		return nil
	}
	var older, newer []segment // outermost first
	lo, hi := s.lo, s.hi
	level := 0
	for k, b := range buckets {
		a, z := ceilTo(lo, b), floorTo(hi, b)
		if a >= z {
			break // no whole bucket of this width
		}
		if lo < a {
			older = append(older, segment{k, span{lo, a}})
		}
		if z < hi {
			newer = append(newer, segment{k, span{z, hi}})
		}
		lo, hi, level = a, z, k+1
	}
	out := append(newer, segment{level, span{lo, hi}})
	for i := len(older) - 1; i >= 0; i-- {
		out = append(out, older[i])
	}
	return out
}

// keyRange returns the index keys of p's prefix whose event time lies in s,
// within p's range.
func (p plan) keyRange(s span) (lower, upper []byte, ok bool) {
	lower, upper = p.prefix, prefixEnd(p.prefix)
	if s.hi != posInf {
		inv := invTime(s.hi)
		if inv == math.MaxUint64 {
			return nil, nil, false
		}
		lower = binary.BigEndian.AppendUint64(clone(p.prefix), inv+1)
	}
	if s.lo != negInf {
		upper = binary.BigEndian.AppendUint64(clone(p.prefix), invTime(s.lo)+1)
	}
	if bytes.Compare(lower, p.lower) < 0 {
		lower = p.lower
	}
	if bytes.Compare(upper, p.upper) > 0 {
		upper = p.upper
	}
	return lower, upper, bytes.Compare(lower, upper) < 0
}

// rollups reports whether q can be counted and skipped through rollups.
func (p plan) rollups(q store.Query) (span, bool) {
	if q.Session != "" || p.check != nil {
		return span{}, false
	}
	return querySpan(q)
}

// Count implements store.Store.
func (p *Store) Count(ctx context.Context, q store.Query) (int, error) {
	if err := p.acquire(); err != nil {
		return 0, err
	}
	defer p.release()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	pl := planQuery(q)
	if pl.empty {
		return 0, nil
	}
	// One snapshot for every read: the rollups and index keys agree, and
	// an event Expire removes meanwhile is in all of them or none.
	snap := p.db.NewSnapshot()
	defer snap.Close()
	c := counter{ctx: ctx, r: snap, p: p, pl: pl, q: q}
	s, ok := pl.rollups(q)
	if !ok {
		_, n, err := c.keys(pl.lower, pl.upper, -1)
		if err != nil {
			return 0, fmt.Errorf("store: count: %w", err)
		}
		return n, nil
	}
	total := 0
	for _, seg := range decompose(s) {
		n, err := c.count(seg)
		if err != nil {
			return 0, fmt.Errorf("store: count: %w", err)
		}
		total += n
	}
	return total, nil
}

// skip returns the index key of the event that comes after the first n
// events matching q (the first key a page at offset n reads), or nil when n
// or fewer events match.
func (p *Store) skip(ctx context.Context, r pebbledb.Reader, q store.Query, pl plan, n int) ([]byte, error) {
	c := counter{ctx: ctx, r: r, p: p, pl: pl, q: q}
	s, ok := pl.rollups(q)
	if !ok {
		key, _, err := c.keys(pl.lower, pl.upper, n)
		return key, err
	}
	for _, seg := range decompose(s) {
		key, left, err := c.locate(seg, n)
		if key != nil || err != nil {
			return key, err
		}
		n = left
	}
	return nil, nil
}

// counter counts and locates the events of one query in segments of its
// time range, reading through r.
type counter struct {
	ctx context.Context
	r   pebbledb.Reader
	p   *Store
	pl  plan
	q   store.Query
}

// errDisagree means the rollups and the index disagree, which the store's
// invariants exclude (both are read from one snapshot when they must agree).
var errDisagree = errors.New("rollups and index disagree")

// count returns the number of matching events in seg.
func (c counter) count(seg segment) (int, error) {
	if seg.level == 0 {
		lower, upper, ok := c.pl.keyRange(seg.span)
		if !ok {
			return 0, nil
		}
		_, n, err := c.keys(lower, upper, -1)
		return n, err
	}
	total := int64(0)
	err := c.buckets(seg, false, func(_ int64, n int64) (bool, error) {
		total += n
		return true, nil
	})
	return int(total), err
}

// locate returns the index key of the matching event in seg that has n
// newer ones in seg; or, when seg holds n or fewer, nil and n minus its count.
func (c counter) locate(seg segment, n int) ([]byte, int, error) {
	if seg.level == 0 {
		lower, upper, ok := c.pl.keyRange(seg.span)
		if !ok {
			return nil, n, nil
		}
		return c.keys(lower, upper, n)
	}
	b := buckets[seg.level-1]
	var found []byte
	err := c.buckets(seg, true, func(idx int64, count int64) (bool, error) {
		if int64(n) >= count {
			n -= int(count)
			return true, nil
		}
		// Inside this bucket: one segment of the next finer width (or of
		// index keys) covers it exactly.
		inner := segment{seg.level - 1, span{mulSat(idx, width(b)), mulSat(idx+1, width(b))}}
		key, _, err := c.locate(inner, n)
		if err == nil && key == nil {
			err = fmt.Errorf("%w: %s bucket %d counts %d events, fewer are under it", errDisagree, b, idx, count)
		}
		found = key
		return false, err
	})
	return found, n, err
}

// buckets calls fn with each bucket of seg's width in seg that has matching
// events and their number, oldest first or (newest) newest first, until fn
// returns false.
func (c counter) buckets(seg segment, newest bool, fn func(idx, n int64) (bool, error)) error {
	b := buckets[seg.level-1]
	lower, upper := rollupPrefix(nil, b), []byte{ksRollup, kind(b) + 1}
	if seg.lo != negInf {
		lower = rollupBound(nil, b, b.Index(seg.lo))
	}
	if seg.hi != posInf {
		upper = rollupBound(nil, b, b.Index(seg.hi))
	}
	it, err := c.r.NewIterWithContext(c.ctx, &pebbledb.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	defer it.Close()
	var (
		cur   int64
		sum   int64
		valid bool
	)
	if newest {
		valid = it.Last()
	} else {
		valid = it.First()
	}
	for i := 0; valid; i++ {
		if i%1024 == 1023 {
			if err := c.ctx.Err(); err != nil {
				return err
			}
		}
		idx, category, name, err := parseRollupKey(it.Key())
		if err != nil {
			return err
		}
		if idx != cur && sum > 0 {
			if more, err := fn(cur, sum); !more || err != nil {
				return err
			}
			sum = 0
		}
		cur = idx
		if (c.q.Category == "" || string(category) == c.q.Category) && (c.q.Name == "" || string(name) == c.q.Name) {
			v, err := it.ValueAndErr()
			if err != nil {
				return err
			}
			n, err := parseCount(it.Key(), v)
			if err != nil {
				return err
			}
			sum += n
		}
		if newest {
			valid = it.Prev()
		} else {
			valid = it.Next()
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	if sum > 0 {
		_, err := fn(cur, sum)
		return err
	}
	return nil
}

// keys walks the index keys in [lower, upper), newest first, counting the
// matching events (each key's event is read when the plan checks events).
// With n ≥ 0 it stops at the match that has n matches before it and returns
// its key; otherwise, or when there are n or fewer matches, it returns nil
// and n minus the matches (or, with n < 0, their number).
func (c counter) keys(lower, upper []byte, n int) ([]byte, int, error) {
	it, err := c.r.NewIterWithContext(c.ctx, &pebbledb.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, 0, err
	}
	defer it.Close()
	matches := 0
	idKey := []byte{ksEvent}
	for valid, i := it.First(), 0; valid; valid, i = it.Next(), i+1 {
		if i%1024 == 1023 {
			if err := c.ctx.Err(); err != nil {
				return nil, 0, err
			}
		}
		k := it.Key()
		if c.pl.check != nil {
			idKey = append(idKey[:1], k[len(c.pl.prefix)+timeLen:]...)
			ev, err := c.p.get(c.r, idKey)
			if errors.Is(err, store.ErrNotFound) {
				return nil, 0, fmt.Errorf("index entry %q has no event", k)
			}
			if err != nil {
				return nil, 0, err
			}
			if !c.pl.check(ev) {
				continue
			}
		}
		if matches == n {
			return clone(k), 0, nil
		}
		matches++
	}
	if err := it.Error(); err != nil {
		return nil, 0, err
	}
	if n < 0 {
		return nil, matches, nil
	}
	return nil, n - matches, nil
}
