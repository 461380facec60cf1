package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/edgetrack/edgetrack/edge/internal/ratelimit"
	"github.com/edgetrack/edgetrack/edge/internal/ruleslot"
	"github.com/edgetrack/edgetrack/edge/internal/spool"
	"github.com/edgetrack/edgetrack/internal/storable"
	"github.com/edgetrack/edgetrack/internal/subject"
	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/host"
)

// Route is one endpoint whose decision is a rule.
type Route struct {
	Name    string   // metric label and the rule's name
	Path    string   // exact path
	Methods []string // allowed methods; others get 405
	Rule    *ruleslot.Slot
	// MaxBodyBytes below the server's limit tightens it for this route.
	MaxBodyBytes int
	// CORS, when set, answers preflights and lets allowed origins read
	// responses.
	CORS *CORS
	// Limit, when set, is the route's token bucket per client: a request
	// that finds its client's bucket empty gets 429 with Retry-After before
	// anything else is done. Routes may share one (a path and its alias).
	Limit *ratelimit.PerClient
	// LimitName labels the limit in metrics and messages (the setting's
	// name, e.g. "cookiesync_init"); required with Limit.
	LimitName string

	limited prometheus.Counter // the limit's edgetrack_rate_limited_total
}

// Options configure a Server.
type Options struct {
	EdgeID         string
	MaxBodyBytes   int // default 1 MiB
	MaxHeaderBytes int // default 8 KiB
	ReadTimeout    time.Duration
	WriteTimeout   time.Duration
	IdleTimeout    time.Duration
	TrustedProxies []netip.Prefix
	// MaxInFlight caps the requests to rule routes handled at once; one
	// beyond it gets 503 with Retry-After at once. 0 = no cap.
	MaxInFlight int
	Spool       *spool.Spool
	// NotReady, when set, is asked by /readyz too: an error makes the edge
	// not ready, with the error as the reason.
	NotReady func() error
	// Suppressed, when set, returns the subjects erased at the aggregator:
	// their events are dropped, and the request answered as the rule says.
	Suppressed func() *subject.Set
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer // served at /metrics; nil = none
	Logger     *slog.Logger
	Now        func() time.Time
	// Assets are files served without a rule (the browser tracker).
	Assets []*Asset
}

// Server is the edge's public HTTP server.
type Server struct {
	opts     Options
	routes   map[string]*Route
	assets   map[string]*Asset
	fast     *fasthttp.Server
	metrics  *metrics
	log      *slog.Logger
	draining atomic.Bool
	metricsH fasthttp.RequestHandler
	// inFlight counts requests past the rate limit on rule routes that
	// have not been answered yet (edgetrack_in_flight).
	inFlight atomic.Int64
}

// New builds a server for routes.
func New(opts Options, routes ...*Route) (*Server, error) {
	if opts.Spool == nil {
		return nil, errors.New("server: no spool")
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = 8 << 10
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, routes: map[string]*Route{}, assets: map[string]*Asset{}, log: opts.Logger}
	s.metrics = newMetrics(opts.Registerer, func() float64 { return float64(s.inFlight.Load()) })
	limits := map[string]*ratelimit.PerClient{}
	for _, r := range routes {
		if r.Limit != nil {
			if r.LimitName == "" {
				return nil, fmt.Errorf("server: route %s has a limit without a name", r.Path)
			}
			if other, ok := limits[r.LimitName]; ok && other != r.Limit {
				return nil, fmt.Errorf("server: two limits named %s", r.LimitName)
			} else if !ok {
				limits[r.LimitName] = r.Limit
				s.metrics.limit(r.LimitName, r.Limit)
			}
			r.limited = s.metrics.limited.WithLabelValues(r.LimitName)
		}
		if _, dup := s.routes[r.Path]; dup {
			return nil, fmt.Errorf("server: two routes for %s", r.Path)
		}
		if r.Rule == nil || r.Rule.Load() == nil {
			return nil, fmt.Errorf("server: route %s has no rule", r.Path)
		}
		s.routes[r.Path] = r
	}
	for _, a := range opts.Assets {
		if _, dup := s.routes[a.Path]; dup || s.assets[a.Path] != nil {
			return nil, fmt.Errorf("server: two routes for %s", a.Path)
		}
		a.file = prepare(a.File, []byte(a.CacheControl))
		if a.OptedOut != nil {
			a.optedOut = prepare(a.OptedOut, valNoStore)
		}
		s.assets[a.Path] = a
	}
	if opts.Gatherer != nil {
		s.metricsH = fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	}
	s.fast = &fasthttp.Server{
		Handler:                       s.handle,
		ErrorHandler:                  s.parseError,
		Name:                          "edgetrack",
		MaxRequestBodySize:            opts.MaxBodyBytes,
		ReadBufferSize:                opts.MaxHeaderBytes,
		ReadTimeout:                   opts.ReadTimeout,
		WriteTimeout:                  opts.WriteTimeout,
		IdleTimeout:                   opts.IdleTimeout,
		CloseOnShutdown:               true,
		DisablePreParseMultipartForm:  true,
		NoDefaultContentType:          true,
		DisableHeaderNamesNormalizing: false,
		Logger:                        fasthttpLogger{opts.Logger},
	}
	return s, nil
}

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.fast.Serve(ln) }

// Shutdown makes every new request answer 503, stops accepting connections,
// and waits for requests in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	return s.fast.ShutdownWithContext(ctx)
}

// parseError answers requests fasthttp could not read. Its default would
// answer 400 for an oversized body; clients must see 413 there, since a 400
// tells them nothing about size.
func (s *Server) parseError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		s.writeError(ctx, "", statusError(413, fmt.Sprintf("request body exceeds %d bytes", s.opts.MaxBodyBytes)))
	case errors.As(err, &small):
		s.writeError(ctx, "", statusError(431, fmt.Sprintf("request headers exceed %d bytes", s.opts.MaxHeaderBytes)))
	case errors.As(err, &netErr) && netErr.Timeout():
		s.writeError(ctx, "", statusError(408, "request not received in time"))
	default:
		s.writeError(ctx, "", statusError(400, "malformed HTTP request: "+err.Error()))
	}
}

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	route := "other"
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("handler panicked", "panic", p, "path", string(ctx.Path()))
			ctx.Response.Reset()
			s.writeError(ctx, route, internal("internal error", fmt.Errorf("panic: %v", p)))
		}
		s.metrics.observe(route, ctx.Response.StatusCode(), start)
	}()

	path := string(ctx.Path())
	switch path {
	case "/healthz":
		route = "healthz"
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ok\n")
		return
	case "/readyz":
		route = "readyz"
		if err := s.ready(); err != nil {
			s.writeError(ctx, route, err)
			return
		}
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ready\n")
		return
	case "/metrics":
		if s.metricsH != nil {
			route = "metrics"
			s.metricsH(ctx)
			return
		}
	}
	if a, ok := s.assets[path]; ok {
		route = "asset"
		if err := s.serveAsset(ctx, a); err != nil {
			s.writeError(ctx, route, err)
		}
		return
	}
	r, ok := s.routes[path]
	if !ok {
		s.writeError(ctx, route, statusError(404, "no such endpoint: "+path))
		return
	}
	route = r.Name
	if r.CORS != nil {
		r.CORS.headers(ctx)
		if ctx.IsOptions() {
			if err := r.CORS.preflight(ctx, strings.Join(r.Methods, ", ")); err != nil {
				s.writeError(ctx, route, err)
			}
			return
		}
	}
	if err := s.serveRule(ctx, r); err != nil {
		s.writeError(ctx, route, err)
	}
}

// ready returns the 503 that says why the edge cannot take events, or nil.
func (s *Server) ready() error {
	if s.draining.Load() {
		return retryLater("edge is shutting down", 1, nil)
	}
	if err := s.opts.Spool.ReadyFor(readyRoom); err != nil {
		return spoolRefused("spool not ready: "+err.Error(), nil)
	}
	if s.opts.NotReady != nil {
		if err := s.opts.NotReady(); err != nil {
			return retryLater(err.Error(), 1, nil)
		}
	}
	return nil
}

// readyRoom is the room in the spool /readyz asks for: a small batch of
// events. A spool with less is not ready, although it may still take the
// smallest requests.
const readyRoom = 64 << 10

var requests = sync.Pool{New: func() any { return &ruleRequest{} }}

// ruleRequest is the per-request scratch space, pooled.
type ruleRequest struct {
	req    abi.Request
	values [][]byte
	buf    []byte
	names  []byte // the request's header names, lower-cased; req.Headers alias it
}

func (s *Server) serveRule(ctx *fasthttp.RequestCtx, r *Route) error {
	method := ctx.Method()
	allowed := false
	for _, m := range r.Methods {
		if string(method) == m {
			allowed = true
			break
		}
	}
	if !allowed {
		ctx.Response.Header.Set("Allow", strings.Join(r.Methods, ", "))
		return statusError(405, "method "+string(method)+" not allowed; use "+strings.Join(r.Methods, " or "))
	}
	if s.draining.Load() {
		return retryLater("edge is shutting down; retry", 1, nil)
	}
	now := s.opts.Now()
	client := clientAddr(ctx.RemoteIP(), ctx.Request.Header.Peek("X-Forwarded-For"), s.opts.TrustedProxies)
	if r.Limit != nil {
		if ok, wait := r.Limit.Allow(client, now); !ok {
			r.limited.Inc()
			return rateLimited(r, wait)
		}
	}
	// The cap comes after the limit, so that a client over its limit never
	// takes a slot from the others.
	if n := s.inFlight.Add(1); s.opts.MaxInFlight > 0 && n > int64(s.opts.MaxInFlight) {
		s.inFlight.Add(-1)
		s.metrics.shed.Inc()
		return overloaded(s.opts.MaxInFlight)
	}
	defer s.inFlight.Add(-1)
	body := ctx.PostBody()
	if r.MaxBodyBytes > 0 && len(body) > r.MaxBodyBytes {
		return statusError(413, fmt.Sprintf("request body of %d bytes exceeds %d", len(body), r.MaxBodyBytes))
	}
	if err := s.opts.Spool.Ready(); err != nil {
		return spoolRefused("edge cannot take events now; retry later", err)
	}

	rr := requests.Get().(*ruleRequest)
	defer requests.Put(rr)
	rr.req = abi.Request{
		Method:     string(method),
		Path:       string(ctx.Path()),
		Query:      string(ctx.URI().QueryString()),
		Headers:    rr.req.Headers[:0],
		Body:       body,
		RemoteIP:   addrString(client),
		ReceivedAt: now.UnixNano(),
	}
	// The request lives only for the call: its strings alias the pooled
	// names buffer and fasthttp's header bytes, both unchanged until the
	// handler returns. (A verdict shares nothing with it: it is decoded
	// from a copy, see abi.DecodeVerdict.)
	rr.names = rr.names[:0]
	for k, v := range ctx.Request.Header.All() {
		start := len(rr.names)
		rr.names = appendLower(rr.names, k)
		rr.req.Headers = append(rr.req.Headers, abi.Header{Name: abi.Alias(rr.names[start:]), Value: abi.Alias(v)})
	}

	v, version, err := s.call(r, &rr.req)
	if err != nil {
		return err
	}
	if v.Status < 100 || v.Status > 599 {
		return internal("rule failed", fmt.Errorf("rule %s returned status %d", r.Name, v.Status))
	}
	if v.Status >= 200 && v.Status < 400 && len(v.Events) > 0 { // a redirect may carry events (cookie sync)
		if err := s.spool(r, version, &v, rr, now); err != nil {
			return err
		}
	}
	ctx.Response.Header.Set("X-Edgetrack-Rule", version)
	if reason := verdictReason(&v); reason != "" || v.Status >= 400 {
		s.metrics.refused(r.Name, reason)
		s.log.Debug("rule refused request", "route", r.Name, "status", v.Status, "reason", reason, "message", v.Message)
	}
	s.writeVerdict(ctx, &v)
	return nil
}

// appendLower appends b with ASCII letters lower-cased. (Header names are
// ASCII; fasthttp rejects others.)
func appendLower(dst, b []byte) []byte {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// call runs the route's active rule, moving to its successor if the version
// it loaded is being retired.
// It returns the verdict and the version that gave it (ruleslot.Version).
func (s *Server) call(r *Route, req *abi.Request) (abi.Verdict, string, error) {
	for attempt := 0; ; attempt++ {
		m, version := r.Rule.LoadVersion()
		v, err := m.Call(context.Background(), req)
		switch {
		case err == nil:
			return v, version, nil
		case errors.Is(err, host.ErrClosed) && attempt < 3:
			continue
		case errors.Is(err, host.ErrBusy):
			return v, version, retryLater("edge is busy; retry", 1, err)
		default:
			return v, version, internal("rule failed", err)
		}
	}
}

// spool stamps the verdict's events and appends them to the spool; it
// returns after the spool's WAL is synced.
//
// Every event must be storable (internal/storable, the aggregator's own
// rules) before any is spooled. An event that is not could never be
// delivered — the forwarder could not decode it, or the aggregator would
// reject it — so acknowledging it would lose it. A rule that emits one is
// buggy: the request gets a 500 naming the problem and nothing is spooled,
// so the client keeps its data and retries.
func (s *Server) spool(r *Route, ruleVersion string, v *abi.Verdict, rr *ruleRequest, now time.Time) error {
	rr.values = rr.values[:0]
	rr.buf = rr.buf[:0]
	var suppressed *subject.Set
	if s.opts.Suppressed != nil {
		suppressed = s.opts.Suppressed()
	}
	dropped := 0
	for i := range v.Events {
		e := &v.Events[i]
		e.ReceivedAt = now.UnixNano()
		e.Edge = s.opts.EdgeID
		e.Rule = ruleVersion
		fs := storable.Fields{ID: e.ID, Session: e.Session, Category: e.Category, Name: e.Name, IP: e.IP, Edge: e.Edge, Rule: e.Rule}
		if problem := storable.Problem(&fs); problem != "" {
			return internal(fmt.Sprintf("rule %s emitted an event that cannot be stored (event %d: %s); nothing was accepted", ruleVersion, i, problem),
				fmt.Errorf("rule %s: event %d of %d (id %q) cannot be stored: %s", ruleVersion, i, len(v.Events), e.ID, problem))
		}
		if suppressed.Suppressed(e.Session, e.Data) {
			dropped++
			continue
		}
		start := len(rr.buf)
		rr.buf = abi.AppendEvent(rr.buf, e)
		rr.values = append(rr.values, rr.buf[start:len(rr.buf):len(rr.buf)])
	}
	if dropped > 0 {
		s.metrics.suppressed.WithLabelValues(r.Name).Add(float64(dropped))
		if len(rr.values) == 0 {
			return nil
		}
	}
	// rr.buf may have been reallocated while appending; the earlier values
	// still point into the old arrays, which stay valid.
	if _, err := s.opts.Spool.Append(rr.values...); err != nil {
		if errors.Is(err, spool.ErrFull) {
			return spoolRefused("edge spool is full; retry later", err)
		}
		return spoolRefused("edge could not store events; retry", err)
	}
	s.metrics.events.WithLabelValues(r.Name).Add(float64(len(rr.values)))
	return nil
}

// hopHeaders may not be set by a rule.
var hopHeaders = map[string]bool{
	"connection": true, "content-length": true, "transfer-encoding": true, "keep-alive": true,
	"upgrade": true, "te": true, "trailer": true, "set-cookie": true, "location": true,
}

func (s *Server) writeVerdict(ctx *fasthttp.RequestCtx, v *abi.Verdict) {
	ctx.SetStatusCode(int(v.Status))
	for _, h := range v.Headers {
		if !hopHeaders[strings.ToLower(h.Name)] && validHeader(h.Name, h.Value) {
			ctx.Response.Header.Set(h.Name, h.Value)
		}
	}
	if v.Location != "" && v.Status >= 300 && v.Status < 400 && validHeader("Location", v.Location) {
		ctx.Response.Header.Set("Location", v.Location)
	}
	for i := range v.Cookies {
		setCookie(ctx, &v.Cookies[i])
	}
	switch {
	case len(v.Body) > 0:
		ctx.SetBody(v.Body)
	case v.Status >= 400:
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString(v.Message + "\n")
	}
}

func setCookie(ctx *fasthttp.RequestCtx, c *abi.Cookie) {
	if !validHeader(c.Name, c.Value) || c.Name == "" {
		return
	}
	ck := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(ck)
	ck.SetKey(c.Name)
	ck.SetValue(c.Value)
	if c.MaxAge != 0 {
		ck.SetMaxAge(int(c.MaxAge))
	}
	ck.SetPath(c.Path)
	ck.SetDomain(c.Domain)
	ck.SetSecure(c.Secure)
	ck.SetHTTPOnly(c.HTTPOnly)
	switch strings.ToLower(c.SameSite) {
	case "lax":
		ck.SetSameSite(fasthttp.CookieSameSiteLaxMode)
	case "strict":
		ck.SetSameSite(fasthttp.CookieSameSiteStrictMode)
	case "none":
		ck.SetSameSite(fasthttp.CookieSameSiteNoneMode)
	}
	ctx.Response.Header.SetCookie(ck)
}

// validHeader refuses names and values that could split a response.
func validHeader(name, value string) bool {
	return !strings.ContainsAny(name, "\r\n:") && !strings.ContainsAny(value, "\r\n\x00")
}

// writeError answers err; the single place errors become responses.
func (s *Server) writeError(ctx *fasthttp.RequestCtx, route string, err error) {
	he := asHTTPError(err)
	if he.status >= 500 && he.cause != nil {
		s.log.Warn("request failed", "route", route, "status", he.status, "err", he.cause)
	}
	ctx.SetStatusCode(he.status)
	if he.retryAfter > 0 {
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(he.retryAfter))
	}
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString(he.msg + "\n")
}

type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) { f.l.Debug(fmt.Sprintf(format, args...)) }

// verdictReason returns the X-Edgetrack-Reason header a rule set, if any.
func verdictReason(v *abi.Verdict) string {
	for _, h := range v.Headers {
		if strings.EqualFold(h.Name, "x-edgetrack-reason") {
			return h.Value
		}
	}
	return ""
}
