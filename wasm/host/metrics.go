package host

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a rule call, the values of the outcome label.
const (
	outcomeOK      = "ok"
	outcomeTrap    = "trap"
	outcomeTimeout = "timeout"
	outcomeBusy    = "busy"
)

// Metrics are the rule runtime's Prometheus metrics.
type Metrics struct {
	calls     *prometheus.CounterVec
	seconds   *prometheus.HistogramVec
	instances *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgetrack_rule_calls_total",
			Help: "Rule calls by rule and outcome (ok, trap, timeout, busy).",
		}, []string{"rule", "outcome"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "edgetrack_rule_call_seconds",
			Help:    "Time of a rule call including waiting for an instance.",
			Buckets: prometheus.ExponentialBuckets(5e-6, 4, 10),
		}, []string{"rule"}),
		instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "edgetrack_rule_instances",
			Help: "Live wasm instances by rule.",
		}, []string{"rule"}),
	}
	if reg != nil {
		reg.MustRegister(m.calls, m.seconds, m.instances)
	}
	return m
}

type ruleMetrics struct {
	calls     map[string]prometheus.Counter
	seconds   prometheus.Observer
	instances prometheus.Gauge
}

func (m *Metrics) forRule(rule string) *ruleMetrics {
	if m == nil {
		m = NewMetrics(nil)
	}
	rm := &ruleMetrics{
		calls:     map[string]prometheus.Counter{},
		seconds:   m.seconds.WithLabelValues(rule),
		instances: m.instances.WithLabelValues(rule),
	}
	for _, o := range []string{outcomeOK, outcomeTrap, outcomeTimeout, outcomeBusy} {
		rm.calls[o] = m.calls.WithLabelValues(rule, o)
	}
	return rm
}

func (rm *ruleMetrics) observe(outcome string, start time.Time) {
	rm.calls[outcome].Inc()
	rm.seconds.Observe(time.Since(start).Seconds())
}
