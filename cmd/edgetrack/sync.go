package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/edgetrack/edgetrack/syncer"
)

type syncFlags struct {
	from, token, target, start, session, category, name, prefixes string
	once                                                          bool
	batch, maxAttempts                                            int
	secret, stateDir, metricsListen, logDir                       string
	wait                                                          time.Duration
}

func newSyncCmd() *cobra.Command {
	var f syncFlags
	cmd := &cobra.Command{
		Use:   "sync --from URL --token TOKEN --url TARGET",
		Short: "Stream stored events into PostgreSQL, MySQL/MariaDB, SQL Server or a webhook",
		Long: `sync follows the aggregator's change feed (GET /v1/export) and writes every
stored event into a target, resuming where it stopped:

  postgres://user:pass@host:5432/db?sslmode=disable
  mysql://user:pass@host:3306/db              (MySQL and MariaDB)
  sqlserver://user:pass@host:1433/instance/db
  http://… or https://…                       (a webhook)

SQL targets get the tables events, cookie_sync_matches and
edgetrack_sync_state (created or migrated at start); each batch of rows and
the cursor after it are written in one transaction, so a crash or a rerun
neither loses nor duplicates a row. A webhook gets POST {"events": [...]}
until it answers 2xx (retried with backoff, honouring Retry-After, up to
--max-attempts, with the same webhook-id every time); a batch that fails
every attempt is kept under --state-dir and "edgetrack sync replay" sends it
again. Without --once, sync follows the feed until interrupted.

Errors go to the console; a log of the run goes to /var/log/edgetrack/ or,
when that is not writable, to $HOME/.edgetrack/logs/.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSync(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.from, "from", "", "the aggregator's public URL, e.g. http://127.0.0.1:9090 (required)")
	fl.StringVar(&f.token, "token", os.Getenv("QUERY_TOKEN"), "a query token of the aggregator (default $QUERY_TOKEN)")
	fl.StringVar(&f.target, "url", "", "the target: postgres://, mysql://, sqlserver://, http:// or https:// (required)")
	fl.BoolVar(&f.once, "once", false, "sync what is stored now, then exit 0")
	fl.StringVar(&f.start, "start", "", "only events from this time on: 2018-02-01 or RFC 3339")
	fl.StringVar(&f.session, "session", "", "only events of this session")
	fl.StringVar(&f.category, "category", "", "only events of this category")
	fl.StringVar(&f.name, "name", "", "only events of this name")
	fl.StringVar(&f.prefixes, "name-prefix", "", "only events whose name starts with one of these comma-separated prefixes, e.g. 'fc_,qc_'")
	fl.IntVar(&f.batch, "batch", 1000, "events per read, per transaction and per webhook request (1 = one event per request; at most the aggregator's aggregator.query.max_page_size, 1000 by default)")
	fl.IntVar(&f.maxAttempts, "max-attempts", 10, "attempts at one webhook batch before it becomes a dead letter")
	fl.StringVar(&f.secret, "webhook-secret", "", "sign webhook requests with this Standard Webhooks secret (whsec_…)")
	fl.StringVar(&f.stateDir, "state-dir", defaultStateDir(), "the webhook's cursor and dead letters")
	fl.StringVar(&f.metricsListen, "metrics-listen", "", "serve Prometheus metrics at this address, e.g. 127.0.0.1:9102")
	fl.DurationVar(&f.wait, "wait", 30*time.Second, "how long one read of the feed waits for new events (at most 60s)")
	fl.StringVar(&f.logDir, "log-dir", "", "directory for the run's log file (default /var/log/edgetrack, else $HOME/.edgetrack/logs)")
	cmd.AddCommand(newSyncReplayCmd())
	return cmd
}

func defaultStateDir() string {
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".edgetrack", "sync")
	}
	return ".edgetrack-sync"
}

// syncLogger logs to the console from consoleLevel up and everything to a
// file of this run, in the first directory that can be written.
func syncLogger(console io.Writer, consoleLevel slog.Level, dir string) (*slog.Logger, func(), string) {
	dirs := []string{dir}
	if dir == "" {
		dirs = []string{"/var/log/edgetrack"}
		if home, err := os.UserHomeDir(); err == nil {
			dirs = append(dirs, filepath.Join(home, ".edgetrack", "logs"))
		}
	}
	consoleH := slog.NewTextHandler(console, &slog.HandlerOptions{Level: consoleLevel})
	name := "sync-" + time.Now().UTC().Format("20060102T150405Z") + fmt.Sprintf("-%d.log", os.Getpid())
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			continue
		}
		f, err := os.OpenFile(filepath.Join(d, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			continue
		}
		fileH := slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo})
		return slog.New(teeHandler{consoleH, fileH}), func() { f.Close() }, f.Name()
	}
	return slog.New(consoleH), func() {}, ""
}

// teeHandler sends records to two handlers, each filtering by its level.
type teeHandler struct{ a, b slog.Handler }

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return t.a.Enabled(ctx, l) || t.b.Enabled(ctx, l)
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, h := range []slog.Handler{t.a, t.b} {
		if h.Enabled(ctx, r.Level) {
			errs = append(errs, h.Handle(ctx, r.Clone()))
		}
	}
	return errors.Join(errs...)
}

func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return teeHandler{t.a.WithAttrs(as), t.b.WithAttrs(as)}
}

func (t teeHandler) WithGroup(n string) slog.Handler {
	return teeHandler{t.a.WithGroup(n), t.b.WithGroup(n)}
}

func (f syncFlags) options(log *slog.Logger) (syncer.Options, error) {
	o := syncer.Options{
		From: f.from, Token: f.token, Target: f.target, Once: f.once, Batch: f.batch, Wait: f.wait,
		MaxAttempts: f.maxAttempts, WebhookSecret: f.secret, StateDir: f.stateDir, Logger: log,
		Filters: syncer.Filters{Session: f.session, Category: f.category, Name: f.name},
	}
	switch {
	case f.from == "":
		return o, errors.New("--from is required: the aggregator's public URL")
	case f.token == "":
		return o, errors.New("--token is required: a query token of the aggregator (or set QUERY_TOKEN)")
	case f.target == "":
		return o, errors.New("--url is required: postgres://, mysql://, sqlserver://, http:// or https://")
	case f.batch < 1 || f.batch > 10000:
		return o, fmt.Errorf("--batch %d is not between 1 and 10000", f.batch)
	case f.maxAttempts < 1:
		return o, fmt.Errorf("--max-attempts %d must be at least 1", f.maxAttempts)
	case f.wait <= 0 || f.wait > time.Minute:
		return o, fmt.Errorf("--wait %s is not between 1ns and 1m", f.wait)
	}
	if f.start != "" {
		t, err := time.Parse(time.RFC3339Nano, f.start)
		if err != nil {
			if t, err = time.ParseInLocation(time.DateOnly, f.start, time.UTC); err != nil {
				return o, fmt.Errorf("--start %q is not a date (2018-02-01) or an RFC 3339 time", f.start)
			}
		}
		o.Filters.Start = t
	}
	for _, p := range strings.Split(f.prefixes, ",") {
		if p = strings.TrimSpace(p); p != "" {
			o.Filters.NamePrefixes = append(o.Filters.NamePrefixes, p)
		}
	}
	return o, nil
}

func runSync(cmd *cobra.Command, f syncFlags) error {
	// With --once on a terminal a progress bar shows how far it is and the
	// console gets only warnings and errors; otherwise the periodic
	// progress lines go to the console too.
	stderr := cmd.ErrOrStderr()
	tty := false
	if file, ok := stderr.(*os.File); ok {
		tty = term.IsTerminal(int(file.Fd()))
	}
	showBar := f.once && tty
	level := slog.LevelInfo
	if showBar {
		level = slog.LevelWarn
	}
	log, closeLog, logFile := syncLogger(stderr, level, f.logDir)
	defer closeLog()
	o, err := f.options(log)
	if err != nil {
		return err
	}
	if showBar {
		bar := progressBar(stderr)
		o.OnProgress = bar
		defer bar(syncer.Progress{Final: true}) // an error: Run's own final call did not come
	}
	ctx, stop := signalContext()
	defer stop()
	if f.metricsListen != "" {
		reg := prometheus.NewRegistry()
		o.Registerer = reg
		ln, err := net.Listen("tcp", f.metricsListen)
		if err != nil {
			return fmt.Errorf("--metrics-listen %s: %w", f.metricsListen, err)
		}
		srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
	}
	t, err := syncer.Open(ctx, o)
	if err != nil {
		return err
	}
	defer t.Close()
	log.Info("sync started", "from", o.From, "target", redactURL(o.Target), "once", o.Once, "log", logFile)
	st, err := syncer.Run(ctx, o, t)
	if err != nil {
		return fmt.Errorf("sync: %w (%d events written before)", err, st.Events)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "synced %d events in %d batches\n", st.Events, st.Batches)
	return nil
}

func newSyncReplayCmd() *cobra.Command {
	var target, secret, stateDir string
	var maxAttempts int
	cmd := &cobra.Command{
		Use:   "replay --url WEBHOOK",
		Short: "Send the webhook batches kept as dead letters again",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, closeLog, _ := syncLogger(cmd.ErrOrStderr(), slog.LevelInfo, "")
			defer closeLog()
			t, err := syncer.OpenWebhook(syncer.WebhookOptions{URL: target, Secret: secret, StateDir: stateDir, MaxAttempts: maxAttempts, Logger: log}, "replay")
			if err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			delivered, remaining, err := t.Replay(ctx)
			fmt.Fprintf(cmd.OutOrStdout(), "replayed %d dead letters, %d remain\n", delivered, remaining)
			if err == nil && remaining > 0 {
				err = fmt.Errorf("%d dead letters were refused again; they stay in %s", remaining, filepath.Join(stateDir, "deadletters"))
			}
			return err
		},
	}
	cmd.Flags().StringVar(&target, "url", "", "the webhook (required)")
	cmd.Flags().StringVar(&secret, "webhook-secret", "", "sign the requests with this Standard Webhooks secret")
	cmd.Flags().StringVar(&stateDir, "state-dir", defaultStateDir(), "where the dead letters are")
	cmd.Flags().IntVar(&maxAttempts, "max-attempts", 10, "attempts per dead letter")
	return cmd
}

// progressBar draws a sync's progress on a terminal: how far through the
// events stored when it began (by received_at), events, rate and lag.
func progressBar(w io.Writer) func(syncer.Progress) {
	const steps = 1000
	bar := progressbar.NewOptions(steps, progressbar.OptionSetWriter(w), progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(false), progressbar.OptionShowDescriptionAtLineEnd())
	finished := false
	return func(p syncer.Progress) {
		if finished {
			return
		}
		if p.Final {
			finished = true
			if p.Done == 1 {
				bar.Finish()
			} else {
				bar.Exit() // stopped short: leave the bar where it was
			}
			fmt.Fprintln(w)
			return
		}
		bar.Describe(fmt.Sprintf("%d events, %.0f/s, lag %s", p.Events, p.PerSecond, p.Lag.Round(time.Second)))
		bar.Set(int(p.Done * steps))
	}
}

func redactURL(s string) string { return syncer.Redact(s) }
