package pebble

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
)

// metrics are the store's Prometheus collectors: the ingest metrics every
// backend exports (store.IngestMetrics).
type metrics struct {
	*store.IngestMetrics
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	im, err := store.NewIngestMetrics(reg, "Duration of successful Ingest calls, including the wait for the ingest lock and the fsync.")
	if err != nil {
		return nil, err
	}
	return &metrics{im}, nil
}
