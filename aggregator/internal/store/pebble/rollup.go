package pebble

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// buckets lists every width, finest first; each divides the next.
var buckets = [...]store.Bucket{store.Minute, store.Hour, store.Day}

// width is b's width in nanoseconds.
func width(b store.Bucket) int64 { return int64(b.Duration()) }

// kind is the byte after ksRollup in b's keys.
func kind(b store.Bucket) byte { return "?mhd"[b] }

// Rollup keys: ksRollup, the bucket kind, the bucket index (t floor-divided
// by the width) as 8 bytes big-endian with the sign bit flipped, so that keys
// sort oldest first, then category, NUL, name. The value is the number of
// stored events in that bucket with that category and name, 8 bytes
// big-endian.
const rollupHeader = 2 + 8

func rollupPrefix(dst []byte, b store.Bucket) []byte { return append(dst, ksRollup, kind(b)) }

// rollupBound appends the first key of bucket idx of width b.
func rollupBound(dst []byte, b store.Bucket, idx int64) []byte {
	return binary.BigEndian.AppendUint64(rollupPrefix(dst, b), uint64(idx)^1<<63)
}

func rollupKey(dst []byte, b store.Bucket, idx int64, category, name string) []byte {
	dst = rollupBound(dst, b, idx)
	dst = append(dst, category...)
	dst = append(dst, terminator)
	return append(dst, name...)
}

// parseRollupKey splits a rollup key (of any kind) into its bucket index,
// category and name. The strings alias key.
func parseRollupKey(key []byte) (idx int64, category, name []byte, err error) {
	if len(key) < rollupHeader+1 || key[0] != ksRollup {
		return 0, nil, nil, fmt.Errorf("store: malformed rollup key %q", key)
	}
	idx = int64(binary.BigEndian.Uint64(key[2:rollupHeader]) ^ 1<<63)
	rest := key[rollupHeader:]
	i := bytes.IndexByte(rest, terminator)
	if i < 0 {
		return 0, nil, nil, fmt.Errorf("store: malformed rollup key %q", key)
	}
	return idx, rest[:i], rest[i+1:], nil
}

func parseCount(key, v []byte) (int64, error) {
	if len(v) != 8 || v[0]&0x80 != 0 {
		return 0, fmt.Errorf("store: malformed rollup count %x under %q", v, key)
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

// rollupDeltas counts events per rollup key before they are added to the
// stored counts.
type rollupDeltas map[rollupCell]int64

type rollupCell struct {
	bucket         store.Bucket
	idx            int64
	category, name string
}

// add counts ev once in each bucket width.
func (d rollupDeltas) add(ev *eventpb.Event) {
	t := store.EventTime(ev)
	for _, b := range buckets {
		d[rollupCell{b, b.Index(t), ev.GetCategory(), ev.GetName()}]++
	}
}

// remove counts ev as removed (minus one) in each bucket width: retention
// and erasures.
func (d rollupDeltas) remove(ev *eventpb.Event) {
	t := store.EventTime(ev)
	for _, b := range buckets {
		d[rollupCell{b, b.Index(t), ev.GetCategory(), ev.GetName()}]--
	}
}

// apply adds the deltas to the counts read from r and writes the sums into
// batch; a count that becomes 0 is deleted (Stats has no empty buckets),
// and one that would become negative is an error. The caller must make sure
// that no other batch changes the counts
// between the reads and the commit of batch: Ingest holds ingestMu.
//
// The reads go in key order through one iterator, whose seeks then move
// forward through files and blocks it has open; a Get per cell would open
// them again each time.
func (d rollupDeltas) apply(r pebbledb.Reader, batch *pebbledb.Batch) error {
	cells := make([]rollupCell, 0, len(d))
	for c := range d {
		cells = append(cells, c)
	}
	slices.SortFunc(cells, func(x, y rollupCell) int {
		return cmp.Or(cmp.Compare(kind(x.bucket), kind(y.bucket)), cmp.Compare(x.idx, y.idx),
			strings.Compare(x.category, y.category), strings.Compare(x.name, y.name))
	})
	it, err := r.NewIter(&pebbledb.IterOptions{LowerBound: []byte{ksRollup}, UpperBound: []byte{ksRollup + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	var key []byte
	val := make([]byte, 8)
	for _, c := range cells {
		key = rollupKey(key[:0], c.bucket, c.idx, c.category, c.name)
		n := int64(0)
		if it.SeekGE(key) && bytes.Equal(it.Key(), key) {
			v, err := it.ValueAndErr()
			if err != nil {
				return fmt.Errorf("read rollup %q: %w", key, err)
			}
			if n, err = parseCount(key, v); err != nil {
				return err
			}
		}
		if err := it.Error(); err != nil {
			return fmt.Errorf("read rollup %q: %w", key, err)
		}
		switch sum := n + d[c]; {
		case sum < 0:
			return fmt.Errorf("rollup %q would count %d events", key, sum)
		case sum == 0:
			if err := batch.Delete(key, nil); err != nil {
				return err
			}
		default:
			binary.BigEndian.PutUint64(val, uint64(sum))
			if err := batch.Set(key, val, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// migrateRollups builds the rollups of a database of layout 1, which had
// none, from its events, and then records layout 2. It can be interrupted at
// any point: until the layout key says 2 the next Open starts over, first
// deleting what an earlier attempt wrote.
func migrateRollups(db *pebbledb.DB, log *slog.Logger) error {
	began := time.Now()
	lo, hi := []byte{ksRollup}, []byte{ksRollup + 1}
	if err := db.DeleteRange(lo, hi, pebbledb.NoSync); err != nil {
		return fmt.Errorf("clear rollups: %w", err)
	}
	it, err := db.NewIter(&pebbledb.IterOptions{LowerBound: []byte{ksEvent}, UpperBound: []byte{ksEvent + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	const flushCells = 1 << 16
	d := rollupDeltas{}
	flush := func() error {
		b := db.NewBatch()
		defer b.Close()
		if err := d.apply(db, b); err != nil {
			return err
		}
		clear(d)
		return b.Commit(pebbledb.NoSync)
	}
	events := 0
	for valid := it.First(); valid; valid = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		ev := new(eventpb.Event)
		if err := proto.Unmarshal(v, ev); err != nil {
			return fmt.Errorf("decode event %q: %w", it.Key()[1:], err)
		}
		d.add(ev)
		events++
		if len(d) >= flushCells {
			if err := flush(); err != nil {
				return fmt.Errorf("write rollups: %w", err)
			}
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	if err := flush(); err != nil {
		return fmt.Errorf("write rollups: %w", err)
	}
	// A synced write makes every earlier write durable too.
	if err := db.Set([]byte(layoutKey), []byte("2"), pebbledb.Sync); err != nil {
		return err
	}
	log.Info("store migrated to key layout 2: rollups built", "events", events, "took", time.Since(began))
	return nil
}

// Stats implements store.Store: it reads the rollups of q's bucket width in the
// range, one key per bucket, category and name that has events; it never
// reads events.
func (p *Store) Stats(ctx context.Context, q store.StatsQuery) ([]store.Series, error) {
	if err := p.acquire(); err != nil {
		return nil, err
	}
	defer p.release()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !q.Bucket.Valid() {
		return nil, fmt.Errorf("store: stats: unknown bucket %d", q.Bucket)
	}
	if !store.ValidFilter(q.Category) || !store.ValidFilter(q.Name) {
		return []store.Series{}, nil
	}
	lower, upper := rollupPrefix(nil, q.Bucket), []byte{ksRollup, kind(q.Bucket) + 1}
	if !q.Start.IsZero() {
		lower = rollupBound(nil, q.Bucket, q.Bucket.Index(store.UnixNano(q.Start)))
	}
	if !q.End.IsZero() {
		end := store.UnixNano(q.End)
		if end == math.MinInt64 {
			return []store.Series{}, nil
		}
		upper = rollupBound(nil, q.Bucket, q.Bucket.Index(end-1)+1)
	}
	if bytes.Compare(lower, upper) >= 0 {
		return []store.Series{}, nil
	}
	it, err := p.db.NewIterWithContext(ctx, &pebbledb.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("store: stats: %w", err)
	}
	defer it.Close()
	type group struct{ category, name string }
	series := map[group]*store.Series{}
	for valid, i := it.First(), 0; valid; valid, i = it.Next(), i+1 {
		if i%1024 == 1023 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		idx, category, name, err := parseRollupKey(it.Key())
		if err != nil {
			return nil, err
		}
		if q.Category != "" && string(category) != q.Category || q.Name != "" && string(name) != q.Name {
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("store: stats: %w", err)
		}
		c, err := parseCount(it.Key(), v)
		if err != nil {
			return nil, err
		}
		var g group
		if q.ByCategory {
			g.category = string(category)
		}
		if q.ByName {
			g.name = string(name)
		}
		s := series[g]
		if s == nil {
			s = &store.Series{Category: g.category, Name: g.name}
			series[g] = s
		}
		// Keys come in bucket order, so a bucket's cells are adjacent to
		// each other for every series.
		start := q.Bucket.Start(idx)
		if k := len(s.Points); k > 0 && s.Points[k-1].Start.Equal(start) {
			s.Points[k-1].Count += c
		} else {
			s.Points = append(s.Points, store.Point{Start: start, Count: c})
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("store: stats: %w", err)
	}
	out := make([]store.Series, 0, len(series))
	for _, s := range series {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b store.Series) int {
		return cmp.Or(strings.Compare(a.Category, b.Category), strings.Compare(a.Name, b.Name))
	})
	return out, nil
}
