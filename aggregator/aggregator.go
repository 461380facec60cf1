// Package aggregator is the central server of edgetrack: edges forward
// batches of events to it, it stores them exactly once, and analysts query
// them.
//
// This package only wires: [New] validates the configuration, opens the store,
// builds the HTTP handlers and binds the listeners; [Aggregator.Run] serves
// until its context is done and then stops in reverse order, logging each
// step; it also runs the retention passes (aggregator.retention). The pieces
// live in internal/: store (events on Pebble or ClickHouse), server
// (routes, auth, the error→status boundary), ingest (the batch wire format),
// query (the JSON view of events), auth (bearer tokens) and registry (rule
// versions that edges follow).
package aggregator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/edgetrack/edgetrack/aggregator/internal/erasure"
	"github.com/edgetrack/edgetrack/aggregator/internal/registry"
	"github.com/edgetrack/edgetrack/aggregator/internal/server"
	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/aggregator/internal/store/clickhouse"
	"github.com/edgetrack/edgetrack/aggregator/internal/store/pebble"
	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/internal/tlsconf"
)

// ShutdownTimeout bounds the graceful part of stopping: requests in flight
// get this long to finish before their connections are closed.
const ShutdownTimeout = 10 * time.Second

// Options configure an Aggregator.
type Options struct {
	Config config.Aggregator
	// Registerer receives the aggregator's metrics. nil means a new
	// registry with the Go and process collectors, served at /metrics. A
	// Registerer that is also a prometheus.Gatherer (a *prometheus.Registry)
	// is served at /metrics as it is; any other is not served.
	Registerer prometheus.Registerer
	Logger     *slog.Logger // nil means slog.Default()
}

// Aggregator is a configured aggregator with its store open and its listeners
// bound.
type Aggregator struct {
	log           *slog.Logger
	store         store.Store
	rules         *registry.Registry
	erasures      *erasure.Erasures
	srv           *server.Server
	public, admin *http.Server
	publicLn      net.Listener
	adminLn       net.Listener
	certs         tlsconf.Set // the listeners' certificates, for ReloadTLS
	retain        *retainer

	running   atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// New validates opts.Config, opens the store and the rule registry (in
// Config.DataDir, or the ClickHouse database Config.Store names) and binds both
// listeners, so that Addr and AdminAddr are known (also for port 0) before
// Run. On error, nothing is left open.
func New(opts Options) (_ *Aggregator, err error) {
	cfg := opts.Config
	if err := (&config.Config{Log: config.Default().Log, Aggregator: cfg}).ValidateAggregator(); err != nil {
		return nil, fmt.Errorf("aggregator: invalid configuration:\n%w", err)
	}
	base := opts.Logger
	if base == nil {
		base = slog.Default()
	}
	log := base.With("component", "aggregator")

	reg, gatherer := opts.Registerer, prometheus.Gatherer(nil)
	if reg == nil {
		r := prometheus.NewRegistry()
		r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		reg, gatherer = r, r
	} else if g, ok := reg.(prometheus.Gatherer); ok {
		gatherer = g
	}

	// Undo what was done so far when a later step fails.
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()

	st, err := openStore(cfg, reg, base.With("component", "store"))
	if err != nil {
		return nil, fmt.Errorf("aggregator: %w", err)
	}
	undo = append(undo, func() {
		if cerr := st.Close(); cerr != nil {
			log.Error("closing the store", "error", cerr)
		}
	})

	erasureOpts := erasure.Options{
		Dir:                filepath.Join(cfg.DataDir, "erasure"),
		Store:              st,
		TombstoneRetention: cfg.Erasure.TombstoneRetention.Duration(),
		Registerer:         reg,
		Logger:             base.With("component", "erasure"),
	}
	sharedDSN := "" // where the registry and the erasure state live with ClickHouse
	if cfg.Store.Backend == config.BackendClickHouse {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		sharedDSN, err = clickhouse.SharedDSN(ctx, cfg.Store.ClickHouse.DSN, cfg.Store.ClickHouse.Cluster)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("aggregator: store: clickhouse: %w", err)
		}
		// Every aggregator on the database suppresses every erased subject.
		erasureOpts.ClickHouseDSN = sharedDSN
	}
	erasures, err := erasure.Open(erasureOpts)
	if err != nil {
		return nil, fmt.Errorf("aggregator: %w", err)
	}
	undo = append(undo, func() { _ = erasures.Close() })

	retain, err := newRetainer(cfg.Retention, st, reg, base.With("component", "retention"))
	if err != nil {
		return nil, fmt.Errorf("aggregator: %w", err)
	}

	rulesOpts := registry.Options{
		Dir:        filepath.Join(cfg.DataDir, "rules"),
		Registerer: reg,
		Logger:     base.With("component", "registry"),
	}
	if cfg.Store.Backend == config.BackendClickHouse {
		// Every aggregator on the database serves one registry.
		rulesOpts.ClickHouseDSN = sharedDSN
	}
	rules, err := registry.Open(context.Background(), rulesOpts)
	if err != nil {
		return nil, fmt.Errorf("aggregator: %w", err)
	}
	undo = append(undo, func() {
		if cerr := rules.Close(); cerr != nil {
			log.Error("closing the rule registry", "error", cerr)
		}
	})

	srv, err := server.New(server.Config{
		Store:         st,
		Rules:         rules,
		Erasures:      erasures,
		Tokens:        cfg.Tokens,
		MaxBatchBytes: int64(cfg.MaxBatchBytes),
		MaxPageSize:   cfg.Query.MaxPageSize,
		Registerer:    reg,
		Gatherer:      gatherer,
		Logger:        base.With("component", "server"),
	})
	if err != nil {
		return nil, fmt.Errorf("aggregator: %w", err)
	}
	undo = append(undo, srv.Close)

	publicCert, err := tlsconf.ForListener("aggregator.tls", cfg.TLS)
	if err != nil {
		return nil, fmt.Errorf("aggregator: %w", err)
	}
	adminCert, err := tlsconf.ForListener("aggregator.admin_tls", cfg.AdminTLS)
	if err != nil {
		return nil, fmt.Errorf("aggregator: %w", err)
	}
	publicLn, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("aggregator: listen on %s (aggregator.listen): %w", cfg.Listen, err)
	}
	undo = append(undo, func() { publicLn.Close() })
	adminLn, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		return nil, fmt.Errorf("aggregator: listen on %s (aggregator.admin_listen): %w", cfg.AdminListen, err)
	}
	publicLn = publicCert.Listener(publicLn, "h2", "http/1.1")
	adminLn = adminCert.Listener(adminLn, "h2", "http/1.1")

	return &Aggregator{
		log:      log,
		store:    st,
		rules:    rules,
		erasures: erasures,
		srv:      srv,
		public:   server.NewHTTPServer(srv.Public(), base.With("component", "http", "listener", "public")),
		admin:    server.NewHTTPServer(srv.Admin(), base.With("component", "http", "listener", "admin")),
		publicLn: publicLn,
		adminLn:  adminLn,
		certs:    tlsconf.Set{publicCert, adminCert},
		retain:   retain,
	}, nil
}

// eventStore is what the aggregator needs of a store backend: the store,
// which erases subjects (erasure requests are no option). Retention
// (store.Expirer) stays optional, as package store has it.
type eventStore interface {
	store.Store
	store.Eraser
}

// openStore opens the store backend cfg.Store.Backend names: Pebble in
// cfg.DataDir, or the ClickHouse database of cfg.Store.ClickHouse.DSN (on
// its cluster, when it names one).
func openStore(cfg config.Aggregator, reg prometheus.Registerer, log *slog.Logger) (eventStore, error) {
	switch cfg.Store.Backend {
	case config.BackendClickHouse:
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ch := cfg.Store.ClickHouse
		return clickhouse.Open(ctx, clickhouse.Options{
			DSN: ch.DSN, Cluster: ch.Cluster, AckReplicas: ch.AckReplicas,
			WriterTimeout: time.Duration(ch.WriterTimeout), Registerer: reg, Logger: log,
		})
	case config.BackendPebble, "":
		return pebble.Open(pebble.Options{Dir: cfg.DataDir, CacheSize: int64(cfg.Store.CacheSize), Registerer: reg, Logger: log})
	}
	return nil, fmt.Errorf("unknown store backend %q", cfg.Store.Backend)
}

// ReloadTLS reads the listeners' certificate files again (the binary does
// it on SIGHUP). New connections get the new certificates; a certificate
// that fails to load keeps its old one, and the error says which.
func (a *Aggregator) ReloadTLS() error { return a.certs.Reload() }

// TLS returns the listeners' certificates (nil entries are plain HTTP).
func (a *Aggregator) TLS() tlsconf.Set { return a.certs }

// Addr is the address of the public listener (ingest, queries), such as
// 127.0.0.1:41234.
func (a *Aggregator) Addr() string { return a.publicLn.Addr().String() }

// AdminAddr is the address of the admin listener.
func (a *Aggregator) AdminAddr() string { return a.adminLn.Addr().String() }

// Run serves until ctx is done or a listener fails, then shuts down: it
// stops accepting, gives requests in flight up to ShutdownTimeout to finish,
// and closes the store. It returns nil after a stop by ctx, else what went
// wrong. Run may be called once.
func (a *Aggregator) Run(ctx context.Context) error {
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("aggregator: Run called twice")
	}
	serveErrs := make(chan error, 2)
	var serving sync.WaitGroup
	for _, l := range []struct {
		name string
		srv  *http.Server
		ln   net.Listener
	}{{"public", a.public, a.publicLn}, {"admin", a.admin, a.adminLn}} {
		serving.Go(func() {
			if err := l.srv.Serve(l.ln); !errors.Is(err, http.ErrServerClosed) {
				serveErrs <- fmt.Errorf("aggregator: serving the %s listener: %w", l.name, err)
			}
		})
	}
	sweepCtx, stopSweep := context.WithCancel(ctx)
	defer stopSweep()
	go a.erasures.Run(sweepCtx)
	retainCtx, stopRetain := context.WithCancel(context.WithoutCancel(ctx))
	var retaining sync.WaitGroup
	retaining.Go(func() { a.retain.run(retainCtx) })
	a.log.Info("aggregator serving", "addr", a.Addr(), "admin_addr", a.AdminAddr())
	a.certs.Log(a.log, "serving HTTPS")

	var runErr error
	select {
	case <-ctx.Done():
		a.log.Info("stopping", "cause", context.Cause(ctx))
	case runErr = <-serveErrs:
		a.log.Error("stopping after a listener failed", "error", runErr)
	}

	// Reverse order of start: stop taking traffic, then the admin listener
	// (metrics stay scrapable while the public one drains), then the store.
	a.srv.Drain()
	a.rules.Drain() // manifest long-polls answer now instead of holding up shutdown
	a.erasures.Drain()
	stopRetain() // a pass in progress stops after its current batch
	retaining.Wait()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	errs := []error{runErr}
	errs = append(errs, a.shutdown(shutdownCtx, "public", a.public))
	errs = append(errs, a.shutdown(shutdownCtx, "admin", a.admin))
	serving.Wait()
	errs = append(errs, a.close())
	a.log.Info("aggregator stopped")
	return errors.Join(errs...)
}

// shutdown stops srv gracefully, or forcibly once ctx is done.
func (a *Aggregator) shutdown(ctx context.Context, name string, srv *http.Server) error {
	a.log.Info("shutting down listener", "listener", name)
	err := srv.Shutdown(ctx)
	if err == nil {
		a.log.Info("listener stopped", "listener", name)
		return nil
	}
	a.log.Error("graceful shutdown incomplete; closing connections", "listener", name, "error", err)
	if cerr := srv.Close(); cerr != nil {
		a.log.Error("closing listener", "listener", name, "error", cerr)
	}
	return fmt.Errorf("aggregator: shutting down the %s listener: %w", name, err)
}

// Close releases what New acquired, for a caller that does not call Run
// (Run releases everything itself). It must not be called while Run runs.
func (a *Aggregator) Close() error {
	if !a.running.Load() {
		a.publicLn.Close()
		a.adminLn.Close()
	}
	return a.close()
}

// close releases the server and the store, once.
func (a *Aggregator) close() error {
	a.closeOnce.Do(func() {
		a.srv.Close()
		if err := a.rules.Close(); err != nil {
			a.log.Error("closing the rule registry", "error", err)
		}
		if err := a.erasures.Close(); err != nil {
			a.log.Error("closing the erasure log", "error", err)
		}
		a.log.Info("closing the store")
		if err := a.store.Close(); err != nil {
			a.closeErr = fmt.Errorf("aggregator: %w", err)
			a.log.Error("closing the store", "error", err)
		}
	})
	return a.closeErr
}
