package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"
)

// StatusError is a collector answer other than 200. The request's events
// were kept and will be sent again.
type StatusError struct {
	Session    string
	StatusCode int
	Status     string        // e.g. "500 Internal Server Error"
	Body       string        // the start of the response body
	RetryAfter time.Duration // from a Retry-After header in seconds; 0 if none
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("client: collector answered %s for session %s", e.Status, e.Session)
	if body := strings.TrimSpace(e.Body); body != "" {
		msg += ": " + body
	}
	return msg
}

// maxErrorBody is how much of a non-200 body is kept in a StatusError.
const maxErrorBody = 4 << 10

// Flush sends every unsent event now, ignoring backoff, and returns when
// each session has been tried. It returns nil only if every event was
// acknowledged with 200; otherwise the errors of the sessions that failed
// (a *StatusError for a collector answer, or the transport error), and
// those events stay stored. Flush waits for a background send in flight to
// finish first. Close cancels a running Flush.
func (t *Tracker) Flush(ctx context.Context) error {
	t.life.RLock()
	defer t.life.RUnlock()
	if t.closed {
		return ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(t.ctx, cancel)
	defer stop()

	t.sendMu.Lock()
	defer t.sendMu.Unlock()
	return t.sendAll(ctx)
}

// sendAll sends all stored events, session by session, and records the
// outcome for the backoff. Callers hold life (read) and sendMu.
//
// A session that fails is left for the next round and the next session is
// tried, so one session the collector rejects does not hold back the
// others; a transport error (timeout, refused connection) ends the round,
// as the other sessions would only wait for the same unreachable collector.
func (t *Tracker) sendAll(ctx context.Context) error {
	ss, err := sessions(t.db)
	if err != nil {
		return fmt.Errorf("client: send: %w", err)
	}
	var (
		errs       []error
		retryAfter time.Duration
	)
	for _, s := range ss {
		err := t.sendSession(ctx, s)
		if err == nil {
			continue
		}
		errs = append(errs, err)
		var se *StatusError
		if !errors.As(err, &se) {
			break
		}
		retryAfter = max(retryAfter, se.RetryAfter)
	}
	err = errors.Join(errs...)
	t.recordRound(err, retryAfter)
	return err
}

// sendSession posts the events of one session in chunks of at most
// MaxPayloadsPerRequest, deleting each chunk after its 200.
func (t *Tracker) sendSession(ctx context.Context, session string) error {
	var next uint32
	for {
		payloads, nrs, err := readEvents(t.db, session, next, t.cfg.MaxPayloadsPerRequest)
		if err != nil {
			return fmt.Errorf("client: send session %s: %w", session, err)
		}
		if len(payloads) == 0 {
			return nil
		}
		c, err := loadAttrs(t.db, session)
		if err != nil {
			return fmt.Errorf("client: send: %w", err)
		}
		c.Payloads = payloads
		body, err := proto.Marshal(c)
		if err != nil {
			return fmt.Errorf("client: send session %s: %w", session, err)
		}
		if err := t.post(ctx, session, body); err != nil {
			return err
		}

		// Acknowledged: delete exactly the events we sent (newer ones may
		// have been tracked meanwhile) and record the sync, in one batch.
		now := t.cfg.Clock()
		b := t.db.NewBatch()
		for _, nr := range nrs {
			b.Delete(eventKey(session, nr), nil)
		}
		b.Set([]byte(keyLastSync), encodeInt64(now.UnixNano()), nil)
		err = b.Commit(pebble.Sync)
		b.Close()
		if err != nil {
			// The collector has them; they will be sent again, unchanged,
			// and the collector deduplicates them.
			return fmt.Errorf("client: send session %s: delete acknowledged events: %w", session, err)
		}
		t.stateMu.Lock()
		t.pending -= len(nrs)
		t.sent += uint64(len(nrs))
		t.lastSync = now
		t.stateMu.Unlock()

		last := nrs[len(nrs)-1]
		if last == ^uint32(0) {
			return nil
		}
		next = last + 1
	}
}

// post sends one signed Collection. Only 200 is success: the collector
// acknowledges a non-empty Collection with 200, and we never post an empty
// one, so any other status (204 included) keeps the events.
func (t *Tracker) post(ctx context.Context, session string, body []byte) error {
	ts := strconv.FormatInt(t.cfg.Clock().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("client: send session %s: %w", session, err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", "edgetrack-go-client")
	req.Header.Set("X-Hamustro-Time", ts)
	req.Header.Set("X-Hamustro-Signature", Sign(ts, body, t.cfg.SharedSecret))

	t.stateMu.Lock()
	t.requests++
	t.stateMu.Unlock()
	resp, err := t.cfg.HTTPClient.Do(req)
	if err != nil {
		t.countFailedRequest()
		return fmt.Errorf("client: send session %s: %w", session, err)
	}
	defer func() {
		// Drain a little so the connection can be reused.
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	t.countFailedRequest()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	se := &StatusError{Session: session, StatusCode: resp.StatusCode, Status: resp.Status, Body: string(msg)}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		se.RetryAfter = time.Duration(secs) * time.Second
	}
	return se
}

func (t *Tracker) countFailedRequest() {
	t.stateMu.Lock()
	t.failedRequests++
	t.stateMu.Unlock()
}

// recordRound updates the backoff after a send round: a success clears it,
// a failure pushes backoffUntil out (see backoffDelay), at least as far as
// the collector's Retry-After but never beyond BackoffMax.
func (t *Tracker) recordRound(err error, retryAfter time.Duration) {
	now := t.cfg.Clock()
	t.stateMu.Lock()
	defer t.stateMu.Unlock()
	if err == nil {
		t.failures = 0
		t.backoffUntil = time.Time{}
		return
	}
	t.failures++
	d := backoffDelay(t.failures, t.cfg.BackoffMin, t.cfg.BackoffMax, rand.Int64N)
	d = max(d, min(retryAfter, t.cfg.BackoffMax))
	t.backoffUntil = now.Add(d)
}

// backoffDelay is the pause after the n-th consecutive failure (n >= 1):
// base = lo * 2^(n-1), capped at hi, then "equal jitter": a uniformly random
// value in [base/2, base], so clients that failed together spread out while
// every pause is still at least lo/2. randN(k) returns a value in [0, k).
func backoffDelay(n int, lo, hi time.Duration, randN func(int64) int64) time.Duration {
	base := lo
	for i := 1; i < n && base < hi; i++ {
		if base > hi/2 {
			base = hi
			break
		}
		base *= 2
	}
	base = min(base, hi)
	half := base / 2
	return half + time.Duration(randN(int64(base-half)+1))
}
