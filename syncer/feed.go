package syncer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Event is an event as the aggregator's query API writes it (GET /events,
// GET /v1/export).
type Event struct {
	ID         string          `json:"id"`
	Source     string          `json:"source"`
	SessionID  string          `json:"session_id"`
	Category   string          `json:"category"`
	Name       string          `json:"name"`
	Timestamp  string          `json:"timestamp"`
	ReceivedAt string          `json:"received_at"`
	ClientTime string          `json:"client_time,omitempty"`
	Data       json.RawMessage `json:"data"`
	IP         string          `json:"ip"`
	Edge       string          `json:"edge"`
	Rule       string          `json:"rule"`
}

// Filters select the events synced, as the feed's parameters do.
type Filters struct {
	Start                   time.Time // event time from (inclusive); zero = from the first
	Session, Category, Name string
	NamePrefixes            []string
}

// FeedKey names a feed's cursor in a target: the aggregator's URL and the
// filters, hashed. Two syncs with the same key continue each other.
func FeedKey(from string, f Filters) string {
	var b strings.Builder
	fmt.Fprintf(&b, "v1\x00%s\x00%s\x00%s\x00%s\x00%s", strings.TrimRight(from, "/"), f.Session, f.Category, f.Name, strings.Join(f.NamePrefixes, ","))
	if !f.Start.IsZero() {
		b.WriteString("\x00" + f.Start.UTC().Format(time.RFC3339Nano))
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:12])
}

// erasureFeed names a feed's erasure cursor in a target: the last erasure
// (GET /v1/export/erasures) applied.
func erasureFeed(feed string) string { return feed + "-erasures" }

// parseErasureCursor reads a stored erasure cursor; "" (none yet) is 0.
func parseErasureCursor(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("the stored erasure cursor %q is not a number", s)
	}
	return n, nil
}

// Feed reads an aggregator's change feed.
type Feed struct {
	From    string // the aggregator's base URL (its public listener)
	Token   string // a query token
	Filters Filters
	Client  *http.Client
}

// Page is one read of the feed.
type Page struct {
	Events []Event `json:"events"`
	Next   string  `json:"next"`
}

// FeedError is an answer of the aggregator that retrying cannot change: a
// refused token, a refused cursor or filter.
type FeedError struct {
	Status int
	Msg    string
}

func (e *FeedError) Error() string {
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Sprintf("the aggregator refuses the token (HTTP %d: %s): give a token of aggregator.tokens.query", e.Status, e.Msg)
	}
	return fmt.Sprintf("the aggregator refuses the request (HTTP %d): %s", e.Status, e.Msg)
}

// Read returns the events after the cursor after, at most limit, waiting up
// to wait when there are none. A *FeedError is final; other errors
// (network, 5xx) are worth retrying.
func (f *Feed) Read(ctx context.Context, after string, limit int, wait time.Duration) (Page, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if after != "" {
		q.Set("after", after)
	}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	fl := f.Filters
	if !fl.Start.IsZero() {
		q.Set("start_time", fl.Start.UTC().Format(time.RFC3339Nano))
	}
	for k, v := range map[string]string{"session_id": fl.Session, "category": fl.Category, "name": fl.Name, "name_prefix": strings.Join(fl.NamePrefixes, ",")} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var p Page
	if err := f.get(ctx, "/v1/export", q, &p); err != nil {
		return Page{}, err
	}
	if p.Next == "" {
		return Page{}, errors.New("reading the feed: the answer has no next cursor (is this an edgetrack aggregator?)")
	}
	return p, nil
}

// Erasure is one erasure at the aggregator: the ids of the events it
// removed, which a target deletes.
type Erasure struct {
	Seq uint64   `json:"seq"`
	IDs []string `json:"ids"`
}

// ErasurePage is one read of the erasures.
type ErasurePage struct {
	Erasures []Erasure `json:"erasures"`
	Next     uint64    `json:"next"`
}

// Erasures returns the erasures after seq after, at most limit. A
// *FeedError is final: among them 410, when the aggregator no longer keeps
// erasures the target has not applied (it must be rebuilt).
func (f *Feed) Erasures(ctx context.Context, after uint64, limit int) (ErasurePage, error) {
	q := url.Values{"after": {strconv.FormatUint(after, 10)}, "limit": {strconv.Itoa(limit)}}
	var p ErasurePage
	if err := f.get(ctx, "/v1/export/erasures", q, &p); err != nil {
		var fe *FeedError
		if errors.As(err, &fe) && fe.Status == http.StatusGone {
			fe.Msg += "; the target may hold erased events: rebuild it (drop its tables or state directory and sync again)"
		}
		return ErasurePage{}, err
	}
	return p, nil
}

// get reads path?q from the aggregator into out. 4xx answers but 408 and
// 429 are a *FeedError; others are worth retrying.
func (f *Feed) get(ctx context.Context, path string, q url.Values, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(f.From, "/")+path+"?"+q.Encode(), nil)
	if err != nil {
		return &FeedError{Msg: err.Error()}
	}
	req.Header.Set("Authorization", "Bearer "+f.Token)
	client := f.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout {
			return &FeedError{Status: resp.StatusCode, Msg: msg}
		}
		return fmt.Errorf("reading %s: HTTP %d: %.200s", path, resp.StatusCode, msg)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	return nil
}
