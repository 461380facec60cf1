package clickhouse

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
)

var _ store.Expirer = (*Store)(nil)

// Expire implements store.Expirer: one removal (lifecycle.go) of every
// expired row, claimed by the server in one INSERT … SELECT that reads the
// category and event_time columns of the whole table, deleted by one
// mutation, and counted down in the rollups by the rows removed (so a
// bucket that the cutoff falls in keeps counting its newer events, and
// one wholly expired counts nothing). A pass with nothing expired writes
// nothing.
func (s *Store) Expire(ctx context.Context, r store.Retention, now time.Time) (store.ExpireStats, error) {
	if s.layout.cluster != "" {
		return store.ExpireStats{}, ErrClusterRemoval
	}
	if err := s.acquire(); err != nil {
		return store.ExpireStats{}, err
	}
	defer s.release()
	st := store.ExpireStats{ByCategory: map[string]int{}}
	if !r.Enabled() {
		return st, nil
	}
	cond, args := expiredWhere(r, now)
	if cond == "" {
		return st, nil
	}
	if err := s.expire(ctx, r, now, cond, args, &st); err != nil {
		return st, fmt.Errorf("store: clickhouse: expire: %d events removed, then: %w", st.Removed, err)
	}
	return st, nil
}

func (s *Store) expire(ctx context.Context, r store.Retention, now time.Time, cond string, args []any, st *store.ExpireStats) error {
	end, err := s.beginRemoval(ctx)
	if err != nil {
		return err
	}
	defer end()
	token, err := newToken()
	if err != nil {
		return err
	}
	if err := s.claimStored(ctx, token, cond, args...); err != nil {
		return err
	}
	err = s.claimDuplicates(ctx, token, func(c claimedRow) (bool, error) {
		cut, ok := cutoff(r, c.category, now)
		return ok && c.eventTime < cut, nil
	})
	if err != nil {
		return err
	}
	return s.remove(ctx, token, false, func(won string, args []any) error {
		rows, err := s.conn.Query(ctx, "SELECT category, uniqExact(id) FROM "+s.table("lifecycle")+" WHERE "+won+" GROUP BY category", args...)
		if err != nil {
			return fmt.Errorf("count the events removed: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var c string
			var n uint64
			if err := rows.Scan(&c, &n); err != nil {
				return fmt.Errorf("count the events removed: %w", err)
			}
			st.ByCategory[c] += int(n)
			st.Removed += int(n)
		}
		return rows.Err()
	})
}

// cutoff is r.Cutoff, false also for a cutoff before every event time.
func cutoff(r store.Retention, category string, now time.Time) (int64, bool) {
	cut, ok := r.Cutoff(category, now)
	return cut, ok && cut != math.MinInt64
}

// expiredWhere is the condition on events of the rows r has expired at
// now, with its arguments; "" when none can be.
func expiredWhere(r store.Retention, now time.Time) (string, []any) {
	var ors []string
	var args []any
	listed := slices.Sorted(maps.Keys(r.Categories))
	for _, c := range listed {
		if cut, ok := cutoff(r, c, now); ok {
			ors = append(ors, "category = ? AND event_time < ?")
			args = append(args, c, cut)
		}
	}
	// Every category not listed has the default.
	if cut, ok := cutoff(store.Retention{Default: r.Default}, "", now); ok {
		cond := "event_time < ?"
		if len(listed) > 0 {
			cond = "category NOT IN (" + placeholders(len(listed)) + ") AND " + cond
			for _, c := range listed {
				args = append(args, c)
			}
		}
		ors = append(ors, cond)
		args = append(args, cut)
	}
	if len(ors) == 0 {
		return "", nil
	}
	return "(" + strings.Join(ors, ") OR (") + ")", args
}
