package rollout

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	swaps        *prometheus.CounterVec
	polls        *prometheus.CounterVec
	info         *prometheus.GaugeVec
	buildSeconds prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		swaps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgetrack_rule_swaps_total",
			Help: "Rule versions installed (ok) or refused (failed), by rule.",
		}, []string{"rule", "result"}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgetrack_rule_manifest_polls_total",
			Help: "Polls of the aggregator's rule manifest by result.",
		}, []string{"result"}),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "edgetrack_rule_active_info",
			Help: "1 for the version each rule runs.",
		}, []string{"rule", "version"}),
		buildSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "edgetrack_rule_build_seconds",
			Help:    "Time to validate and load a new rule version.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.swaps, m.polls, m.info, m.buildSeconds)
	}
	return m
}

func (m *metrics) active(rule, hash string) {
	m.info.DeletePartialMatch(prometheus.Labels{"rule": rule})
	m.info.WithLabelValues(rule, short(hash)).Set(1)
}
