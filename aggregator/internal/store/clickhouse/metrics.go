package clickhouse

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/internal/promreg"
)

// metrics are the store's Prometheus collectors: the ingest metrics every
// backend exports (store.IngestMetrics), and the racing copies found. They
// always exist; they are registered only when a Registerer is given.
type metrics struct {
	*store.IngestMetrics
	raced prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	im, err := store.NewIngestMetrics(reg, "Duration of successful Ingest calls, including the wait for the ingest lock and the INSERT.")
	if err != nil {
		return nil, err
	}
	m := &metrics{IngestMetrics: im, raced: prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "edgetrack", Subsystem: "store", Name: "racing_copies_total",
		Help: "Ids found with a copy another aggregator inserted at the same time (recorded; reads keep one copy).",
	})}
	if reg != nil {
		if m.raced, err = promreg.Register(reg, m.raced); err != nil {
			return nil, err
		}
	}
	return m, nil
}
