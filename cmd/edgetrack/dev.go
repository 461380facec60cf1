package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/joho/godotenv"
	"github.com/spf13/cobra"

	"github.com/edgetrack/edgetrack/aggregator"
	"github.com/edgetrack/edgetrack/client"
	"github.com/edgetrack/edgetrack/edge"
	"github.com/edgetrack/edgetrack/internal/config"
)

// devSecretsFile keeps the tokens and secret dev generated, so a restart
// keeps them (and data sent before stays queryable with the same token).
const devSecretsFile = "dev-secrets.env"

func newDevCmd() *cobra.Command {
	var cfgPath, dataDir string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run an aggregator and an edge in one process, data under --data-dir",
		Long: `dev runs an aggregator (embedded Pebble store) and an edge with the built-in
rules in one process. Secrets and tokens not set in the configuration, .env or
.env.local are generated once and kept in <data-dir>/` + devSecretsFile + `.
Unlike edge and aggregator, dev listens on loopback only (127.0.0.1:8080 and
127.0.0.1:9090) unless edge.listen or aggregator.listen name another address,
such as 0.0.0.0:8080.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return configError(err)
			}
			if err := devDefaults(cfg, dataDir); err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return configError(err)
			}
			log := newLogger(cfg.Log)
			serverProcs(log)
			ctx, stop := signalContext()
			defer stop()

			agg, err := aggregator.New(aggregator.Options{Config: cfg.Aggregator, Logger: log.With("process", "aggregator")})
			if err != nil {
				return err
			}
			cfg.Edge.AggregatorURL = baseURL(agg.Addr(), cfg.Aggregator.TLS)
			e, err := edge.New(ctx, edge.Options{Config: cfg.Edge, Logger: log.With("process", "edge")})
			if err != nil {
				return errors.Join(err, agg.Run(canceled()))
			}
			reloadOnHangup(ctx, log, slices.Concat(e.TLS(), agg.TLS()))
			printBanner(cmd.OutOrStdout(), cfg, e, agg)

			// Stop the edge first (it drains into the aggregator's ingest),
			// then the aggregator.
			aggCtx, stopAgg := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			var aggErr error
			wg.Add(1)
			go func() { defer wg.Done(); aggErr = agg.Run(aggCtx) }()
			edgeErr := e.Run(ctx)
			stopAgg()
			wg.Wait()
			return errors.Join(edgeErr, aggErr)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "YAML configuration file (see edgetrack.example.yaml)")
	cmd.Flags().StringVar(&dataDir, "data-dir", "data/dev", "directory for both the edge's and the aggregator's data")
	return cmd
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// devDefaults points both data directories under dataDir and fills the
// secret and tokens that were not configured, from <dataDir>/dev-secrets.env
// or freshly generated.
//
// It also moves the public listeners to loopback when they are the
// production defaults (every interface): generated tokens and a development
// setup have no business on a network.
func devDefaults(cfg *config.Config, dataDir string) error {
	def := config.Default()
	if cfg.Edge.Listen == def.Edge.Listen {
		cfg.Edge.Listen = loopback(def.Edge.Listen)
	}
	if cfg.Aggregator.Listen == def.Aggregator.Listen {
		cfg.Aggregator.Listen = loopback(def.Aggregator.Listen)
	}
	// The edge sends to this aggregator; the port is known once it listens,
	// but the scheme now (validation checks edge.aggregator_ca_file by it).
	cfg.Edge.AggregatorURL = baseURL(cfg.Aggregator.Listen, cfg.Aggregator.TLS)
	cfg.Edge.DataDir = filepath.Join(dataDir, "edge")
	cfg.Aggregator.DataDir = filepath.Join(dataDir, "aggregator")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	path := filepath.Join(dataDir, devSecretsFile)
	saved, err := godotenv.Read(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("dev: %s: %w", path, err)
	}
	if saved == nil {
		saved = map[string]string{}
	}
	get := func(key string) string {
		if saved[key] == "" {
			saved[key] = randomToken()
		}
		return saved[key]
	}
	if len(cfg.Edge.Hamustro.Secrets) == 0 {
		cfg.Edge.Hamustro.Secrets = []string{get("HAMUSTRO_SECRET")}
	}
	if len(cfg.Aggregator.Tokens.Edge) == 0 {
		cfg.Aggregator.Tokens.Edge = []string{get("EDGE_TOKEN")}
	}
	if len(cfg.Aggregator.Tokens.Query) == 0 {
		cfg.Aggregator.Tokens.Query = []string{get("QUERY_TOKEN")}
	}
	if len(cfg.Aggregator.Tokens.Admin) == 0 {
		cfg.Aggregator.Tokens.Admin = []string{get("ADMIN_TOKEN")}
	}
	if len(cfg.Edge.AdminTokens) == 0 {
		cfg.Edge.AdminTokens = cfg.Aggregator.Tokens.Admin
	}
	if cfg.Edge.Token == "" {
		cfg.Edge.Token = cfg.Aggregator.Tokens.Edge[0]
	}
	if cfg.Edge.ID == "" {
		cfg.Edge.ID = "dev-edge"
	}
	return godotenv.Write(saved, path)
}

// loopback turns ":8080" into "127.0.0.1:8080".
func loopback(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return net.JoinHostPort("127.0.0.1", port)
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// dialable turns a listen address like [::]:9090 into one a client on this
// machine can dial.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// baseURL is the URL of a listener at addr: https when it has TLS. An
// https:// edge.aggregator_url to it is trusted through
// edge.aggregator_ca_file or the system's roots.
func baseURL(addr string, t config.TLS) string {
	if t.Enabled() {
		return "https://" + dialable(addr)
	}
	return "http://" + dialable(addr)
}

func printBanner(w io.Writer, cfg *config.Config, e *edge.Edge, agg *aggregator.Aggregator) {
	edgeURL := baseURL(e.Addr(), cfg.Edge.TLS)
	aggURL := baseURL(agg.Addr(), cfg.Aggregator.TLS)
	secret := cfg.Edge.Hamustro.Secrets[0]
	query := cfg.Aggregator.Tokens.Query[0]
	session := client.SessionID("demo-device", "demo-app", "1.0", "1.0")
	bin := "./bin/edgetrack"
	if exe, err := os.Executable(); err == nil {
		if rel, err := filepath.Rel(".", exe); err == nil && !strings.HasPrefix(rel, "..") {
			bin = "./" + rel
		}
	}
	fmt.Fprintf(w, `
edgetrack dev is running (Ctrl-C stops it; data in %s)

  edge         %s        POST /api/v1/track   (admin: %s)
  aggregator   %s        GET /events          (admin: %s)

  hamustro secret   %s
  query token       %s
  admin token       %s
  edge token        %s
  (kept in %s; set EDGETRACK_* or .env to choose your own)

Send a signed Hamustro batch:

  %s send --url %s --secret %s \
    --device-id demo-device --client-id demo-app --system-version 1.0 --product-version 1.0 \
    --event app_open --event screen_view

Query it back (the session of that device/app/versions is %s):

  curl -s -H 'Authorization: Bearer %s' '%s/events?session_id=%s'

Track a web page (docs/TRACKER.md), and look at it all in the dashboard
(log in with the query token):

  <script async src="%s/et.js"></script>
  %s/ui/

`, filepath.Dir(cfg.Edge.DataDir), edgeURL, baseURL(e.AdminAddr(), cfg.Edge.AdminTLS), aggURL, baseURL(agg.AdminAddr(), cfg.Aggregator.AdminTLS),
		secret, query, cfg.Aggregator.Tokens.Admin[0], cfg.Edge.Token,
		filepath.Join(filepath.Dir(cfg.Edge.DataDir), devSecretsFile),
		bin, edgeURL, secret, session, query, aggURL, session, edgeURL, aggURL)
}
