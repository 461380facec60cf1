package server

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgetrack/edgetrack/edge/internal/ratelimit"
)

type metrics struct {
	requests   *prometheus.CounterVec
	seconds    *prometheus.HistogramVec
	events     *prometheus.CounterVec
	suppressed *prometheus.CounterVec
	refusals   *prometheus.CounterVec
	limited    *prometheus.CounterVec
	shed       prometheus.Counter
	reg        prometheus.Registerer

	mu      sync.Mutex
	reasons map[string]bool // distinct reason labels seen, capped

	// The children of requests and seconds that observe uses, looked up
	// once: the vectors hash their label values on every lookup. Routes
	// are the server's fixed names and codes are HTTP statuses, so both
	// stay small.
	requestsBy sync.Map // requestKey → prometheus.Counter
	secondsBy  sync.Map // route → prometheus.Observer
}

type requestKey struct {
	route string
	code  int
}

// maxReasons caps the reason label's values: they come from rules, which
// are untrusted code.
const maxReasons = 64

func newMetrics(reg prometheus.Registerer, inFlight func() float64) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgetrack_http_requests_total",
			Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "edgetrack_http_request_seconds",
			Help:    "Time from request parsed to response written, by route.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2.5, 12),
		}, []string{"route"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgetrack_events_accepted_total",
			Help: "Events made durable in the spool, by route.",
		}, []string{"route"}),
		suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgetrack_events_suppressed_total",
			Help: "Events of subjects erased at the aggregator, dropped instead of spooled, by route.",
		}, []string{"route"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgetrack_rule_refusals_total",
			Help: "Requests a rule refused, by route and the reason it gave (X-Edgetrack-Reason).",
		}, []string{"route", "reason"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgetrack_rate_limited_total",
			Help: "Requests answered 429 because their client's token bucket was empty, by limit (edge.limits.<limit>).",
		}, []string{"limit"}),
		shed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "edgetrack_shed_total",
			Help: "Requests answered 503 because edge.limits.max_in_flight requests were in flight.",
		}),
		reasons: map[string]bool{},
		reg:     reg,
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.seconds, m.events, m.suppressed, m.refusals, m.limited, m.shed,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "edgetrack_in_flight",
				Help: "Requests to rule routes being handled (running a rule or waiting for the spool).",
			}, inFlight))
	}
	return m
}

// limit registers the metrics of one per-client limit.
func (m *metrics) limit(name string, p *ratelimit.PerClient) {
	if m.reg == nil {
		return
	}
	labels := prometheus.Labels{"limit": name}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "edgetrack_rate_limit_clients",
			Help:        "Client addresses a limit remembers (bounded by twice edge.limits.max_clients).",
			ConstLabels: labels,
		}, func() float64 { return float64(p.Clients()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "edgetrack_rate_limit_forgotten_total",
			Help:        "Clients a limit forgot because it held edge.limits.max_clients (they start again with a full bucket).",
			ConstLabels: labels,
		}, func() float64 { return float64(p.Forgotten()) }),
	)
}

// refused counts a refusal; reasons that are not short snake_case words, or
// beyond the first maxReasons, count as "other".
func (m *metrics) refused(route, reason string) {
	if !isReasonToken(reason) {
		reason = "other"
	}
	m.mu.Lock()
	if !m.reasons[reason] {
		if len(m.reasons) >= maxReasons {
			reason = "other"
		} else {
			m.reasons[reason] = true
		}
	}
	m.mu.Unlock()
	m.refusals.WithLabelValues(route, reason).Inc()
}

func isReasonToken(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

func (m *metrics) observe(route string, code int, start time.Time) {
	k := requestKey{route, code}
	c, ok := m.requestsBy.Load(k)
	if !ok {
		c, _ = m.requestsBy.LoadOrStore(k, m.requests.WithLabelValues(route, statusLabel(code)))
	}
	c.(prometheus.Counter).Inc()
	o, ok := m.secondsBy.Load(route)
	if !ok {
		o, _ = m.secondsBy.LoadOrStore(route, m.seconds.WithLabelValues(route))
	}
	o.(prometheus.Observer).Observe(time.Since(start).Seconds())
}

// statusLabels are the status codes as label values, made once: Itoa
// allocates for every code above 99.
var statusLabels = func() (l [600]string) {
	for i := range l {
		l[i] = strconv.Itoa(i)
	}
	return l
}()

func statusLabel(code int) string {
	if code >= 0 && code < len(statusLabels) {
		return statusLabels[code]
	}
	return strconv.Itoa(code)
}
