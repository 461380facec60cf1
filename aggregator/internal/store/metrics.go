package store

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
	if m.stored, err = register(reg, m.stored); err != nil {
		return nil, err
	}
	if m.duplicates, err = register(reg, m.duplicates); err != nil {
		return nil, err
	}
	if m.rejected, err = register(reg, m.rejected); err != nil {
		return nil, err
	}
	if m.ingestSeconds, err = register(reg, m.ingestSeconds); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under its
// name, so that a store reopened with the same registry keeps counting.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

func (m *metrics) observe(st IngestStats, d time.Duration) {
	m.stored.Add(float64(st.Stored))
	m.duplicates.Add(float64(st.Duplicates))
	m.rejected.Add(float64(len(st.Rejected)))
	m.ingestSeconds.Observe(d.Seconds())
}
