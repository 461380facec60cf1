package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/edgetrack/edgetrack/aggregator"
	"github.com/edgetrack/edgetrack/edge"
	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/internal/procs"
	"github.com/edgetrack/edgetrack/internal/tlsconf"
)

// loadConfig reads the YAML file (if any), .env and .env.local in the working
// directory, and EDGETRACK_* variables, in that order of precedence.
func loadConfig(path string) (*config.Config, error) {
	env, err := config.Environ(".", os.Environ())
	if err != nil {
		return nil, err
	}
	return config.Load(path, env)
}

func newLogger(c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(c.Format, "json") {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// signalContext is cancelled by SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// reloadOnHangup reads the listeners' certificates again on every SIGHUP
// until ctx ends (a renewed certificate takes effect without a restart). A
// process without TLS logs that there is nothing to reload; SIGHUP never
// stops it.
func reloadOnHangup(ctx context.Context, log *slog.Logger, certs tlsconf.Set) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			switch err := certs.Reload(); {
			case !certs.Enabled():
				log.Info("SIGHUP: no listener has TLS configured; nothing to reload")
			case err != nil:
				log.Error("SIGHUP: reloading TLS certificates failed; listeners keep the certificates they had", "err", err)
				certs.Log(log, "certificate in use")
			default:
				certs.Log(log, "SIGHUP: certificate reloaded")
			}
		}
	}()
}

// configError prints every configuration problem, one per line.
func configError(err error) error {
	return fmt.Errorf("invalid configuration:\n%w", err)
}

func newEdgeCmd() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "edge",
		Short: "Run an edge: accept events, run rules, spool, forward to the aggregator",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return configError(err)
			}
			if err := cfg.ValidateEdge(); err != nil {
				return configError(err)
			}
			log := newLogger(cfg.Log)
			serverProcs(log)
			ctx, stop := signalContext()
			defer stop()
			e, err := edge.New(ctx, edge.Options{Config: cfg.Edge, Logger: log})
			if err != nil {
				return err
			}
			reloadOnHangup(ctx, log, e.TLS())
			return e.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "YAML configuration file (see edgetrack.example.yaml)")
	return cmd
}

func newAggregatorCmd() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "aggregator",
		Short: "Run the aggregator: ingest from edges, store, serve queries",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return configError(err)
			}
			if err := cfg.ValidateAggregator(); err != nil {
				return configError(err)
			}
			log := newLogger(cfg.Log)
			serverProcs(log)
			ctx, stop := signalContext()
			defer stop()
			a, err := aggregator.New(aggregator.Options{Config: cfg.Aggregator, Logger: log})
			if err != nil {
				return err
			}
			reloadOnHangup(ctx, log, a.TLS())
			return a.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "YAML configuration file (see edgetrack.example.yaml)")
	return cmd
}

// serverProcs raises GOMAXPROCS for a server process (internal/procs: a
// blocking WAL fsync must not stop every request on a one-CPU machine).
func serverProcs(log *slog.Logger) {
	before := runtime.GOMAXPROCS(0)
	if n := procs.AtLeast(procs.ForSyncedWrites); n != before {
		log.Info("GOMAXPROCS raised so that requests run while the log syncs (set GOMAXPROCS to choose)", "from", before, "to", n)
	}
}
