package forward

import (
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxRetryAfter caps a Retry-After from the aggregator. It is honoured above
// BackoffMax (the aggregator knows best when it will be back) but not beyond
// this, so a bogus header cannot park the edge for hours.
const maxRetryAfter = 10 * time.Minute

// backoff is an exponential backoff with equal jitter: attempt n waits a
// random duration in [d/2, d] where d = min*2^n capped at max.
type backoff struct {
	min, max time.Duration
	attempt  int
}

// next returns the delay before the next attempt and counts the attempt.
func (b *backoff) next() time.Duration {
	d := b.max
	if b.attempt < 62 {
		if e := b.min << b.attempt; e > 0 && e < b.max {
			d = e
		}
	}
	b.attempt++
	half := d / 2
	return half + rand.N(d-half+1)
}

func (b *backoff) reset() { b.attempt = 0 }

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
// It returns false when the header is absent or malformed. The result is
// capped at maxRetryAfter.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return min(max(t.Sub(now), 0), maxRetryAfter), true
}

// logEvery is how often a failure that goes on is logged again.
const logEvery = time.Minute

// retryLog throttles the logs of failed attempts: one line when the kind of
// failure changes and then at most one a minute per kind, with the number of
// attempts in between; one line when a batch goes through again. A refused
// token is logged at error level once, when the refusals start, and then
// reminded of at warning level at most once a minute, even when other
// failures come in between. It is used by the Run goroutine only.
type retryLog struct {
	log *slog.Logger

	state    string    // kind of the current failure streak; "" when healthy
	since    time.Time // first failure of the streak
	attempts int       // failed attempts in the streak
	quiet    int       // attempts not logged since the last line
	last     map[string]time.Time
	// refusalLogged: the error line about a refused token was written in
	// this streak.
	refusalLogged bool
}

// failure describes one failed attempt.
type failure struct {
	kind   string // "HTTP 503", "network error", "edge token refused", ...
	status int    // 0 without a response
	body   string // start of the response body, if any
	err    error
	auth   bool // 401/403: logged at error level
}

func (r *retryLog) failed(now time.Time, f failure, wait time.Duration) {
	if r.state == "" {
		r.since = now
	}
	r.attempts++
	changed := f.kind != r.state
	r.state = f.kind
	last, seen := r.last[f.kind]
	due := !seen || now.Sub(last) >= logEvery || (changed && !f.auth)
	if !due {
		r.quiet++
		return
	}
	if r.last == nil {
		r.last = make(map[string]time.Time)
	}
	r.last[f.kind] = now
	attrs := []any{"kind", f.kind, "attempts", r.attempts, "failing_for", now.Sub(r.since).Round(time.Millisecond),
		"retry_in", wait.Round(time.Millisecond), "attempts_not_logged", r.quiet}
	if f.status != 0 {
		attrs = append(attrs, "status", f.status)
	}
	if f.body != "" {
		attrs = append(attrs, "body", f.body)
	}
	if f.err != nil {
		attrs = append(attrs, "err", f.err)
	}
	r.quiet = 0
	if f.auth && !r.refusalLogged {
		r.refusalLogged = true
		r.log.Error("aggregator refused the edge token; events are kept and sent again, and /readyz fails until it accepts it (check edge.token against aggregator.tokens.edge)", attrs...)
		return
	}
	if f.auth {
		r.log.Warn("aggregator still refuses the edge token", attrs...)
		return
	}
	r.log.Warn("sending a batch to the aggregator failed; retrying", attrs...)
}

func (r *retryLog) succeeded(now time.Time) {
	if r.state == "" {
		return
	}
	r.log.Info("forwarding recovered", "failed_attempts", r.attempts,
		"failing_for", now.Sub(r.since).Round(time.Millisecond), "last_failure", r.state)
	r.state, r.attempts, r.quiet, r.refusalLogged = "", 0, 0, false
}
