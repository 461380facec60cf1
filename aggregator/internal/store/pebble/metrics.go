package pebble

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/internal/promreg"
)

// metrics are the store's Prometheus collectors. They always exist; they are
// registered only when a Registerer is given.
type metrics struct {
	stored, duplicates, rejected prometheus.Counter
	ingestSeconds                prometheus.Histogram
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
		ingestSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "edgetrack", Subsystem: "store", Name: "ingest_seconds",
			Help:    "Duration of successful Ingest calls, including the wait for the ingest lock and the fsync.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5 ms … 4 s
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.stored, err = promreg.Register(reg, m.stored); err != nil {
		return nil, err
	}
	if m.duplicates, err = promreg.Register(reg, m.duplicates); err != nil {
		return nil, err
	}
	if m.rejected, err = promreg.Register(reg, m.rejected); err != nil {
		return nil, err
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
