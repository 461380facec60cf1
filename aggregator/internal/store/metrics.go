package store

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgetrack/edgetrack/internal/promreg"
)

// IngestMetrics are the ingest metrics every backend exports, under the same
// names (edgetrack_store_*), so that dashboards work with either. They
// always exist; they are registered only when a Registerer is given.
type IngestMetrics struct {
	stored, duplicates, rejected prometheus.Counter
	seconds                      prometheus.Histogram
}

// NewIngestMetrics makes the metrics and registers them with reg (nil
// registers nothing). secondsHelp says what the backend's ingest_seconds
// includes.
func NewIngestMetrics(reg prometheus.Registerer, secondsHelp string) (*IngestMetrics, error) {
	m := &IngestMetrics{
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
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "edgetrack", Subsystem: "store", Name: "ingest_seconds",
			Help:    secondsHelp,
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5 ms … 4 s
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	for _, c := range []*prometheus.Counter{&m.stored, &m.duplicates, &m.rejected} {
		if *c, err = promreg.Register(reg, *c); err != nil {
			return nil, err
		}
	}
	if m.seconds, err = promreg.Register(reg, m.seconds); err != nil {
		return nil, err
	}
	return m, nil
}

// Observe counts one successful Ingest call that took d.
func (m *IngestMetrics) Observe(st IngestStats, d time.Duration) {
	m.stored.Add(float64(st.Stored))
	m.duplicates.Add(float64(st.Duplicates))
	m.rejected.Add(float64(len(st.Rejected)))
	m.seconds.Observe(d.Seconds())
}
