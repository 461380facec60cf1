package forward

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestBackoffBounds(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: 30 * time.Second}
	for attempt := range 80 {
		d := b.min << attempt
		if attempt >= 62 || d <= 0 || d > b.max {
			d = b.max
		}
		for range 20 {
			b.attempt = attempt
			if got := b.next(); got < d/2 || got > d {
				t.Fatalf("attempt %d: delay %s outside [%s, %s]", attempt, got, d/2, d)
			}
		}
	}
	b.reset()
	if got := b.next(); got > b.min {
		t.Errorf("after reset: %s, want at most %s", got, b.min)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"  7 ", 7 * time.Second, true},
		{"3600", maxRetryAfter, true},
		{"99999999999999999", maxRetryAfter, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{now.Add(time.Hour).Format(http.TimeFormat), maxRetryAfter, true},
	}
	for _, c := range cases {
		got, ok := parseRetryAfter(c.in, now)
		if got != c.want || ok != c.ok {
			t.Errorf("parseRetryAfter(%q) = %s, %v; want %s, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func TestRetryLogThrottles(t *testing.T) {
	var buf syncBuffer
	r := retryLog{log: slog.New(slog.NewTextHandler(&buf, nil))}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	s503 := failure{kind: "HTTP 503", status: 503}
	auth := failure{kind: "edge token refused", status: 401, auth: true}
	net := failure{kind: "network error", err: errors.New("connection refused")}

	r.failed(at(0), s503, time.Second)                   // logged: first
	r.failed(at(time.Second), s503, time.Second)         // quiet
	r.failed(at(2*time.Second), net, time.Second)        // logged: kind changed
	r.failed(at(3*time.Second), s503, time.Second)       // logged: kind changed
	r.failed(at(4*time.Second), auth, time.Second)       // logged: first auth
	r.failed(at(5*time.Second), s503, time.Second)       // logged: kind changed
	r.failed(at(6*time.Second), auth, time.Second)       // quiet: auth is once a minute
	r.failed(at(61*time.Second), s503, time.Second)      // logged: kind changed
	r.failed(at(62*time.Second), s503, time.Second)      // quiet
	r.failed(at(5*time.Second+time.Minute), auth, 0)     // logged as a warning: a minute later
	r.failed(at(5*time.Second+time.Minute+1), s503, 0)   // logged: kind changed
	r.failed(at(5*time.Second+2*time.Minute+1), s503, 0) // logged: a minute later
	r.succeeded(at(3 * time.Minute))                     // logged
	r.succeeded(at(4 * time.Minute))                     // nothing to say
	r.failed(at(5*time.Minute), auth, 0)                 // logged as an error: a new streak

	out := buf.String()
	if n := strings.Count(out, "level=WARN"); n != 8 {
		t.Errorf("%d warnings, want 8:\n%s", n, out)
	}
	if n := strings.Count(out, "level=ERROR"); n != 2 {
		t.Errorf("%d errors, want 2 (one per streak of refusals):\n%s", n, out)
	}
	if n := strings.Count(out, "level=INFO"); n != 1 || !strings.Contains(out, "failed_attempts=12") {
		t.Errorf("want one recovery line with failed_attempts=12:\n%s", out)
	}
}

func TestText(t *testing.T) {
	long := strings.Repeat("x", maxErrorText+10)
	cases := []struct{ in, want string }{
		{"", ""},
		{"  bad\n batch \r\n", "bad batch"},
		{`{"error":"batch over the limit"}` + "\n", "batch over the limit"},
		{`{"message":"not ours"}`, `{"message":"not ours"}`},
		{"\xff ok", "\uFFFD ok"},
		{long, strings.Repeat("x", maxErrorText) + " …"},
	}
	for _, c := range cases {
		if got := text([]byte(c.in)); got != c.want {
			t.Errorf("text(%.30q) = %.40q, want %.40q", c.in, got, c.want)
		}
	}
}
