// Package rollout keeps an edge's rules at the versions the aggregator has
// activated, and installs versions an operator hands the edge directly.
//
// A new version is built off the request path: it must compile and pass the
// same checks as an upload (wasm/host validation, the built-in vectors of the
// route), then it is loaded with the edge's own configuration and published
// with one atomic swap of the route's ruleslot.Slot. Requests in flight finish on
// the version they started with; the old version drains in the background
// and closes. A version that cannot be built is reported and the old one
// keeps serving. The manifest it follows and the status it reports are the
// registry API's types (internal/ruleapi).
package rollout

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgetrack/edgetrack/edge/internal/ruleslot"
	"github.com/edgetrack/edgetrack/internal/ruleapi"
	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/dist"
	"github.com/edgetrack/edgetrack/wasm/host"
	"github.com/edgetrack/edgetrack/wasm/vectors"
)

// Rule is one route's rule as the edge runs it.
type Rule struct {
	Slot   *ruleslot.Slot
	Config *abi.Config // the edge's settings for the rule
}

// Options configure a Rollout.
type Options struct {
	Runtime *host.Runtime
	Rules   map[string]Rule
	// URL is the aggregator's base URL; empty disables pulling.
	URL      string
	Token    string
	EdgeID   string
	PollWait time.Duration // long-poll wait; default 30s
	Client   *http.Client
	// TLS configures the default client's HTTPS (such as the CA it trusts);
	// nil means Go's defaults. Ignored with Client set.
	TLS *tls.Config
	// DrainTimeout bounds how long a retired version waits for its calls.
	DrainTimeout time.Duration
	Registerer   prometheus.Registerer
	Logger       *slog.Logger
}

// Rollout installs rule versions.
type Rollout struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics

	mu       sync.Mutex // serialises installs
	status   map[string]ruleapi.RuleStatus
	previous map[string][]byte // the version before the active one, per rule
	active   map[string][]byte
}

// New creates a Rollout. The rules' slots must already hold their first
// versions, whose bytes are given in initial.
func New(opts Options, initial map[string][]byte) (*Rollout, error) {
	if opts.Runtime == nil {
		return nil, errors.New("rollout: no runtime")
	}
	if opts.PollWait <= 0 {
		opts.PollWait = 30 * time.Second
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = time.Minute
	}
	if opts.Client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if opts.TLS != nil {
			tr.TLSClientConfig = opts.TLS.Clone()
		}
		opts.Client = &http.Client{Transport: tr, Timeout: opts.PollWait + 30*time.Second}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	r := &Rollout{opts: opts, log: opts.Logger, metrics: newMetrics(opts.Registerer),
		status: map[string]ruleapi.RuleStatus{}, previous: map[string][]byte{}, active: map[string][]byte{}}
	for name, rule := range opts.Rules {
		m := rule.Slot.Load()
		if m == nil {
			return nil, fmt.Errorf("rollout: rule %s has no active version", name)
		}
		r.status[name] = ruleapi.RuleStatus{Active: m.Hash()}
		r.active[name] = initial[name]
		r.metrics.active(name, m.Hash())
	}
	return r, nil
}

// ErrUnknownRule is returned for a rule name the edge does not serve.
var ErrUnknownRule = errors.New("rollout: unknown rule")

// Install builds wasm as the new version of rule name and publishes it. It
// returns an error, and leaves the active version serving, when the module
// is invalid, fails the route's built-in vectors or refuses the edge's
// configuration.
func (r *Rollout) Install(ctx context.Context, name string, wasm []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.install(ctx, name, wasm)
}

func (r *Rollout) install(ctx context.Context, name string, wasm []byte) error {
	rule, ok := r.opts.Rules[name]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownRule, name)
	}
	hash := host.Hash(wasm)
	if cur := rule.Slot.Load(); cur != nil && cur.Hash() == hash {
		return nil
	}
	start := time.Now()
	m, err := r.build(ctx, name, wasm, rule.Config)
	if err != nil {
		st := r.status[name]
		st.Failed, st.Error = hash, err.Error()
		r.status[name] = st
		r.metrics.swaps.WithLabelValues(name, "failed").Inc()
		r.log.Error("rule version refused; the active version keeps serving", "rule", name, "version", short(hash), "err", err)
		return err
	}
	old := rule.Slot.Swap(m)
	r.previous[name], r.active[name] = r.active[name], wasm
	r.status[name] = ruleapi.RuleStatus{Active: hash}
	r.metrics.swaps.WithLabelValues(name, "ok").Inc()
	r.metrics.active(name, hash)
	r.metrics.buildSeconds.Observe(time.Since(start).Seconds())
	if old == nil {
		return nil
	}
	r.log.Info("rule version active", "rule", name, "version", short(hash), "previous", short(old.Hash()))
	go func() {
		dctx, cancel := context.WithTimeout(context.Background(), r.opts.DrainTimeout)
		defer cancel()
		if err := old.Close(dctx); err != nil {
			r.log.Warn("retired rule version did not drain in time", "rule", name, "version", short(old.Hash()), "err", err)
		}
	}()
	return nil
}

// build validates wasm as the route's rule and loads it with cfg.
func (r *Rollout) build(ctx context.Context, name string, wasm []byte, cfg *abi.Config) (ruleslot.Rule, error) {
	if err := vectors.Run(ctx, r.opts.Runtime, name, wasm, dist.Vectors(name)...); err != nil {
		return nil, err
	}
	return r.opts.Runtime.Load(ctx, name, wasm, cfg)
}

// Rollback reinstalls the version that was active before the current one.
func (r *Rollout) Rollback(ctx context.Context, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := r.previous[name]
	if prev == nil {
		return fmt.Errorf("rollout: rule %s has no previous version", name)
	}
	return r.install(ctx, name, prev)
}

// Statuses returns the status of every rule, as the edge reports it.
func (r *Rollout) Statuses() map[string]ruleapi.RuleStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]ruleapi.RuleStatus, len(r.status))
	for k, v := range r.status {
		out[k] = v
	}
	return out
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// Run follows the aggregator's manifest until ctx ends: it long-polls for a
// new version, installs every rule whose active hash changed, and reports
// the edge's statuses.
func (r *Rollout) Run(ctx context.Context) error {
	if r.opts.URL == "" {
		return nil
	}
	var since int64 = -1
	backoff := time.Second
	for ctx.Err() == nil {
		m, changed, err := r.poll(ctx, since)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.metrics.polls.WithLabelValues("error").Inc()
			r.log.Warn("rule manifest poll failed; retrying", "err", err, "in", backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
			continue
		}
		backoff = time.Second
		if !changed {
			r.metrics.polls.WithLabelValues("unchanged").Inc()
			continue
		}
		r.metrics.polls.WithLabelValues("changed").Inc()
		r.apply(ctx, m)
		since = m.Version
		r.report(ctx)
	}
	return nil
}

func (r *Rollout) poll(ctx context.Context, since int64) (*ruleapi.Manifest, bool, error) {
	q := url.Values{}
	if since >= 0 {
		q.Set("since", strconv.FormatInt(since, 10))
		q.Set("wait", r.opts.PollWait.String())
	}
	resp, err := r.get(ctx, "/v1/rules/manifest?"+q.Encode())
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		return nil, false, nil
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, false, fmt.Errorf("manifest: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var m ruleapi.Manifest
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&m); err != nil {
		return nil, false, fmt.Errorf("manifest: %w", err)
	}
	return &m, true, nil
}

// apply installs every rule whose hash differs from the active one.
func (r *Rollout) apply(ctx context.Context, m *ruleapi.Manifest) {
	for name, want := range m.Rules {
		rule, ok := r.opts.Rules[name]
		if !ok || want.Hash == "" {
			continue
		}
		if cur := rule.Slot.Load(); cur != nil && cur.Hash() == want.Hash {
			continue
		}
		wasm, err := r.module(ctx, name, want.Hash)
		if err != nil {
			r.mu.Lock()
			st := r.status[name]
			st.Failed, st.Error = want.Hash, err.Error()
			r.status[name] = st
			r.mu.Unlock()
			r.metrics.swaps.WithLabelValues(name, "failed").Inc()
			r.log.Error("fetching rule version failed", "rule", name, "version", short(want.Hash), "err", err)
			continue
		}
		_ = r.Install(ctx, name, wasm) // logged and reported by Install
	}
}

// module returns the bytes of version hash: built in, or fetched and
// checked against its hash.
func (r *Rollout) module(ctx context.Context, name, hash string) ([]byte, error) {
	if b, ok := dist.Rule(name); ok && host.Hash(b) == hash {
		return b, nil
	}
	resp, err := r.get(ctx, "/v1/rules/modules/"+url.PathEscape(hash))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("module %s: %s", short(hash), resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if got := host.Hash(b); got != hash {
		return nil, fmt.Errorf("module %s: content hashes to %s", short(hash), short(got))
	}
	return b, nil
}

func (r *Rollout) get(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimRight(r.opts.URL, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+r.opts.Token)
	req.Header.Set("X-Edgetrack-Edge", r.opts.EdgeID)
	return r.opts.Client.Do(req)
}

// report tells the aggregator which versions the edge runs.
func (r *Rollout) report(ctx context.Context) {
	body, _ := json.Marshal(ruleapi.StatusReport{Edge: r.opts.EdgeID, Rules: r.Statuses()})
	req, err := http.NewRequestWithContext(ctx, "POST", strings.TrimRight(r.opts.URL, "/")+"/v1/rules/status", bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+r.opts.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.opts.Client.Do(req)
	if err != nil {
		r.log.Warn("reporting rule status failed", "err", err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}
