package clickhouse

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
)

// Stats implements store.Store: the rollups' counts of the buckets in the
// range, less the rows of racing copies that are not canonical (see Store).
func (s *Store) Stats(ctx context.Context, q store.StatsQuery) ([]store.Series, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !q.Bucket.Valid() {
		return nil, fmt.Errorf("store: stats: unknown bucket %d", q.Bucket)
	}
	out := []store.Series{}
	if !store.ValidFilter(q.Category) || !store.ValidFilter(q.Name) {
		return out, nil
	}
	w := where{}
	w.add("width = ?", uint8(q.Bucket))
	var from, to int64 = math.MinInt64, math.MaxInt64 // bucket indexes, inclusive
	if !q.Start.IsZero() {
		from = q.Bucket.Index(store.UnixNano(q.Start))
		w.add("bucket >= ?", from)
	}
	if !q.End.IsZero() {
		end := store.UnixNano(q.End)
		if end == math.MinInt64 {
			return out, nil
		}
		to = q.Bucket.Index(end - 1)
		w.add("bucket <= ?", to)
	}
	if from > to {
		return out, nil
	}
	if q.Category != "" {
		w.add("category = ?", q.Category)
	}
	if q.Name != "" {
		w.add("name = ?", q.Name)
	}
	catCol, nameCol := "''", "''"
	if q.ByCategory {
		catCol = "category"
	}
	if q.ByName {
		nameCol = "name"
	}
	type cell struct {
		category, name string
		bucket         int64
	}
	counts := map[cell]int64{}
	rows, err := s.conn.Query(ctx, "SELECT "+catCol+" AS c, "+nameCol+" AS n, bucket, sum(events) FROM "+s.table("rollups")+
		w.sql()+" GROUP BY c, n, bucket", w.args...)
	if err != nil {
		return nil, fmt.Errorf("store: clickhouse: stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c cell
		var n int64
		if err := rows.Scan(&c.category, &c.name, &c.bucket, &n); err != nil {
			return nil, fmt.Errorf("store: clickhouse: stats: %w", err)
		}
		counts[c] += n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: clickhouse: stats: %w", err)
	}

	// The rollups counted every row; take out the copies that lost a race.
	ls, err := s.losers(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: clickhouse: stats: %w", err)
	}
	for _, l := range ls {
		b := q.Bucket.Index(l.eventTime)
		if b < from || b > to || q.Category != "" && l.category != q.Category || q.Name != "" && l.name != q.Name {
			continue
		}
		c := cell{bucket: b}
		if q.ByCategory {
			c.category = l.category
		}
		if q.ByName {
			c.name = l.name
		}
		counts[c]--
	}

	series := map[[2]string]*store.Series{}
	for c, n := range counts {
		if n < 0 && s.cluster == nil {
			return nil, errors.New("store: clickhouse: stats: a rollup counts fewer events than are stored")
		}
		// With a cluster, a server can hold a copy's row before the
		// rollup rows of its INSERT, which replicate apart: the cell reads
		// as empty until they arrive.
		if n <= 0 {
			continue
		}
		k := [2]string{c.category, c.name}
		se := series[k]
		if se == nil {
			se = &store.Series{Category: c.category, Name: c.name}
			series[k] = se
		}
		se.Points = append(se.Points, store.Point{Start: q.Bucket.Start(c.bucket), Count: n})
	}
	for _, se := range series {
		slices.SortFunc(se.Points, func(a, b store.Point) int { return a.Start.Compare(b.Start) })
		out = append(out, *se)
	}
	slices.SortFunc(out, func(a, b store.Series) int {
		return cmp.Or(strings.Compare(a.Category, b.Category), strings.Compare(a.Name, b.Name))
	})
	return out, nil
}
