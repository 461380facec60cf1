package aggregator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/internal/config"
)

// retainer runs retention passes (aggregator.retention) on a store that
// implements store.Expirer: one at start, then one every interval, each
// logged and counted.
type retainer struct {
	store    store.Expirer // nil: retention is off
	r        store.Retention
	interval time.Duration
	log      *slog.Logger
	now      func() time.Time
	passMu   sync.Mutex // one pass at a time

	removed prometheus.Counter
	passes  *prometheus.CounterVec
	last    prometheus.Gauge
}

// newRetainer returns the retainer for cfg. With no retention configured,
// or a store that cannot expire events (said in the log), its passes do
// nothing.
func newRetainer(cfg config.Retention, st store.Store, reg prometheus.Registerer, log *slog.Logger) (*retainer, error) {
	t := &retainer{
		r:        store.Retention{Default: cfg.Default.Duration(), Categories: map[string]time.Duration{}},
		interval: cfg.Interval.Duration(),
		log:      log,
		now:      time.Now,
		removed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edgetrack_retention_removed_total",
			Help: "Events removed because they were older than the retention of their category (aggregator.retention).",
		}),
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgetrack_retention_passes_total",
			Help: "Retention passes, by result (ok, error).",
		}, []string{"result"}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "edgetrack_retention_last_success_timestamp_seconds",
			Help: "When the last retention pass that succeeded ended (unix seconds); 0 before the first.",
		}),
	}
	for c, d := range cfg.Categories {
		t.r.Categories[c] = d.Duration()
	}
	t.passes.WithLabelValues("ok")
	t.passes.WithLabelValues("error")
	if reg != nil {
		for _, c := range []prometheus.Collector{t.removed, t.passes, t.last} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("retention metrics: %w", err)
			}
		}
	}
	if !t.r.Enabled() {
		return t, nil
	}
	x, ok := st.(store.Expirer)
	if !ok {
		log.Warn("aggregator.retention is set, but this store cannot remove events: nothing will expire", "store", fmt.Sprintf("%T", st))
		return t, nil
	}
	t.store = x
	return t, nil
}

// run makes a pass at once and then every interval until ctx ends.
func (t *retainer) run(ctx context.Context) {
	if t.store == nil {
		return
	}
	t.log.Info("retention on", "default", t.r.Default, "categories", t.r.Categories, "interval", t.interval)
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	for {
		if _, err := t.pass(ctx); err != nil && ctx.Err() == nil {
			t.log.Error("retention pass failed; the next pass goes on from where it stopped", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// pass removes the expired events once and logs what it did.
func (t *retainer) pass(ctx context.Context) (store.ExpireStats, error) {
	if t.store == nil {
		return store.ExpireStats{}, errors.New("aggregator: retention is off (no aggregator.retention, or a store that cannot expire events)")
	}
	t.passMu.Lock()
	defer t.passMu.Unlock()
	began := t.now()
	st, err := t.store.Expire(ctx, t.r, began)
	t.removed.Add(float64(st.Removed))
	took := time.Since(began).Round(time.Millisecond)
	if err != nil {
		t.passes.WithLabelValues("error").Inc()
		return st, fmt.Errorf("aggregator: retention pass: %w", err)
	}
	t.passes.WithLabelValues("ok").Inc()
	t.last.Set(float64(time.Now().Unix()))
	args := []any{"removed", st.Removed, "took", took}
	for _, c := range slices.Sorted(maps.Keys(st.ByCategory)) {
		name := c
		if name == "" {
			name = "(none)"
		}
		args = append(args, slog.Int("category."+name, st.ByCategory[c]))
	}
	t.log.Info("retention pass", args...)
	return st, nil
}

// ExpireNow runs one retention pass now, as the periodic ones do, and
// returns how many events it removed. It fails when retention is off.
func (a *Aggregator) ExpireNow(ctx context.Context) (int, error) {
	st, err := a.retain.pass(ctx)
	return st.Removed, err
}
