package registry

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the registry's Prometheus collectors.
type metrics struct {
	uploads     *prometheus.CounterVec // result (accepted, existing, rejected), reason
	activations *prometheus.CounterVec // rule, action (activate, rollback)
	version     prometheus.Gauge
	waiting     prometheus.Gauge
	validating  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "edgetrack", Subsystem: "rule", Name: "uploads_total",
			Help: "Rule uploads by result (accepted, existing: the same bytes were uploaded before, rejected) " +
				"and, for rejections, reason (not_wasm, limit, imports, exports, memory, init, config, vectors_file, uploaded_vectors, builtin_vectors, timeout, too_large).",
		}, []string{"result", "reason"}),
		activations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "edgetrack", Subsystem: "rule", Name: "activations_total",
			Help: "Rule version activations made on this aggregator, by rule and action (activate, rollback).",
		}, []string{"rule", "action"}),
		version: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "edgetrack", Subsystem: "rule", Name: "manifest_version",
			Help: "The rule manifest's version; it grows by one with every activation.",
		}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "edgetrack", Subsystem: "rule", Name: "manifest_waiting",
			Help: "Manifest long-polls waiting for a change.",
		}),
		validating: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "edgetrack", Subsystem: "rule", Name: "validations_in_progress",
			Help: "Uploads being validated (compiled, run against their vectors) now.",
		}),
	}
	m.uploads.WithLabelValues("accepted", "")
	m.uploads.WithLabelValues("existing", "")
	for _, r := range rejectReasons {
		m.uploads.WithLabelValues("rejected", r)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.uploads, m.activations, m.version, m.waiting, m.validating} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registry: metrics: %w", err)
		}
	}
	return m, nil
}
