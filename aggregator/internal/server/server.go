// Package server is the aggregator's HTTP layer: routes, authentication, and
// the one place per listener where errors become responses.
//
// Handlers are handlerFuncs: they return an error carrying its status
// (httpError, the package's one error type with a status) and never write
// error responses themselves; handle writes them as JSON {"error": "..."},
// turns panics into 500 and counts every request. The errors of the domain
// packages are given their status where a handler receives them: storeError
// for the store, ruleError for the rule registry.
//
// Public listener (edges and analysts):
//
//	POST /v1/ingest       edge token    zstd protobuf Batch → IngestResult
//	GET  /events          query token   one page of events, newest first, with count and links
//	GET  /events/{id}     query token   one event
//	GET  /stats           query token   event counts per minute, hour or day
//	GET  /matches         query token   cookie-sync matches by uid, or the uid of a partner id
//	GET  /v1/export       query token   the change feed: events in stored order after a cursor, long-poll
//	GET  /v1/export/erasures  query token   ids of erased events after an erasure number, for sync targets
//	GET  /v1/suppressions     edge token    the suppression list (erased subjects by hash); long-poll with after, wait
//	GET  /openapi.json    –             the OpenAPI document of these routes (openapi.json)
//	GET  /ui/             –             the analyst dashboard (aggregator/internal/ui); it asks for a query token
//	GET  /healthz         –             200 while the process runs
//	GET  /readyz          –             200 when the store can serve, else 503
//	GET  /metrics         –             Prometheus metrics
//
// Rule registry (handlers in rules.go, bodies of package internal/ruleapi),
// when configured:
//
//	GET  /v1/rules/manifest        edge token    active module per rule; long-poll with since, wait
//	GET  /v1/rules/modules/{hash}  edge token    a module's bytes
//	POST /v1/rules/status          edge token    which versions an edge runs → 204
//
// Admin listener: /healthz, /metrics, /ui/ (the same dashboard, whose rules
// page reads /rules here), and the rule registry (admin token):
//
//	GET  /rules                    versions, active version and edges per rule
//	PUT  /rules/{name}             upload a version (validated, not activated)
//	POST /rules/{name}/activate    {"hash": ...} → active
//	POST /rules/{name}/rollback    back to the version active before
//
// and erasures (admin token, handlers in erasure.go):
//
//	DELETE /v1/subjects?session_id=…|user_id=…|device_id=…|uid=…   erase a subject
//	GET    /v1/erasures                                            the audit records
//
// Any other path is a 404 and a known path with another method a 405, both
// with a JSON body.
package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edgetrack/edgetrack/aggregator/internal/erasure"
	"github.com/edgetrack/edgetrack/aggregator/internal/ingest"
	"github.com/edgetrack/edgetrack/aggregator/internal/registry"
	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/aggregator/internal/ui"
	"github.com/edgetrack/edgetrack/internal/auth"
	"github.com/edgetrack/edgetrack/internal/config"
)

// Config is what a Server needs.
type Config struct {
	Store  store.Store
	Tokens config.Tokens
	// MaxBatchBytes limits an ingest request body and the batch it
	// decompresses to.
	MaxBatchBytes int64
	// MaxPageSize is the largest limit a query may ask for.
	MaxPageSize int
	// Registerer receives the server's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Rules is the rule registry; nil serves no rule endpoints.
	Rules *registry.Registry
	// Erasures carries out erasure requests and keeps the suppression
	// list; nil serves no erasure endpoints and suppresses nothing.
	Erasures *erasure.Erasures
	// Gatherer is served at /metrics; nil serves no /metrics.
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger // nil means slog.Default()
}

// Server holds the handlers of both listeners. It is safe for concurrent use.
type Server struct {
	store    store.Store
	tokens   *auth.Tokens
	decoder  *ingest.Decoder
	maxBatch int64
	maxPage  int
	gatherer prometheus.Gatherer
	log      *slog.Logger
	metrics  *metrics
	edges    edgeLabels
	draining atomic.Bool
	routes   routes // patterns registered per listener, for TestOpenAPI
	rules    *registry.Registry
	erasures *erasure.Erasures
	uiFiles  ui.Files
}

// New returns a Server for cfg. Close releases it.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("server: no store")
	case cfg.MaxPageSize < 1:
		return nil, fmt.Errorf("server: max page size must be at least 1, got %d", cfg.MaxPageSize)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	dec, err := ingest.NewDecoder(cfg.MaxBatchBytes)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	files, err := ui.Load()
	if err != nil {
		dec.Close()
		return nil, fmt.Errorf("server: %w", err)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		dec.Close()
		return nil, fmt.Errorf("server: metrics: %w", err)
	}
	return &Server{
		store:    cfg.Store,
		tokens:   auth.New(cfg.Tokens),
		decoder:  dec,
		maxBatch: cfg.MaxBatchBytes,
		maxPage:  cfg.MaxPageSize,
		gatherer: cfg.Gatherer,
		log:      log,
		metrics:  m,
		rules:    cfg.Rules,
		erasures: cfg.Erasures,
		uiFiles:  files,
	}, nil
}

// Close releases the server's resources. Call it after the HTTP servers
// using its handlers have shut down.
func (s *Server) Close() { s.decoder.Close() }

// Drain makes /readyz answer 503 from now on, so that load balancers stop
// sending requests while the process shuts down.
func (s *Server) Drain() { s.draining.Store(true) }

// Public returns the handler of the public listener.
func (s *Server) Public() http.Handler {
	mux, h := s.newMux("public")
	s.publicRules(h)
	h("/v1/ingest", allow(s.authorize(auth.Edge, s.ingest), http.MethodPost))
	h("/events", get(s.authorize(auth.Query, s.listEvents)))
	h("/events/{id...}", get(s.authorize(auth.Query, s.getEvent)))
	h("/stats", get(s.authorize(auth.Query, s.stats)))
	h("/matches", get(s.authorize(auth.Query, s.matches)))
	h("/v1/export", get(s.authorize(auth.Query, s.export)))
	if s.erasures != nil {
		h("/v1/suppressions", get(s.authorize(auth.Edge, s.suppressions)))
		h("/v1/export/erasures", get(s.authorize(auth.Query, s.exportErasures)))
	}
	h("/openapi.json", get(openAPI))
	h("/ui/", get(s.ui))
	h("/readyz", get(s.readyz))
	s.operational(h)
	return mux
}

// Admin returns the handler of the admin listener.
func (s *Server) Admin() http.Handler {
	mux, h := s.newMux("admin")
	s.adminRules(h)
	if s.erasures != nil {
		h("/v1/subjects", allow(s.authorize(auth.Admin, s.eraseSubject), http.MethodDelete))
		h("/v1/erasures", get(s.authorize(auth.Admin, s.erasureAudit)))
	}
	h("/ui/", get(s.ui)) // the dashboard's rules page reads /rules here
	s.operational(h)
	return mux
}

// newMux returns a mux and a function that registers a handlerFunc on it
// behind handle.
func (s *Server) newMux(listener string) (*http.ServeMux, func(string, handlerFunc)) {
	mux := http.NewServeMux()
	return mux, func(pattern string, fn handlerFunc) {
		s.routes.add(listener, pattern)
		mux.Handle(pattern, s.handle(listener, fn))
	}
}

// operational registers what every listener serves: /healthz, /metrics, and
// 404 for unknown paths. Patterns carry no method, so that the mux never
// answers by itself: methods are checked by allow.
func (s *Server) operational(h func(string, handlerFunc)) {
	h("/healthz", get(healthz))
	if s.gatherer != nil {
		metrics := promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelError),
			ErrorHandling: promhttp.ContinueOnError,
		})
		h("/metrics", get(func(w http.ResponseWriter, r *http.Request) error {
			metrics.ServeHTTP(w, r)
			return nil
		}))
	}
	h("/", notFound)
}

// Timeouts and limits of both listeners. The aggregator's clients are edges
// and analysts, not browsers: a batch of up to max_batch_bytes must be read
// within ReadTimeout, and WriteTimeout runs from the end of the request
// headers, so it covers reading the body, storing and answering.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = time.Minute
	WriteTimeout      = 90 * time.Second
	IdleTimeout       = 2 * time.Minute
	MaxHeaderBytes    = 64 << 10
)

// NewHTTPServer returns an http.Server for h with the aggregator's timeouts
// and limits, logging what net/http reports to log.
func NewHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// allow answers 405 to methods other than the given ones.
func allow(h handlerFunc, methods ...string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if !slices.Contains(methods, r.Method) {
			return &httpError{
				status: http.StatusMethodNotAllowed,
				msg:    fmt.Sprintf("method %s not allowed; use %s", r.Method, strings.Join(methods, " or ")),
				header: http.Header{"Allow": {strings.Join(methods, ", ")}},
			}
		}
		return h(w, r)
	}
}

// get allows GET and HEAD.
func get(h handlerFunc) handlerFunc { return allow(h, http.MethodGet, http.MethodHead) }

// authorize lets requests through that present a token of kind.
func (s *Server) authorize(kind auth.Kind, h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		switch err := s.tokens.Check(r.Header.Get("Authorization"), kind); {
		case err == nil:
			return h(w, r)
		case errors.Is(err, auth.ErrNoCredentials):
			return &httpError{
				status: http.StatusUnauthorized,
				msg:    "missing bearer token: send Authorization: Bearer <" + kind.String() + " token>",
				header: http.Header{"Www-Authenticate": {"Bearer"}},
			}
		case errors.Is(err, auth.ErrWrongKind):
			return errorf(http.StatusForbidden, "this endpoint needs a %s token", kind)
		default:
			return errorf(http.StatusForbidden, "unknown token")
		}
	}
}

func notFound(w http.ResponseWriter, r *http.Request) error {
	return errorf(http.StatusNotFound, "no such endpoint: %s", r.URL.Path)
}

func healthz(w http.ResponseWriter, r *http.Request) error {
	writeText(w, "ok\n")
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if s.draining.Load() {
		return errorf(http.StatusServiceUnavailable, "not ready: shutting down")
	}
	if err := s.store.Ready(); err != nil {
		return &httpError{status: http.StatusServiceUnavailable, msg: "not ready: " + err.Error(), err: err}
	}
	writeText(w, "ok\n")
	return nil
}

// writeText writes a 200 plain-text response.
func writeText(w http.ResponseWriter, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(text)) // an error means the client went away
}
