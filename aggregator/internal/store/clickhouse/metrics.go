package clickhouse

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/internal/promreg"
)

// metrics are the store's Prometheus collectors: those of store/pebble,
// under the same names, so that dashboards work with either backend, and
// the racing copies found. They always exist; they are registered only
// when a Registerer is given.
type metrics struct {
	stored, duplicates, rejected, raced prometheus.Counter
	ingestSeconds                       prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		stored: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "edgetrack", Subsystem: "store", Name: "events_stored_total",
			Help: "Events newly stored by Ingest.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "edgetrack", Subsystem: "store", Name: "events_duplicate_total",
			Help: "Events given to Ingest whose id was already stored.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "edgetrack", Subsystem: "store", Name: "events_rejected_total",
			Help: "Events given to Ingest that can never be stored.",
		}),
		raced: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "edgetrack", Subsystem: "store", Name: "racing_copies_total",
			Help: "Ids found with a copy another aggregator inserted at the same time (recorded; reads keep one copy).",
		}),
		ingestSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "edgetrack", Subsystem: "store", Name: "ingest_seconds",
			Help:    "Duration of successful Ingest calls, including the wait for the ingest lock and the INSERT.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5 ms … 4 s
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	for _, c := range []*prometheus.Counter{&m.stored, &m.duplicates, &m.rejected, &m.raced} {
		if *c, err = promreg.Register(reg, *c); err != nil {
			return nil, err
		}
	}
	if m.ingestSeconds, err = promreg.Register(reg, m.ingestSeconds); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metrics) observe(st store.IngestStats, d time.Duration) {
	m.stored.Add(float64(st.Stored))
	m.duplicates.Add(float64(st.Duplicates))
	m.rejected.Add(float64(len(st.Rejected)))
	m.ingestSeconds.Observe(d.Seconds())
}
