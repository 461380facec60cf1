// Package edge runs an edge node: the public server whose routes are decided
// by wasm rules, the spool that makes accepted events durable, the forwarder
// that ships them to the aggregator, and the admin listener. It only wires;
// the work is in edge/internal/... and wasm/host.
package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/edgetrack/edgetrack/client/tracker"
	"github.com/edgetrack/edgetrack/edge/internal/forward"
	"github.com/edgetrack/edgetrack/edge/internal/ratelimit"
	"github.com/edgetrack/edgetrack/edge/internal/rollout"
	"github.com/edgetrack/edgetrack/edge/internal/ruleslot"
	"github.com/edgetrack/edgetrack/edge/internal/server"
	"github.com/edgetrack/edgetrack/edge/internal/spool"
	"github.com/edgetrack/edgetrack/edge/internal/suppression"
	"github.com/edgetrack/edgetrack/internal/asset"
	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/internal/tlsconf"
	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/dist"
	"github.com/edgetrack/edgetrack/wasm/host"
	"github.com/edgetrack/edgetrack/wasm/native"
)

// Options configure an Edge.
type Options struct {
	Config config.Edge
	// Registry collects the edge's metrics; nil = a new one. It is served at
	// /metrics on the admin listener only: the public one faces the internet.
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// Rules replaces built-in rule modules by name (tests, custom builds).
	Rules map[string][]byte
	// Native runs the built-in rules' logic compiled into the binary
	// instead of as wasm: the baseline benchmarks compare against. Such an
	// edge cannot swap rules.
	Native bool
}

// Edge is a running edge node.
type Edge struct {
	cfg   config.Edge
	log   *slog.Logger
	reg   *prometheus.Registry
	spool *spool.Spool
	rt    *host.Runtime
	slots map[string]*ruleslot.Slot
	srv   *server.Server
	fwd   *forward.Forwarder
	roll  *rollout.Rollout
	supp  *suppression.List
	admin *server.Admin
	certs tlsconf.Set // the listeners' certificates, for ReloadTLS

	ln, adminLn net.Listener
}

// routeConfig is what the edge's configuration says about a built-in rule
// (wasm/dist's table gives its paths, methods and module): the settings the
// rule gets, the name of each path's rate limit under edge.limits, and, when
// set, whether the configuration turns it on. Every built-in rule has an
// entry (TestEveryBuiltinRuleIsConfigured).
type routeConfig struct {
	settings func(c *config.Edge) []abi.Setting
	enabled  func(c *config.Edge) bool
	// limits names a path's setting under edge.limits; a path not in it
	// uses the rule's name. A path and its alias share one.
	limits map[string]string
}

// limitFor returns the edge.limits setting of the rule's path.
func (rc routeConfig) limitFor(rule, path string) string {
	if l, ok := rc.limits[path]; ok {
		return l
	}
	return rule
}

var routeConfigs = map[string]routeConfig{
	"hamustro": {settings: hamustroSettings},
	"eye":      {settings: eyeSettings},
	"cookiesync": {settings: cookiesyncSettings,
		limits: map[string]string{
			"/cookiesync/i": "cookiesync_init", "/cookiesync/sync": "cookiesync_sync", "/cookiesync/done": "cookiesync_done",
			"/cs/i": "cookiesync_init", "/cs/s": "cookiesync_sync", "/cs/d": "cookiesync_done",
		},
		enabled: func(c *config.Edge) bool { return len(c.CookieSync.Partners) > 0 }},
}

func eyeSettings(c *config.Edge) []abi.Setting {
	return []abi.Setting{
		{Key: "max_clock_skew", Values: []string{c.Eye.MaxClockSkew.Duration().String()}},
		{Key: "max_events", Values: []string{strconv.Itoa(c.Eye.MaxEvents)}},
		{Key: "max_event_bytes", Values: []string{strconv.FormatInt(int64(c.Eye.MaxEventBytes), 10)}},
		{Key: "max_depth", Values: []string{strconv.Itoa(c.Eye.MaxDepth)}},
		{Key: "max_keys", Values: []string{strconv.Itoa(c.Eye.MaxKeys)}},
	}
}

func cookiesyncSettings(c *config.Edge) []abi.Setting {
	cs := &c.CookieSync
	partners := make([]string, len(cs.Partners))
	for i, p := range cs.Partners {
		// Hosts may be separated by spaces (the environment's lists are
		// comma-separated); the rule wants commas.
		if j := strings.LastIndexByte(p, '|'); j >= 0 {
			hosts := strings.FieldsFunc(p[j+1:], func(r rune) bool { return r == ',' || r == ' ' })
			p = p[:j+1] + strings.Join(hosts, ",")
		}
		partners[i] = p
	}
	s := []abi.Setting{
		{Key: "partners", Values: partners},
		{Key: "gdpr_default", Values: []string{cs.GDPRDefault}},
		{Key: "cookie_max_age", Values: []string{strconv.FormatInt(int64(cs.CookieMaxAge.Duration().Seconds()), 10)}},
		{Key: "max_id_bytes", Values: []string{strconv.Itoa(cs.MaxIDBytes)}},
	}
	if cs.VendorID > 0 {
		s = append(s, abi.Setting{Key: "vendor_id", Values: []string{strconv.Itoa(cs.VendorID)}})
	}
	if cs.CookieDomain != "" {
		s = append(s, abi.Setting{Key: "cookie_domain", Values: []string{cs.CookieDomain}})
	}
	if cs.AllowHTTP {
		s = append(s, abi.Setting{Key: "allow_http", Values: []string{"true"}})
	}
	return s
}

func hamustroSettings(c *config.Edge) []abi.Setting {
	s := []abi.Setting{{Key: "secrets", Values: c.Hamustro.Secrets}}
	if d := c.Hamustro.MaxClockSkew.Duration(); d > 0 {
		s = append(s, abi.Setting{Key: "max_clock_skew", Values: []string{d.String()}})
	}
	if c.Hamustro.MaskIP {
		s = append(s, abi.Setting{Key: "mask_ip", Values: []string{"true"}})
	}
	return s
}

// New opens the spool, loads the rules and binds both listeners, so that
// Addr is known before Run. On error nothing is left open.
func New(ctx context.Context, opts Options) (_ *Edge, err error) {
	cfg := opts.Config
	if err := (&config.Config{Log: config.Default().Log, Edge: cfg}).ValidateEdge(); err != nil {
		return nil, err
	}
	e := &Edge{cfg: cfg, log: opts.Logger, reg: opts.Registry, slots: map[string]*ruleslot.Slot{}}
	if e.log == nil {
		e.log = slog.Default()
	}
	if e.reg == nil {
		e.reg = prometheus.NewRegistry()
		e.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if cfg.ID == "" {
		if cfg.ID, err = os.Hostname(); err != nil {
			cfg.ID = "edge"
		}
		e.cfg.ID = cfg.ID
	}
	defer func() {
		if err != nil {
			e.close(context.Background())
		}
	}()

	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("edge: data dir: %w", err)
	}
	e.spool, err = spool.Open(spool.Options{
		Dir:          filepath.Join(cfg.DataDir, "spool"),
		QuotaBytes:   int64(cfg.Spool.QuotaBytes),
		MinFreeBytes: minFree(cfg.Spool.MinFreeBytes),
		Registerer:   e.reg,
		Logger:       e.log.With("component", "spool"),
	})
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}

	e.rt, err = host.New(ctx, host.Options{
		CacheDir:    cfg.RulesCacheDir(),
		MemoryLimit: uint64(cfg.Rules.MemoryLimit),
		CallTimeout: cfg.Rules.CallTimeout.Duration(),
		PoolSize:    cfg.Rules.PoolSize,
		// Instances reserve room for the largest request up front, while
		// their heaps are small (see docs/RATIONALE.md).
		InputReserve: int(cfg.MaxBodyBytes) + int(cfg.MaxHeaderBytes) + 4096,
		Logger:       e.log.With("component", "rules"),
		Metrics:      host.NewMetrics(e.reg),
	})
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	var srvRoutes []*server.Route
	limitCfg := cfg.Limits.Routes()
	limits := map[string]*ratelimit.PerClient{} // shared by a path and its alias
	rules := map[string]rollout.Rule{}
	initial := map[string][]byte{}
	for _, r := range dist.Builtins() {
		rc, ok := routeConfigs[r.Name]
		if !ok {
			return nil, fmt.Errorf("edge: built-in rule %s has no settings (routeConfigs)", r.Name)
		}
		if rc.enabled != nil && !rc.enabled(&cfg) {
			e.log.Info("rule off by configuration", "rule", r.Name)
			continue
		}
		wasm, ok := opts.Rules[r.Name]
		if !ok {
			wasm = r.Module
		}
		ruleCfg := &abi.Config{Rule: r.Name, Settings: rc.settings(&cfg)}
		var m ruleslot.Rule
		if opts.Native {
			m, err = native.New(r.Name, ruleCfg)
		} else {
			m, err = e.rt.Load(ctx, r.Name, wasm, ruleCfg)
		}
		if err != nil {
			return nil, fmt.Errorf("edge: rule %s: %w", r.Name, err)
		}
		slot := &ruleslot.Slot{}
		slot.Swap(m)
		e.slots[r.Name] = slot
		rules[r.Name] = rollout.Rule{Slot: slot, Config: ruleCfg}
		initial[r.Name] = wasm
		var cors *server.CORS
		if r.CORS {
			cors = &server.CORS{AllowedOrigins: cfg.Eye.AllowedOrigins}
		}
		for _, path := range r.Paths {
			sr := &server.Route{Name: r.Name, Path: path, Methods: r.Methods, Rule: slot, CORS: cors}
			limit := rc.limitFor(r.Name, path)
			if l, ok := limitCfg[limit]; !ok {
				return nil, fmt.Errorf("edge: route %s: no setting edge.limits.%s", path, limit)
			} else if l.Enabled() {
				if limits[limit] == nil {
					limits[limit] = ratelimit.New(ratelimit.Options{Rate: l.Rate.PerSecond(), Burst: l.Burst, MaxClients: cfg.Limits.MaxClients})
					e.log.Info("rate limit on", "limit", limit, "rate", l.Rate, "burst", l.Burst, "max_clients", cfg.Limits.MaxClients)
				}
				sr.Limit, sr.LimitName = limits[limit], limit
			}
			srvRoutes = append(srvRoutes, sr)
		}
		e.log.Info("rule loaded", "rule", r.Name, "version", m.Hash()[:12], "bytes", len(wasm))
	}

	aggTLS, err := tlsconf.ClientConfig("edge.aggregator_ca_file", cfg.AggregatorCAFile)
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	pullURL := ""
	if cfg.Rules.Pull && !opts.Native {
		// Rules come from the first aggregator: with several (on one
		// ClickHouse database) every one serves the same registry.
		pullURL = cfg.AggregatorURLs()[0]
	}
	e.roll, err = rollout.New(rollout.Options{
		Runtime:    e.rt,
		Rules:      rules,
		URL:        pullURL,
		TLS:        aggTLS,
		Token:      cfg.Token,
		EdgeID:     cfg.ID,
		PollWait:   cfg.Rules.PollWait.Duration(),
		Registerer: e.reg,
		Logger:     e.log.With("component", "rollout"),
	}, initial)
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}

	e.supp, err = suppression.Open(suppression.Options{
		Path: filepath.Join(cfg.DataDir, "suppressions.json"),
		// The first aggregator, as for rules: every aggregator on one
		// database serves the same list. (The setting may list several.)
		URL:        cfg.AggregatorURLs()[0],
		Token:      cfg.Token,
		EdgeID:     cfg.ID,
		PollWait:   cfg.Rules.PollWait.Duration(),
		TLS:        aggTLS,
		Registerer: e.reg,
		Logger:     e.log.With("component", "suppression"),
	})
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}

	script, err := trackerAsset()
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	trusted, err := cfg.TrustedPrefixes()
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	if len(limits) > 0 && len(trusted) == 0 {
		e.log.Info("rate limits count clients by the peer's address (no edge.trusted_proxies): behind a load balancer, list it there")
	}
	maxInFlight := cfg.Limits.MaxInFlightFor(cfg.Rules.PoolSizeFor(runtime.GOMAXPROCS(0)))
	e.srv, err = server.New(server.Options{
		EdgeID:         cfg.ID,
		MaxBodyBytes:   int(cfg.MaxBodyBytes),
		MaxHeaderBytes: int(cfg.MaxHeaderBytes),
		ReadTimeout:    cfg.ReadTimeout.Duration(),
		WriteTimeout:   cfg.WriteTimeout.Duration(),
		IdleTimeout:    cfg.IdleTimeout.Duration(),
		TrustedProxies: trusted,
		MaxInFlight:    maxInFlight,
		Spool:          e.spool,
		Suppressed:     e.supp.Set,
		// e.fwd is made below, before the server runs.
		NotReady: func() error {
			if e.fwd == nil {
				return nil
			}
			return e.fwd.Refused()
		},
		Registerer: e.reg,
		Logger:     e.log.With("component", "server"),
		Assets:     []*server.Asset{script},
	}, srvRoutes...)
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}

	e.fwd, err = forward.New(forward.Options{
		Spool:          e.spool,
		URL:            strings.Join(cfg.AggregatorURLs(), ","),
		TLS:            aggTLS,
		Token:          cfg.Token,
		EdgeID:         cfg.ID,
		BatchMaxEvents: cfg.Forward.BatchMaxEvents,
		BatchMaxBytes:  int(cfg.Forward.BatchMaxBytes),
		BatchMaxAge:    cfg.Forward.BatchMaxAge.Duration(),
		RequestTimeout: cfg.Forward.RequestTimeout.Duration(),
		BackoffMin:     cfg.Forward.BackoffMin.Duration(),
		BackoffMax:     cfg.Forward.BackoffMax.Duration(),
		Registerer:     e.reg,
		Logger:         e.log.With("component", "forward"),
	})
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}

	publicCert, err := tlsconf.ForListener("edge.tls", cfg.TLS)
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	adminCert, err := tlsconf.ForListener("edge.admin_tls", cfg.AdminTLS)
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	e.certs = tlsconf.Set{publicCert, adminCert}
	if e.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("edge: listen on %s (edge.listen): %w", cfg.Listen, err)
	}
	if e.adminLn, err = net.Listen("tcp", cfg.AdminListen); err != nil {
		return nil, fmt.Errorf("edge: listen on %s (edge.admin_listen): %w", cfg.AdminListen, err)
	}
	// fasthttp speaks HTTP/1.1 only; the admin listener's net/http also h2.
	e.ln = publicCert.Listener(e.ln, "http/1.1")
	e.adminLn = adminCert.Listener(e.adminLn, "h2", "http/1.1")
	e.admin = server.NewAdmin(server.AdminOptions{
		Tokens:   cfg.AdminTokens,
		Spool:    e.spool,
		Rollout:  e.roll,
		Gatherer: e.reg,
		Logger:   e.log.With("component", "admin"),
	})
	return e, nil
}

// TrackerCacheControl lets browsers keep /et.js but makes them ask before
// each use (If-None-Match, answered 304 while it is unchanged). Chromium
// reuses a fresh cached script without asking even after the Cookie header
// it was fetched with has changed (Vary: Cookie does not stop it), so any
// max-age would keep serving the tracker to a browser that has just got the
// optout cookie; the revalidation is a request with no body either way.
const TrackerCacheControl = "public, no-cache"

// trackerAsset is the browser tracker, compressed for serving.
func trackerAsset() (*server.Asset, error) {
	const js = "text/javascript; charset=utf-8"
	f, err := asset.New("et.js", js, tracker.Script)
	if err != nil {
		return nil, err
	}
	out, err := asset.New("optout.js", js, tracker.OptedOut)
	if err != nil {
		return nil, err
	}
	return &server.Asset{Path: tracker.Path, File: f, OptedOut: out, CacheControl: TrackerCacheControl}, nil
}

// ReloadTLS reads the listeners' certificate files again (the binary does
// it on SIGHUP). New connections get the new certificates; a certificate
// that fails to load keeps its old one, and the error says which.
func (e *Edge) ReloadTLS() error { return e.certs.Reload() }

// TLS returns the listeners' certificates (nil entries are plain HTTP).
func (e *Edge) TLS() tlsconf.Set { return e.certs }

// minFree maps the setting (0 = off) to the spool's option (negative = off).
func minFree(b config.ByteSize) int64 {
	if b == 0 {
		return -1
	}
	return int64(b)
}

// Addr returns the public listener's address.
func (e *Edge) Addr() string { return e.ln.Addr().String() }

// AdminAddr returns the admin listener's address.
func (e *Edge) AdminAddr() string { return e.adminLn.Addr().String() }

// ID returns the edge's id, as written in its batches.
func (e *Edge) ID() string { return e.cfg.ID }

// Run serves until ctx is done, then stops in reverse order of start: the
// public server drains (new requests get 503, requests in flight finish,
// bounded by edge.shutdown_timeout), the forwarder stops (what it did not
// deliver stays in the spool for the next start), the spool syncs and
// closes, and the rules close.
func (e *Edge) Run(ctx context.Context) error {
	fwdCtx, stopFwd := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	errc := make(chan error, 5)
	wg.Add(5)
	go func() {
		defer wg.Done()
		if err := e.srv.Serve(e.ln); err != nil {
			errc <- fmt.Errorf("edge: serve: %w", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := e.admin.Serve(e.adminLn); err != nil {
			errc <- fmt.Errorf("edge: admin: %w", err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := e.fwd.Run(fwdCtx); err != nil {
			errc <- fmt.Errorf("edge: forwarder: %w", err)
		}
	}()
	go func() {
		defer wg.Done()
		_ = e.roll.Run(fwdCtx)
	}()
	go func() {
		defer wg.Done()
		e.supp.Run(fwdCtx)
	}()
	e.log.Info("edge running", "id", e.cfg.ID, "listen", e.Addr(), "admin", e.AdminAddr(), "aggregator", e.cfg.AggregatorURL,
		"max_in_flight", e.cfg.Limits.MaxInFlightFor(e.cfg.Rules.PoolSizeFor(runtime.GOMAXPROCS(0))))
	e.certs.Log(e.log, "serving HTTPS")

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	shutdown, cancel := context.WithTimeout(context.Background(), e.cfg.ShutdownTimeout.Duration())
	defer cancel()
	e.log.Info("stopping: draining public listener", "timeout", e.cfg.ShutdownTimeout.Duration())
	if err := e.srv.Shutdown(shutdown); err != nil {
		e.log.Warn("public listener did not drain in time", "err", err)
	}
	e.log.Info("stopping: admin listener")
	_ = e.admin.Shutdown(shutdown)
	// A Serve that had not started when its Shutdown ran would wait for
	// connections forever (fasthttp closes only the listeners it knows):
	// closing them ends it either way.
	_ = e.ln.Close()
	_ = e.adminLn.Close()
	e.log.Info("stopping: forwarder, rule rollout and suppression list")
	stopFwd()
	wg.Wait()
	e.log.Info("stopping: syncing spool")
	e.close(shutdown)
	e.log.Info("edge stopped")
	return runErr
}

func (e *Edge) close(ctx context.Context) {
	for name, slot := range e.slots {
		if m := slot.Load(); m != nil {
			if err := m.Close(ctx); err != nil {
				e.log.Warn("closing rule", "rule", name, "err", err)
			}
		}
	}
	if e.rt != nil {
		_ = e.rt.Close(ctx)
	}
	if e.spool != nil {
		if err := errors.Join(e.spool.Sync(), e.spool.Close()); err != nil {
			e.log.Error("closing spool", "err", err)
		}
	}
	for _, ln := range []net.Listener{e.ln, e.adminLn} {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

// Pending returns how many accepted events are not yet acknowledged by the
// aggregator (the spool's depth; dead letters not included).
func (e *Edge) Pending() int64 { return e.spool.Stats().Depth }
