// Package suppression keeps the edge's copy of the aggregator's suppression
// list: the data subjects erased there (internal/subject, by hash), whose
// later events the edge drops with a 2xx instead of spooling them.
//
// The copy is followed by long-polling GET /v1/suppressions and written to
// <data_dir>/suppressions.json after every change (a temporary file, synced
// and renamed), so a restarted edge suppresses what it did before even while
// the aggregator is out of reach. The aggregator drops such events at ingest
// too, so an edge that has not seen an erasure yet loses nothing by it.
package suppression

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgetrack/edgetrack/internal/atomicfile"
	"github.com/edgetrack/edgetrack/internal/promreg"
	"github.com/edgetrack/edgetrack/internal/subject"
)

// Options configure Open.
type Options struct {
	// Path is the file the list is kept in.
	Path string
	// URL is the aggregator's base URL; empty follows nothing (the list in
	// Path, if any, still applies).
	URL      string
	Token    string
	EdgeID   string
	PollWait time.Duration // long-poll wait; default 30s
	// TLS configures HTTPS to the aggregator; nil means Go's defaults.
	TLS        *tls.Config
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// List is the edge's suppression list. It is safe for concurrent use.
type List struct {
	opts   Options
	client *http.Client
	log    *slog.Logger
	set    atomic.Pointer[subject.Set]
	list   atomic.Pointer[subject.List] // what set was made of

	subjects prometheus.Gauge
	polls    *prometheus.CounterVec
}

// Open loads the list kept in opts.Path, if there is one.
func Open(opts Options) (*List, error) {
	if opts.Path == "" {
		return nil, errors.New("suppression: Options.Path is empty")
	}
	if opts.PollWait <= 0 {
		opts.PollWait = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if opts.TLS != nil {
		tr.TLSClientConfig = opts.TLS.Clone()
	}
	l := &List{
		opts: opts, log: opts.Logger,
		client: &http.Client{Transport: tr, Timeout: opts.PollWait + 30*time.Second},
		subjects: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "edgetrack", Subsystem: "edge", Name: "suppressed_subjects",
			Help: "Subjects in the suppression list (erased at the aggregator) whose events the edge drops.",
		}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "edgetrack", Subsystem: "edge", Name: "suppression_polls_total",
			Help: "Long-polls of the aggregator's suppression list, by result: changed, unchanged, error.",
		}, []string{"result"}),
	}
	if opts.Registerer != nil {
		var err error
		if l.subjects, err = promreg.Register(opts.Registerer, l.subjects); err != nil {
			return nil, err
		}
		if l.polls, err = promreg.Register(opts.Registerer, l.polls); err != nil {
			return nil, err
		}
	}
	var kept subject.List
	switch b, err := os.ReadFile(opts.Path); {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("suppression: %w", err)
	default:
		if err := json.Unmarshal(b, &kept); err != nil {
			return nil, fmt.Errorf("suppression: %s: %w", opts.Path, err)
		}
	}
	l.use(kept)
	return l, nil
}

// Set returns the subjects whose events are dropped.
func (l *List) Set() *subject.Set { return l.set.Load() }

// Version is the version of the list held.
func (l *List) Version() uint64 { return l.held().Version }

func (l *List) held() subject.List { return *l.list.Load() }

func (l *List) use(list subject.List) {
	l.list.Store(&list)
	l.set.Store(subject.NewSet(list.Subjects))
	l.subjects.Set(float64(len(list.Subjects)))
}

// Run follows the aggregator's list until ctx ends.
func (l *List) Run(ctx context.Context) {
	if l.opts.URL == "" {
		return
	}
	first, backoff := true, time.Second
	unkept := false // the list held is not in Path yet
	for ctx.Err() == nil {
		list, changed, err := l.poll(ctx, first)
		if err == nil && changed {
			// In use before it is kept: once the file shows a version,
			// the edge drops by it.
			l.use(list)
			l.log.Info("suppression list updated", "version", list.Version, "subjects", len(list.Subjects))
			unkept = true
		}
		if unkept {
			if kerr := l.keep(l.held()); kerr != nil {
				l.log.Error("keeping the suppression list on disk failed; it applies until a restart", "err", kerr)
			} else {
				unkept = false
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.polls.WithLabelValues("error").Inc()
			l.log.Warn("suppression list poll failed; retrying", "err", err, "in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
			continue
		}
		first, backoff = false, time.Second
		if changed {
			l.polls.WithLabelValues("changed").Inc()
		} else {
			l.polls.WithLabelValues("unchanged").Inc()
		}
	}
}

// poll asks for the list: at once the first time, then a long-poll for a
// version after the one held.
func (l *List) poll(ctx context.Context, first bool) (subject.List, bool, error) {
	q := url.Values{}
	if !first {
		q.Set("after", strconv.FormatUint(l.Version(), 10))
		q.Set("wait", l.opts.PollWait.String())
	}
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimRight(l.opts.URL, "/")+"/v1/suppressions?"+q.Encode(), nil)
	if err != nil {
		return subject.List{}, false, err
	}
	req.Header.Set("Authorization", "Bearer "+l.opts.Token)
	req.Header.Set("X-Edgetrack-Edge", l.opts.EdgeID)
	resp, err := l.client.Do(req)
	if err != nil {
		return subject.List{}, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		return subject.List{}, false, nil
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return subject.List{}, false, fmt.Errorf("suppression list: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var list subject.List
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&list); err != nil {
		return subject.List{}, false, fmt.Errorf("suppression list: %w", err)
	}
	// A list of another version replaces the one held, also an older one
	// (an aggregator whose state was replaced counts anew).
	return list, first || list.Version != l.Version(), nil
}

// keep writes list to Path durably (internal/atomicfile).
func (l *List) keep(list subject.List) error {
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(l.opts.Path, b); err != nil {
		return fmt.Errorf("suppression: keeping the list: %w", err)
	}
	return nil
}
