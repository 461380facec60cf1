package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Target is where events go. Write stores a batch and the cursor after it
// (see the package doc for how each target keeps them together).
//
// Erase deletes the events of one erasure at the aggregator and stores its
// number as the erasure cursor (ErasureCursor) the same way.
type Target interface {
	Cursor() string
	Write(ctx context.Context, events []Event, next string) error
	ErasureCursor() uint64
	Erase(ctx context.Context, e Erasure) error
	Close() error
}

// Options configure a sync.
type Options struct {
	From, Token string // the aggregator's public URL and a query token
	Target      string // postgres://, mysql://, sqlserver://, http:// or https://
	Filters     Filters
	Once        bool // sync what there is now, then return
	Batch       int  // events per read and per write (default 1000)
	// Wait is how long one read of the feed waits for new events when
	// following it (default 30s, at most 60s).
	Wait time.Duration
	// MaxAttempts bounds the attempts at one webhook batch (default 10)
	// and, with Once, at one read of the feed.
	MaxAttempts   int
	WebhookSecret string
	StateDir      string // the webhook's cursor and dead letters
	// ProgressEvery is how often a progress line is logged (default 10s).
	ProgressEvery time.Duration
	// OnProgress, if set, is called after every batch and once at the end
	// (e.g. to draw a progress bar).
	OnProgress func(Progress)
	Client     *http.Client
	Registerer prometheus.Registerer // edgetrack_sync_* metrics; nil = none
	Logger     *slog.Logger
}

func (o *Options) defaults() {
	if o.Batch <= 0 {
		o.Batch = 1000
	}
	if o.Wait <= 0 {
		o.Wait = 30 * time.Second
	}
	o.Wait = min(o.Wait, 60*time.Second)
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 10 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Wait + 30*time.Second}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Open checks the options and opens the target: a bad URL, a database that
// refuses the login or a webhook URL that is not http(s) fail here, before
// anything is written.
func Open(ctx context.Context, o Options) (Target, error) {
	o.defaults()
	if u, err := url.Parse(o.From); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--from %q is not the aggregator's http(s) URL", o.From)
	}
	feed := FeedKey(o.From, o.Filters)
	u, err := url.Parse(o.Target)
	if err != nil {
		return nil, fmt.Errorf("--url %q is not a URL", redact(o.Target))
	}
	if u.Scheme == "http" || u.Scheme == "https" {
		return OpenWebhook(WebhookOptions{URL: o.Target, Secret: o.WebhookSecret, StateDir: o.StateDir,
			MaxAttempts: o.MaxAttempts, Logger: o.Logger}, feed)
	}
	return OpenSQL(ctx, o.Target, feed)
}

// Stats is what a sync did.
type Stats struct {
	Events  int       // events written
	Batches int       // writes
	Last    time.Time // received_at of the last event written
	// Erasures applied, and the events they deleted from the target.
	Erasures, Erased int
}

// Progress is where a sync stands.
type Progress struct {
	Events    int           // written so far
	PerSecond float64       // since the run began
	Lag       time.Duration // age (by received_at) of the last event written; 0 before any
	// Done is how far the run has come through the events stored before it
	// began, by received_at: 0 at the first event it wrote, 1 at the run's
	// start time (with Once, the end).
	Done  float64
	Final bool // the run has ended
}

// Run follows the feed into t until ctx ends (nil error) or, with o.Once,
// until the feed has nothing more (nil error). Feed and target failures
// that may pass are retried with backoff; a refused token or cursor, and a
// target failing with ErrCursorMoved, end it with the error.
func Run(ctx context.Context, o Options, t Target) (Stats, error) {
	o.defaults()
	feed := &Feed{From: o.From, Token: o.Token, Filters: o.Filters, Client: o.Client}
	m := newMetrics(o.Registerer)
	var st Stats
	began, lastLine, lastCount := time.Now(), time.Now(), 0
	var first time.Time // received_at of the first event written
	progress := func(final bool) {
		now := time.Now()
		if o.OnProgress != nil {
			p := Progress{Events: st.Events, PerSecond: float64(st.Events) / now.Sub(began).Seconds(), Final: final}
			if !st.Last.IsZero() {
				p.Lag = now.Sub(st.Last)
				if span := began.Sub(first); span > 0 {
					p.Done = min(1, max(0, float64(st.Last.Sub(first))/float64(span)))
				} else {
					p.Done = 1
				}
			}
			if final && o.Once {
				p.Done = 1 // everything there was is written
			}
			o.OnProgress(p)
		}
		if !final && now.Sub(lastLine) < o.ProgressEvery {
			return
		}
		rate := float64(st.Events-lastCount) / now.Sub(lastLine).Seconds()
		attrs := []any{"events", st.Events, "per_second", int(rate), "running_for", now.Sub(began).Round(time.Second)}
		if !st.Last.IsZero() {
			attrs = append(attrs, "lag", now.Sub(st.Last).Round(time.Second))
		}
		msg := "sync progress"
		if final {
			msg = "sync done"
		}
		o.Logger.Info(msg, attrs...)
		lastLine, lastCount = now, st.Events
	}
	// Erasures at the aggregator are applied after the batches written (at
	// most once a second), after every long-poll that brought no events, and
	// at the end: whatever order events and erasures arrive in, an erased
	// event written to the target is deleted by the next application.
	erasures := func() error {
		for {
			p, err := feed.Erasures(ctx, t.ErasureCursor(), 100)
			if err != nil {
				return err
			}
			for _, e := range p.Erasures {
				if err := t.Erase(ctx, e); err != nil {
					return fmt.Errorf("applying erasure %d: %w", e.Seq, err)
				}
				st.Erasures++
				st.Erased += len(e.IDs)
				m.erased.Add(float64(len(e.IDs)))
			}
			if p.Next > t.ErasureCursor() { // erasures that removed nothing
				if err := t.Erase(ctx, Erasure{Seq: p.Next}); err != nil {
					return fmt.Errorf("moving the erasure cursor to %d: %w", p.Next, err)
				}
			}
			if len(p.Erasures) < 100 {
				return nil
			}
		}
	}
	var lastErasures time.Time
	applyErasures := func() error {
		lastErasures = time.Now()
		for attempt := 1; ; attempt++ {
			err := erasures()
			if err == nil || ctx.Err() != nil {
				return nil
			}
			var fe *FeedError
			if errors.As(err, &fe) || errors.Is(err, ErrCursorMoved) {
				return fmt.Errorf("erasures: %w", err)
			}
			m.errors.WithLabelValues("erasures").Inc()
			if !o.Once {
				o.Logger.Warn("applying erasures failed; trying again after the next batch", "err", err)
				return nil
			}
			if attempt >= o.MaxAttempts {
				return fmt.Errorf("erasures, after %d attempts: %w", attempt, err)
			}
			if !sleep(ctx, backoff(500*time.Millisecond, 30*time.Second, attempt)) {
				return nil
			}
		}
	}

	// The next page is read while the current one is written.
	type fetched struct {
		page Page
		tick bool // a long-poll without news: only erasures to apply
		err  error
	}
	pages := make(chan fetched, 1)
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	go func() {
		defer close(pages)
		wait := o.Wait
		if o.Once {
			wait = 0
		}
		after, failures := t.Cursor(), 0
		for readCtx.Err() == nil {
			page, err := feed.Read(readCtx, after, o.Batch, wait)
			if err != nil {
				if readCtx.Err() != nil {
					return // stopped: what was written stays written
				}
				var fe *FeedError
				failures++
				m.errors.WithLabelValues("feed").Inc()
				if errors.As(err, &fe) || (o.Once && failures >= o.MaxAttempts) {
					if !errors.As(err, &fe) {
						err = fmt.Errorf("after %d attempts: %w", failures, err)
					}
					pages <- fetched{err: err}
					return
				}
				o.Logger.Warn("reading the feed failed; retrying", "attempt", failures, "err", err)
				if !sleep(readCtx, backoff(500*time.Millisecond, 30*time.Second, failures)) {
					return
				}
				continue
			}
			failures = 0
			if len(page.Events) == 0 && page.Next == after {
				if o.Once {
					return
				}
				// A long-poll that ended without news.
				select {
				case pages <- fetched{tick: true}:
				case <-readCtx.Done():
					return
				}
				continue
			}
			select {
			case pages <- fetched{page: page}:
			case <-readCtx.Done():
				return
			}
			after = page.Next
		}
	}()
	for f := range pages {
		if f.err != nil {
			return st, f.err
		}
		if f.tick {
			if err := applyErasures(); err != nil {
				return st, err
			}
			continue
		}
		page := f.page
		for attempt := 1; ; attempt++ {
			err := t.Write(ctx, page.Events, page.Next)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return st, nil
			}
			m.errors.WithLabelValues("target").Inc()
			if errors.Is(err, ErrCursorMoved) || (o.Once && attempt >= o.MaxAttempts) {
				return st, fmt.Errorf("writing to the target: %w", err)
			}
			o.Logger.Warn("writing to the target failed; retrying", "attempt", attempt, "err", err)
			if !sleep(ctx, backoff(500*time.Millisecond, 30*time.Second, attempt)) {
				return st, nil
			}
		}
		st.Batches++
		st.Events += len(page.Events)
		m.events.Add(float64(len(page.Events)))
		m.batches.Inc()
		if n := len(page.Events); n > 0 {
			if first.IsZero() {
				first, _ = parseTime("received_at", page.Events[0].ReceivedAt)
			}
			if r, err := parseTime("received_at", page.Events[n-1].ReceivedAt); err == nil {
				st.Last = r
				m.lag.Set(time.Since(r).Seconds())
			}
		}
		if time.Since(lastErasures) >= time.Second { // at most once a second under load
			if err := applyErasures(); err != nil {
				return st, err
			}
		}
		progress(false)
	}
	if ctx.Err() == nil {
		if err := applyErasures(); err != nil { // the feed was empty, or Once ended
			return st, err
		}
	}
	progress(true)
	return st, nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

type metrics struct {
	events, batches, erased prometheus.Counter
	errors                  *prometheus.CounterVec
	lag                     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events:  prometheus.NewCounter(prometheus.CounterOpts{Name: "edgetrack_sync_events_total", Help: "Events written to the target."}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{Name: "edgetrack_sync_batches_total", Help: "Batches written to the target."}),
		errors:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "edgetrack_sync_errors_total", Help: "Failed reads of the feed and writes to the target, retried."}, []string{"side"}),
		lag:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "edgetrack_sync_lag_seconds", Help: "Age (by received_at) of the last event written."}),
		erased:  prometheus.NewCounter(prometheus.CounterOpts{Name: "edgetrack_sync_erased_events_total", Help: "Events deleted from the target because they were erased at the aggregator."}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.batches, m.errors, m.lag, m.erased)
	}
	return m
}
