package forward

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgetrack/edgetrack/edge/internal/spool"
)

// IngestPath is appended to Options.URL to form the ingest endpoint.
const IngestPath = "/v1/ingest"

// Defaults for zero Options fields.
const (
	DefaultBatchMaxEvents = 10000
	DefaultBatchMaxBytes  = 4 << 20
	DefaultBatchMaxAge    = 200 * time.Millisecond
	DefaultRequestTimeout = 10 * time.Second
	DefaultBackoffMin     = 100 * time.Millisecond
	DefaultBackoffMax     = 30 * time.Second
)

// Options configure New. Zero values mean the defaults above.
type Options struct {
	// Spool is read, acked and dead-lettered; required.
	Spool *spool.Spool
	// URL is the aggregator's base URL, e.g. http://127.0.0.1:9090; batches
	// go to URL + "/v1/ingest". Required. Several aggregators (on one
	// store, such as a ClickHouse database) are several URLs separated by
	// commas: batches go to one of them until an attempt fails in a way that
	// is retried, and the retry goes to the next (see Forwarder.failover).
	URL string
	// Token is the edge token, sent as "Authorization: Bearer <token>".
	// Required.
	Token string
	// EdgeID is written into every Batch and the X-Edgetrack-Edge header.
	// Required.
	EdgeID string
	// BatchMaxEvents bounds the events of one batch. Larger batches cost
	// fewer requests; the aggregator holds a whole batch in memory. One
	// batch is in flight at a time, so a batch's round trip bounds the
	// rate: the default is large enough that the forwarder keeps up with
	// an edge at full load (BenchmarkShippedEdge, spool-depth-end), and
	// BatchMaxBytes bounds its size.
	BatchMaxEvents int
	// BatchMaxBytes bounds the uncompressed bytes of the event values of one
	// batch; keep it below the aggregator's max_batch_bytes. A single event
	// larger than this still goes out, alone.
	BatchMaxBytes int
	// BatchMaxAge is how long a partial batch waits for more events after
	// its first entry was read. It bounds the latency events get from
	// batching; a batch of an older epoch (left from before a restart) never
	// waits, since nothing can be appended to it.
	BatchMaxAge time.Duration
	// RequestTimeout bounds one request, until its response body is read.
	RequestTimeout time.Duration
	// BackoffMin and BackoffMax bound the delay between attempts at a batch
	// that failed: BackoffMin doubles per attempt up to BackoffMax, with
	// jitter. A Retry-After from the aggregator is honoured even above
	// BackoffMax, up to 10 minutes.
	BackoffMin, BackoffMax time.Duration
	// Client sends the requests; nil means a client with keep-alive,
	// RequestTimeout and no redirects (a redirect is an unexpected status,
	// retried and logged).
	Client *http.Client
	// TLS configures that default client's HTTPS (such as the CA it
	// trusts); nil means Go's defaults. Ignored with Client set.
	TLS *tls.Config
	// Registerer receives the edgetrack_forward_* metrics; nil means none.
	// Building another Forwarder on the same Registerer reuses the metrics.
	Registerer prometheus.Registerer
	// Logger gets retry, dead-letter and recovery messages; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Forwarder moves events from the spool to the aggregator. Run does the work;
// Flush waits for it. See the package documentation for what it guarantees.
type Forwarder struct {
	sp        *spool.Spool
	opts      Options
	endpoints []string // ingest URLs, one per aggregator
	current   int      // index into endpoints; the Run goroutine's
	client    *http.Client
	ownsConn  bool // client was made by New; Run closes its idle connections
	log       *slog.Logger
	m         *metrics
	enc       *zstd.Encoder

	running atomic.Bool
	// refused is why the aggregator refuses this edge's token (401/403)
	// since the last batch it took; nil when it does not.
	refused atomic.Pointer[string]

	// The fields below are used by the Run goroutine only.
	raw     []byte // reused buffer for the uncompressed Batch
	backoff backoff
	retries retryLog

	// progress is closed and replaced whenever entries left the queue, to
	// wake Flush.
	mu       sync.Mutex
	progress chan struct{}
}

// Refused returns an error while the aggregator refuses the edge's token:
// the edge keeps accepting events into its spool, but none leave it, so it
// must not report itself ready.
func (f *Forwarder) Refused() error {
	if msg := f.refused.Load(); msg != nil {
		return errors.New(*msg)
	}
	return nil
}

// New checks opts, fills in defaults and returns a Forwarder; call Run to
// start it. It reports every problem with opts at once.
func New(opts Options) (*Forwarder, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if opts.Spool == nil {
		bad("Spool is nil")
	}
	endpoints, err := ingestURLs(opts.URL)
	if err != nil {
		bad("URL: %w", err)
	}
	if opts.Token == "" {
		bad("Token is empty")
	}
	if opts.EdgeID == "" {
		bad("EdgeID is empty")
	}
	defInt := func(name string, v *int, def int) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0:
			bad("%s is negative (%d)", name, *v)
		}
	}
	defDur := func(name string, v *time.Duration, def time.Duration) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0:
			bad("%s is negative (%s)", name, *v)
		}
	}
	defInt("BatchMaxEvents", &opts.BatchMaxEvents, DefaultBatchMaxEvents)
	defInt("BatchMaxBytes", &opts.BatchMaxBytes, DefaultBatchMaxBytes)
	defDur("BatchMaxAge", &opts.BatchMaxAge, DefaultBatchMaxAge)
	defDur("RequestTimeout", &opts.RequestTimeout, DefaultRequestTimeout)
	defDur("BackoffMin", &opts.BackoffMin, DefaultBackoffMin)
	defDur("BackoffMax", &opts.BackoffMax, DefaultBackoffMax)
	if opts.BackoffMin > opts.BackoffMax {
		bad("BackoffMin (%s) exceeds BackoffMax (%s)", opts.BackoffMin, opts.BackoffMax)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("forward: invalid options: %w", errors.Join(errs...))
	}

	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("forward: zstd encoder: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	client := opts.Client
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 2 // one batch in flight; one spare
		if opts.TLS != nil {
			tr.TLSClientConfig = opts.TLS.Clone()
		}
		client = &http.Client{
			Transport: tr,
			Timeout:   opts.RequestTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	log := opts.Logger.With("url", strings.Join(endpoints, ",")) // the caller names the component
	return &Forwarder{
		sp:        opts.Spool,
		opts:      opts,
		endpoints: endpoints,
		client:    client,
		ownsConn:  opts.Client == nil,
		log:       log,
		m:         m,
		enc:       enc,
		backoff:   backoff{min: opts.BackoffMin, max: opts.BackoffMax},
		retries:   retryLog{log: log},
		progress:  make(chan struct{}),
	}, nil
}

// ingestURLs returns the ingest endpoints of the comma-separated base URLs.
func ingestURLs(bases string) ([]string, error) {
	var out []string
	for _, base := range strings.Split(bases, ",") {
		u, err := ingestURL(strings.TrimSpace(base))
		if err != nil {
			return nil, err
		}
		if slices.Contains(out, u) {
			return nil, fmt.Errorf("%q is listed twice", base)
		}
		out = append(out, u)
	}
	return out, nil
}

func ingestURL(base string) (string, error) {
	if base == "" {
		return "", errors.New("is empty")
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q: scheme must be http or https", base)
	}
	if u.Host == "" {
		return "", fmt.Errorf("%q: no host", base)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q: must not have a query or fragment", base)
	}
	return strings.TrimRight(base, "/") + IngestPath, nil
}

// run is the state of one Run.
type run struct {
	cursor spool.Position // every entry at or before it was acked or dead-lettered
	limit  int            // events per batch; below BatchMaxEvents after a 413
	// shrunk is the last position of the batch that got a 413; limit goes
	// back to BatchMaxEvents once the cursor reaches it.
	shrunk spool.Position
}

// Run forwards until ctx is done, and then returns nil. It returns an error
// only when the spool was closed under it, or when another Run of the same
// Forwarder is going on. Every other failure is logged and retried.
func (f *Forwarder) Run(ctx context.Context) error {
	if !f.running.CompareAndSwap(false, true) {
		return errors.New("forward: Run called while another Run is going on")
	}
	defer f.running.Store(false)
	if f.ownsConn {
		defer f.client.CloseIdleConnections()
	}

	r := run{limit: f.opts.BatchMaxEvents}
	for {
		b, err := f.collect(ctx, r.cursor, r.limit)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, spool.ErrClosed) {
			return fmt.Errorf("forward: %w", err)
		}
		if err != nil {
			if !f.retry(ctx, failure{kind: "spool error", err: err}, 0) {
				return nil
			}
			continue
		}
		if len(b.entries) == 0 { // every entry was undecodable and is dead-lettered
			r.cursor = b.last
			continue
		}
		if err := f.deliver(ctx, &r, b); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// deliver sends b until it is settled (acked and/or dead-lettered), a 413
// asks for smaller batches, or ctx is done.
func (f *Forwarder) deliver(ctx context.Context, r *run, b *batch) error {
	if err := f.encode(b); err != nil {
		// Values that unmarshalled always marshal; keep them and say so.
		f.retry(ctx, failure{kind: "encode error", err: err}, 0)
		return nil
	}
	var dead []rejection // what the aggregator refused for good
	for {
		out := f.send(ctx, b)
		if out.class == classRetry && ctx.Err() != nil {
			return nil // cancelled, not failed; a verdict that came in is still recorded
		}
		if out.class == classTooLarge && len(b.entries) > 1 {
			f.m.batchRetry.Inc()
			r.limit = max(1, len(b.entries)/2)
			if r.shrunk.Less(b.last) {
				r.shrunk = b.last // until the widest range that was too large is through
			}
			f.log.Warn("aggregator says the batch is too large; sending smaller batches",
				"events", len(b.entries), "bytes", b.size, "next_max_events", r.limit, "body", out.fail.body)
			return nil
		}
		if out.class == classRetry {
			f.m.batchRetry.Inc()
			f.failover(out.fail)
			if !f.retry(ctx, out.fail, out.retryAfter) {
				return nil
			}
			continue
		}
		if out.class == classSuccess {
			f.m.batchSuccess.Inc()
			dead = out.rejected
		} else { // classRejected, or classTooLarge with one event
			f.m.batchRejected.Inc()
			dead = make([]rejection, len(b.entries))
			for i := range dead {
				dead[i] = rejection{index: i, reason: out.reason}
			}
		}
		break
	}

	// The aggregator answered for good: the link is healthy again.
	f.backoff.reset()
	f.m.backoff.Set(0)
	f.retries.succeeded(time.Now())
	f.refused.Store(nil)

	// Record the verdict in the spool, retrying only the spool operations
	// if they fail.
	for retried := false; ; retried = true {
		err := f.settle(b, dead)
		if err == nil {
			if retried {
				f.backoff.reset()
				f.m.backoff.Set(0)
				f.retries.succeeded(time.Now())
				f.refused.Store(nil)
			}
			break
		}
		if errors.Is(err, spool.ErrClosed) {
			return fmt.Errorf("forward: %w", err)
		}
		if !f.retry(ctx, failure{kind: "spool error", err: err}, 0) {
			return nil
		}
	}
	r.cursor = b.last
	if r.limit < f.opts.BatchMaxEvents && !r.cursor.Less(r.shrunk) {
		r.limit = f.opts.BatchMaxEvents
	}
	return nil
}

// failover moves to the next aggregator after a failed attempt, when there
// are several: an aggregator that is down, overloaded or refusing this edge
// is skipped until the others fail too. The backoff still applies, so
// failures everywhere slow the edge down as with one aggregator. Resending
// a batch to another aggregator is as safe as resending it to the same one:
// ingest is idempotent across aggregators on one store.
func (f *Forwarder) failover(fl failure) {
	if len(f.endpoints) < 2 {
		return
	}
	from := f.endpoints[f.current]
	f.current = (f.current + 1) % len(f.endpoints)
	f.m.failovers.Inc()
	f.log.Warn("switching to the next aggregator", "from", from, "to", f.endpoints[f.current], "after", fl.kind, "status", fl.status)
}

// retry logs the failure (throttled) and waits for the next attempt: the
// backoff delay, or retryAfter if that is longer. It returns false when ctx
// ended first.
func (f *Forwarder) retry(ctx context.Context, fl failure, retryAfter time.Duration) bool {
	wait := max(f.backoff.next(), retryAfter)
	f.m.backoff.Set(wait.Seconds())
	f.retries.failed(time.Now(), fl, wait)
	if fl.auth {
		msg := fmt.Sprintf("the aggregator refuses this edge's token (HTTP %d): check edge.token against aggregator.tokens.edge", fl.status)
		f.refused.Store(&msg)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// settle records the aggregator's verdict in the spool: the dead entries
// (indexes into b.entries, with reasons) become dead letters, synced, and
// then everything through b.last is acked. It may be called again after an
// error; dead letters already written are not written or counted again.
func (f *Forwarder) settle(b *batch, dead []rejection) error {
	if len(dead) > 0 && !b.deadWritten {
		entries := make([]spool.Entry, len(dead))
		reasons := make([]string, len(dead))
		for i, d := range dead {
			entries[i] = spool.Entry{Pos: b.entries[d.index].Pos}
			reasons[i] = d.reason
		}
		if err := f.sp.DeadLetter(entries, reasons); err != nil {
			return err
		}
		b.deadWritten = true
		f.m.deadLettered.Add(float64(len(dead)))
		first := dead[0]
		f.log.Warn("events moved to the dead letters", "count", len(dead), "batch_events", len(b.entries),
			"first", b.entries[first.index].Pos.String(), "id", b.ids[first.index], "reason", first.reason)
	}
	if err := f.sp.Ack(b.last); err != nil {
		return err
	}
	f.m.delivered.Add(float64(len(b.entries) - len(dead)))
	f.woke()
	return nil
}

// woke wakes every Flush waiting for progress.
func (f *Forwarder) woke() {
	f.mu.Lock()
	close(f.progress)
	f.progress = make(chan struct{})
	f.mu.Unlock()
}

// Flush waits until every entry that was in the spool when it was called has
// left the queue (acked or dead-lettered), or ctx ends. It needs a Run going
// on to make progress, and is meant for shutdown and tests.
func (f *Forwarder) Flush(ctx context.Context) error {
	target := f.sp.Tail()
	for {
		f.mu.Lock()
		ch := f.progress
		f.mu.Unlock()
		head, err := f.sp.Read(spool.Position{}, 1, 1)
		if err != nil {
			return fmt.Errorf("forward: flush: %w", err)
		}
		if len(head) == 0 || target.Less(head[0].Pos) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("forward: flush: %d entries left: %w", f.sp.Stats().Depth, ctx.Err())
		}
	}
}
