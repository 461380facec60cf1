package forward

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgetrack/edgetrack/internal/promreg"
)

// Labels of edgetrack_forward_batches_total and edgetrack_forward_events_total.
const (
	resultSuccess      = "success"
	resultRejected     = "rejected"
	resultRetry        = "retry"
	resultDelivered    = "delivered"
	resultDeadLettered = "dead_lettered"
)

// metrics are the forwarder's Prometheus metrics. Without a Registerer they
// are created but never exported.
type metrics struct {
	batchSuccess, batchRejected, batchRetry prometheus.Counter
	delivered, deadLettered                 prometheus.Counter
	duration                                prometheus.Histogram
	backoff                                 prometheus.Gauge
	failovers                               prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "edgetrack", "forward"
	batches := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "batches_total",
		Help: "Batch requests by outcome: success (200), rejected (dropped to dead letters: 400, 413 of one event), retry (anything else, sent again).",
	}, []string{"result"})
	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "events_total",
		Help: "Events that left the spool: delivered (stored or duplicate at the aggregator, then acked) or dead_lettered.",
	}, []string{"result"})
	duration := prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: ns, Subsystem: sub, Name: "request_duration_seconds",
		Help:    "Duration of ingest requests, until the response body was read, whatever the outcome.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14), // 5ms .. 41s
	})
	backoff := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: ns, Subsystem: sub, Name: "backoff_seconds",
		Help: "Delay before the current batch is sent again; 0 after a success.",
	})
	failovers := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "failovers_total",
		Help: "Switches to the next of several aggregators after a failed attempt.",
	})

	var err error
	if failovers, err = promreg.Register(reg, failovers); err != nil {
		return nil, err
	}
	if batches, err = promreg.Register(reg, batches); err != nil {
		return nil, err
	}
	if events, err = promreg.Register(reg, events); err != nil {
		return nil, err
	}
	if duration, err = promreg.Register(reg, duration); err != nil {
		return nil, err
	}
	if backoff, err = promreg.Register(reg, backoff); err != nil {
		return nil, err
	}
	return &metrics{
		batchSuccess:  batches.WithLabelValues(resultSuccess),
		batchRejected: batches.WithLabelValues(resultRejected),
		batchRetry:    batches.WithLabelValues(resultRetry),
		delivered:     events.WithLabelValues(resultDelivered),
		deadLettered:  events.WithLabelValues(resultDeadLettered),
		duration:      duration,
		backoff:       backoff,
		failovers:     failovers,
	}, nil
}
