package server

import (
	"errors"
	"net/http"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgetrack/edgetrack/internal/promreg"
)

// Ingest results, the values of edgetrack_ingest_batches_total's result label.
const (
	resultOK          = "ok"          // 200
	resultInvalid     = "invalid"     // 400, 415: will never succeed
	resultTooLarge    = "too_large"   // 413
	resultUnavailable = "unavailable" // 503: the edge retries
	resultError       = "error"       // 500 and panics
)

// metrics are the server's Prometheus collectors. They always exist; they are
// registered only when a Registerer is given.
type metrics struct {
	requests      *prometheus.CounterVec // listener, route, code
	panics        prometheus.Counter
	batches       *prometheus.CounterVec // result
	events        *prometheus.CounterVec // result: stored, duplicate, rejected
	edgeEvents    *prometheus.CounterVec // edge
	ingestSeconds prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "edgetrack", Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests answered by the aggregator, by listener, route pattern and status code.",
		}, []string{"listener", "route", "code"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "edgetrack", Subsystem: "http", Name: "panics_total",
			Help: "Aggregator HTTP handlers that panicked (answered 500).",
		}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "edgetrack", Subsystem: "ingest", Name: "batches_total",
			Help: "Authenticated ingest requests by result: ok, invalid, too_large, unavailable (retryable), error.",
		}, []string{"result"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "edgetrack", Subsystem: "ingest", Name: "events_total",
			Help: "Events of ingested batches by result: stored, duplicate (already stored), rejected (never storable), suppressed (of an erased subject).",
		}, []string{"result"}),
		edgeEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "edgetrack", Subsystem: "ingest", Name: "edge_events_total",
			Help: "Events of ingested batches by the edge that sent them (X-Edgetrack-Edge); " +
				"edges beyond the first " + strconv.Itoa(maxEdgeLabels) + " count as \"other\".",
		}, []string{"edge"}),
		ingestSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "edgetrack", Subsystem: "ingest", Name: "request_seconds",
			Help:    "Duration of authenticated ingest requests, from reading the body to the stored answer.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15), // 1 ms … 16 s
		}),
	}
	for _, r := range []string{resultStored, resultDuplicate, resultRejected} {
		m.events.WithLabelValues(r) // export zeros, so that rate() works from the start
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.requests, err = promreg.Register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.panics, err = promreg.Register(reg, m.panics); err != nil {
		return nil, err
	}
	if m.batches, err = promreg.Register(reg, m.batches); err != nil {
		return nil, err
	}
	if m.events, err = promreg.Register(reg, m.events); err != nil {
		return nil, err
	}
	if m.edgeEvents, err = promreg.Register(reg, m.edgeEvents); err != nil {
		return nil, err
	}
	if m.ingestSeconds, err = promreg.Register(reg, m.ingestSeconds); err != nil {
		return nil, err
	}
	return m, nil
}

// Event results, the values of edgetrack_ingest_events_total's result label.
const (
	resultStored    = "stored"
	resultDuplicate = "duplicate"
	resultRejected  = "rejected"
	// resultSuppressed: events of an erased subject, dropped.
	resultSuppressed = "suppressed"
)

// batchResult is the result label for an ingest request that ended with err.
func batchResult(err error) string {
	if err == nil {
		return resultOK
	}
	var he *httpError
	if !errors.As(err, &he) {
		return resultError
	}
	switch {
	case he.status == http.StatusRequestEntityTooLarge:
		return resultTooLarge
	case he.status == http.StatusServiceUnavailable:
		return resultUnavailable
	case he.status < 500:
		return resultInvalid
	}
	return resultError
}

// maxEdgeLabels bounds the edge label of edgetrack_ingest_edge_events_total.
// Edges are deployed by operators, so there are few of them; the bound only
// stops a misbehaving client with an edge token from growing the metric
// without limit.
const (
	maxEdgeLabels = 1000
	maxEdgeLen    = 128
)

// edgeLabels hands out the edge label values: the edge id for the first
// maxEdgeLabels distinct ids, "other" after that, "unknown" for an empty id
// and "invalid" for one that is too long or not UTF-8.
type edgeLabels struct {
	mu   sync.Mutex
	seen map[string]struct{}
}

func (l *edgeLabels) label(edge string) string {
	switch {
	case edge == "":
		return "unknown"
	case len(edge) > maxEdgeLen || !utf8.ValidString(edge):
		return "invalid"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seen[edge]; ok {
		return edge
	}
	if len(l.seen) >= maxEdgeLabels {
		return "other"
	}
	if l.seen == nil {
		l.seen = make(map[string]struct{})
	}
	l.seen[edge] = struct{}{}
	return edge
}
