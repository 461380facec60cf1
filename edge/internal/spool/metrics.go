package spool

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons of edgetrack_spool_append_errors_total.
const (
	reasonFull   = "full"
	reasonClosed = "closed"
	reasonIO     = "io"
)

// metrics are the spool's Prometheus metrics. A nil *metrics records nothing.
type metrics struct {
	reg        prometheus.Registerer
	collectors []prometheus.Collector

	appends     prometheus.Counter
	errFull     prometheus.Counter
	errClosed   prometheus.Counter
	errIO       prometheus.Counter
	syncSeconds prometheus.Histogram
	reopenOK    prometheus.Counter
	reopenFail  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, s *Spool) (*metrics, error) {
	const ns, sub = "edgetrack", "spool"
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, f)
	}
	appendErrors := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "append_errors_total",
		Help: "Appends that failed, by reason: full (quota or disk), closed, io.",
	}, []string{"reason"})
	reopens := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "reopens_total",
		Help: "Times the spool reopened Pebble after a failed write, by result: ok, failed.",
	}, []string{"result"})
	m := &metrics{
		reg:        reg,
		reopenOK:   reopens.WithLabelValues("ok"),
		reopenFail: reopens.WithLabelValues("failed"),
		appends: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "appends_total",
			Help: "Entries appended durably (with a synced WAL).",
		}),
		errFull:   appendErrors.WithLabelValues(reasonFull),
		errClosed: appendErrors.WithLabelValues(reasonClosed),
		errIO:     appendErrors.WithLabelValues(reasonIO),
		syncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "sync_seconds",
			Help:    "Time an Append waited for its batch to be synced: the fsync latency clients see.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16), // 50µs .. 1.6s
		}),
	}
	m.collectors = []prometheus.Collector{
		gauge("depth", "Entries in the queue.", func() float64 { return float64(s.depth.Load()) }),
		gauge("bytes", "Value bytes in the queue.", func() float64 { return float64(s.bytes.Load()) }),
		gauge("dead_letters", "Dead letters.", func() float64 { return float64(s.dead.Load()) }),
		gauge("dead_letter_bytes", "Value bytes of dead letters.", func() float64 { return float64(s.deadBytes.Load()) }),
		gauge("quota_bytes", "Live value bytes (queue and dead letters) at which appends fail.", func() float64 { return float64(s.quota) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "wal_fsyncs_total",
			Help: "WAL fsyncs: appends_total divided by this is the group commit (appends per fsync).",
		}, func() float64 { return float64(s.Fsyncs()) }),
		m.appends, appendErrors, m.syncSeconds, reopens,
	}
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			for _, r := range m.collectors[:i] {
				reg.Unregister(r)
			}
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) unregister() {
	if m == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}

func (m *metrics) appended(n int) {
	if m != nil {
		m.appends.Add(float64(n))
	}
}

func (m *metrics) synced(d time.Duration) {
	if m != nil {
		m.syncSeconds.Observe(d.Seconds())
	}
}

func (m *metrics) failed(reason string) {
	if m == nil {
		return
	}
	switch reason {
	case reasonFull:
		m.errFull.Inc()
	case reasonClosed:
		m.errClosed.Inc()
	default:
		m.errIO.Inc()
	}
}

func (m *metrics) reopened(ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.reopenOK.Inc()
	} else {
		m.reopenFail.Inc()
	}
}
