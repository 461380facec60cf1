package syncer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// WebhookOptions configure a webhook target.
type WebhookOptions struct {
	URL      string
	Secret   string // Standard Webhooks secret (whsec_...); "" sends unsigned requests
	StateDir string
	// MaxAttempts per batch before it becomes a dead letter (default 10).
	MaxAttempts int
	// BackoffMin and BackoffMax bound the wait between attempts (defaults
	// 500ms and 1m); a Retry-After is honoured up to 10 minutes.
	BackoffMin, BackoffMax time.Duration
	Timeout                time.Duration // per request (default 30s)
	Client                 *http.Client
	Logger                 *slog.Logger
}

// WebhookTarget POSTs batches of events as JSON {"events": [...]}.
type WebhookTarget struct {
	o      WebhookOptions
	state  stateDir
	feed   string
	cursor string
	erased uint64 // the erasure cursor
	signer *standardwebhooks.Webhook
	// seenMatches remembers the (partner, partner id) pairs delivered, so a
	// later match of the same pair is "updated"; kept in the state dir.
	seen map[string]bool
}

// webhookEvent is an event as delivered: the query API's fields and a state.
type webhookEvent struct {
	Event
	State string `json:"state"` // "new", or "updated" for a match replacing an earlier one
}

// OpenWebhook checks the options and reads the cursor from the state dir.
func OpenWebhook(o WebhookOptions, feed string) (*WebhookTarget, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook %q is not an absolute http(s) URL", redact(o.URL))
	}
	if o.StateDir == "" {
		return nil, fmt.Errorf("a webhook target needs a state directory for its cursor")
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 10
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = 500 * time.Millisecond
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	t := &WebhookTarget{o: o, state: stateDir(o.StateDir), feed: feed, seen: map[string]bool{}}
	if o.Secret != "" {
		if t.signer, err = standardwebhooks.NewWebhook(o.Secret); err != nil {
			return nil, fmt.Errorf("--webhook-secret: %w (want whsec_ and base64)", err)
		}
	}
	if t.cursor, err = t.state.readCursor(feed); err != nil {
		return nil, err
	}
	erased, err := t.state.readCursor(erasureFeed(feed))
	if err != nil {
		return nil, err
	}
	if t.erased, err = parseErasureCursor(erased); err != nil {
		return nil, err
	}
	if b, err := os.ReadFile(t.matchesFile()); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if line != "" {
				t.seen[line] = true
			}
		}
	}
	return t, nil
}

func (t *WebhookTarget) matchesFile() string {
	return string(t.state) + "/matches-" + t.feed + ".txt"
}

// Cursor implements Target.
func (t *WebhookTarget) Cursor() string { return t.cursor }

// webhookID names a batch by the feed positions it spans, so every attempt,
// also after a restart, carries the same id.
func webhookID(feed, after, next string) string {
	sum := sha256.Sum256([]byte(feed + "\x00" + after + "\x00" + next))
	return "msg_" + hex.EncodeToString(sum[:16])
}

// Write delivers events (retrying until a 2xx, or keeping them as a dead
// letter after MaxAttempts), then writes the cursor next. An empty batch
// only moves the cursor.
func (t *WebhookTarget) Write(ctx context.Context, events []Event, next string) error {
	if len(events) > 0 {
		out := make([]webhookEvent, len(events))
		var newPairs []string
		for i, e := range events {
			out[i] = webhookEvent{Event: e, State: "new"}
			if r, err := toRow(e); err == nil {
				if m, ok := toMatch(e, r); ok {
					pair := m.partner + "\t" + m.partnerID
					if t.seen[pair] {
						out[i].State = "updated"
					} else {
						t.seen[pair] = true
						newPairs = append(newPairs, pair)
					}
				}
			}
		}
		body, err := json.Marshal(map[string]any{"events": out})
		if err != nil {
			return err
		}
		id := webhookID(t.feed, t.cursor, next)
		attempts, err := t.deliver(ctx, id, body)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			t.o.Logger.Error("webhook batch failed every attempt; kept as a dead letter (edgetrack sync replay sends it again)",
				"webhook_id", id, "events", len(events), "attempts", attempts, "err", err)
			if derr := t.state.writeDead(deadLetter{ID: id, URL: redact(t.o.URL), Attempts: attempts, Error: err.Error(), Body: body}); derr != nil {
				return fmt.Errorf("keeping a dead letter: %w", derr)
			}
		}
		if len(newPairs) > 0 {
			f, err := os.OpenFile(t.matchesFile(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			_, err = f.WriteString(strings.Join(newPairs, "\n") + "\n")
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
	if err := t.state.writeCursor(t.feed, next, t.o.URL); err != nil {
		return fmt.Errorf("writing the cursor: %w", err)
	}
	t.cursor = next
	return nil
}

// ErasureCursor implements Target.
func (t *WebhookTarget) ErasureCursor() uint64 { return t.erased }

// Erase delivers {"erasures": [{"seq": …, "event_ids": […]}]}, with the
// retries and dead letters of Write, then writes the erasure cursor. The
// receiver deletes those events.
func (t *WebhookTarget) Erase(ctx context.Context, e Erasure) error {
	if len(e.IDs) > 0 {
		type erasure struct {
			Seq      uint64   `json:"seq"`
			EventIDs []string `json:"event_ids"`
		}
		body, err := json.Marshal(map[string]any{"erasures": []erasure{{e.Seq, e.IDs}}})
		if err != nil {
			return err
		}
		id := webhookID(t.feed, "erasure", strconv.FormatUint(e.Seq, 10))
		attempts, err := t.deliver(ctx, id, body)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			t.o.Logger.Error("webhook erasure failed every attempt; kept as a dead letter (edgetrack sync replay sends it again)",
				"webhook_id", id, "erasure", e.Seq, "events", len(e.IDs), "attempts", attempts, "err", err)
			if derr := t.state.writeDead(deadLetter{ID: id, URL: redact(t.o.URL), Attempts: attempts, Error: err.Error(), Body: body}); derr != nil {
				return fmt.Errorf("keeping a dead letter: %w", derr)
			}
		}
	}
	if err := t.state.writeCursor(erasureFeed(t.feed), strconv.FormatUint(e.Seq, 10), t.o.URL); err != nil {
		return fmt.Errorf("writing the erasure cursor: %w", err)
	}
	t.erased = e.Seq
	return nil
}

// deliver POSTs body until a 2xx, at most MaxAttempts times. It returns the
// attempts made and the last failure.
func (t *WebhookTarget) deliver(ctx context.Context, id string, body []byte) (int, error) {
	var last error
	for attempt := 1; attempt <= t.o.MaxAttempts; attempt++ {
		retryAfter, err := t.post(ctx, id, body)
		if err == nil {
			return attempt, nil
		}
		last = err
		if attempt == t.o.MaxAttempts || ctx.Err() != nil {
			return attempt, last
		}
		wait := max(backoff(t.o.BackoffMin, t.o.BackoffMax, attempt), retryAfter)
		t.o.Logger.Warn("webhook attempt failed; retrying", "webhook_id", id, "attempt", attempt, "retry_in", wait.Round(time.Millisecond), "err", err)
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return attempt, ctx.Err()
		}
	}
	return t.o.MaxAttempts, last
}

// post makes one attempt; retryAfter is the server's Retry-After, if any.
func (t *WebhookTarget) post(ctx context.Context, id string, body []byte) (retryAfter time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.o.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	now := time.Now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	if t.signer != nil {
		sig, err := t.signer.Sign(id, now, body)
		if err != nil {
			return 0, err
		}
		req.Header.Set("webhook-signature", sig)
	}
	resp, err := t.o.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return 0, nil
	}
	return parseRetryAfter(resp.Header.Get("Retry-After"), now), fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, strings.TrimSpace(string(msg)))
}

// backoff is exponential with equal jitter: attempt n waits a random time in
// [d/2, d], d = min·2^(n-1) capped at max.
func backoff(lo, hi time.Duration, attempt int) time.Duration {
	d := hi
	if attempt-1 < 40 {
		if e := lo << (attempt - 1); e > 0 && e < hi {
			d = e
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// parseRetryAfter reads delay-seconds or an HTTP date, capped at 10 minutes.
func parseRetryAfter(v string, now time.Time) time.Duration {
	const most = 10 * time.Minute
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
		return min(time.Duration(min(s, int64(most/time.Second)))*time.Second, most)
	}
	if at, err := http.ParseTime(v); err == nil {
		return min(max(at.Sub(now), 0), most)
	}
	return 0
}

// Replay sends the dead letters in the state dir again, each up to
// MaxAttempts times, removing the ones that get a 2xx. It returns how many
// were delivered and how many remain.
func (t *WebhookTarget) Replay(ctx context.Context) (delivered, remaining int, err error) {
	files, err := t.state.deadLetters()
	if err != nil {
		return 0, 0, err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return delivered, len(files) - delivered, err
		}
		var l deadLetter
		if err := json.Unmarshal(b, &l); err != nil {
			return delivered, len(files) - delivered, fmt.Errorf("%s: %w", f, err)
		}
		if _, err := t.deliver(ctx, l.ID, l.Body); err != nil {
			t.o.Logger.Error("dead letter still refused; kept", "webhook_id", l.ID, "err", err)
			continue
		}
		if err := os.Remove(f); err != nil {
			return delivered, len(files) - delivered, err
		}
		delivered++
	}
	return delivered, len(files) - delivered, nil
}

// Close implements Target.
func (t *WebhookTarget) Close() error { return nil }
