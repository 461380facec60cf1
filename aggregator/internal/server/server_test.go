package server

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/edgetrack/edgetrack/aggregator/internal/erasure"
	"github.com/edgetrack/edgetrack/aggregator/internal/store/pebble"
	"github.com/edgetrack/edgetrack/internal/config"
)

var quiet = slog.New(slog.DiscardHandler)

func newTestServer(tb testing.TB) *Server {
	tb.Helper()
	st, err := pebble.Open(pebble.Options{Dir: tb.TempDir(), Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	reg := prometheus.NewRegistry()
	er, err := erasure.Open(erasure.Options{Dir: tb.TempDir(), Store: st, TombstoneRetention: time.Hour, Registerer: reg, Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { er.Close() })
	s, err := New(Config{
		Store:         st,
		Erasures:      er,
		Tokens:        config.Tokens{Query: []string{"q"}, Edge: []string{"e"}, Admin: []string{"a"}},
		MaxBatchBytes: 1 << 20,
		MaxPageSize:   100,
		Registerer:    reg,
		Gatherer:      reg,
		Logger:        quiet,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// serve runs h behind handle on a loopback HTTP server.
func serve(tb testing.TB, s *Server, h handlerFunc) string {
	tb.Helper()
	ts := httptest.NewServer(s.handle("test", h))
	tb.Cleanup(ts.Close)
	return ts.URL
}

// errorResponse GETs url and returns the status, the headers and the
// "error" of the JSON body.
func errorResponse(tb testing.TB, url string) (int, http.Header, string) {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		tb.Errorf("Content-Type = %q, want application/json", ct)
	}
	var body errorBody
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		tb.Fatalf("decoding the error body: %v", err)
	}
	return resp.StatusCode, resp.Header, body.Error
}

func TestHandlePanic(t *testing.T) {
	s := newTestServer(t)
	url := serve(t, s, func(w http.ResponseWriter, r *http.Request) error { panic("boom") })
	status, _, msg := errorResponse(t, url)
	if status != http.StatusInternalServerError || msg != "internal server error" {
		t.Errorf("got %d %q, want 500 internal server error", status, msg)
	}
	if n := counterValue(t, s.metrics.panics); n != 1 {
		t.Errorf("panics_total = %v, want 1", n)
	}
	if n := counterValue(t, s.metrics.requests.WithLabelValues("test", "none", "500")); n != 1 {
		t.Errorf("requests_total{code=500} = %v, want 1", n)
	}

	// The server keeps serving.
	if status, _, _ := errorResponse(t, url); status != http.StatusInternalServerError {
		t.Errorf("second request: %d", status)
	}
}

func TestHandlePanicAfterWriting(t *testing.T) {
	s := newTestServer(t)
	url := serve(t, s, func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		panic("boom")
	})
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err) // the header was flushed: the response starts
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Error("reading a response whose handler panicked succeeded; want it aborted")
	}
}

func TestHandleErrors(t *testing.T) {
	s := newTestServer(t)
	for _, tc := range []struct {
		name   string
		err    error
		status int
		msg    string
		header string // "Name: value" expected in the response
	}{
		{"plain error", errors.New("secret detail"), 500, "internal server error", ""},
		{"status error", errorf(http.StatusTeapot, "short and %s", "stout"), 418, "short and stout", ""},
		{"wrapped status error", errors.Join(errors.New("x"), errorf(400, "bad")), 400, "bad", ""},
		{"unavailable", unavailable("try later", errors.New("disk")), 503, "try later", "Retry-After: 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := serve(t, s, func(w http.ResponseWriter, r *http.Request) error { return tc.err })
			status, h, msg := errorResponse(t, url)
			if status != tc.status || msg != tc.msg {
				t.Errorf("got %d %q, want %d %q", status, msg, tc.status, tc.msg)
			}
			if name, value, ok := strings.Cut(tc.header, ": "); ok && h.Get(name) != value {
				t.Errorf("%s = %q, want %q", name, h.Get(name), value)
			}
		})
	}
}

func TestRouting(t *testing.T) {
	s := newTestServer(t)
	public := httptest.NewServer(s.Public())
	defer public.Close()
	admin := httptest.NewServer(s.Admin())
	defer admin.Close()

	for _, tc := range []struct {
		name, method, url string
		status            int
		allow             string
	}{
		{"unknown path", "GET", public.URL + "/nope", 404, ""},
		{"ingest with GET", "GET", public.URL + "/v1/ingest", 405, "POST"},
		{"events with POST", "POST", public.URL + "/events", 405, "GET, HEAD"},
		{"no ingest on admin", "POST", admin.URL + "/v1/ingest", 404, ""},
		{"no events on admin", "GET", admin.URL + "/events", 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body errorBody
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Error == "" {
				t.Errorf("body: %+v, %v; want a JSON error", body, err)
			}
			if resp.StatusCode != tc.status || resp.Header.Get("Allow") != tc.allow {
				t.Errorf("got %d Allow %q, want %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"), tc.status, tc.allow)
			}
		})
	}
}

func TestEdgeLabels(t *testing.T) {
	var l edgeLabels
	for i := range maxEdgeLabels {
		if got, want := l.label("e"+strconv.Itoa(i)), "e"+strconv.Itoa(i); got != want {
			t.Fatalf("label = %q, want %q", got, want)
		}
	}
	for edge, want := range map[string]string{
		"e0": "e0", "new": "other", "": "unknown", "\xff": "invalid", strings.Repeat("x", maxEdgeLen+1): "invalid",
	} {
		if got := l.label(edge); got != want {
			t.Errorf("label(%q) = %q, want %q", edge, got, want)
		}
	}
}

// counterValue reads a counter.
func counterValue(tb testing.TB, c prometheus.Metric) float64 {
	tb.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		tb.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestUnknownQueryParameters checks that every query endpoint refuses a
// misspelt or repeated parameter with a 400 saying which, instead of
// ignoring it and answering everything.
func TestUnknownQueryParameters(t *testing.T) {
	s := newTestServer(t)
	public := httptest.NewServer(s.Public())
	defer public.Close()
	for _, tc := range []struct{ query, want string }{
		{"/events?sesion_id=s1", "sesion_id is not a parameter of this endpoint; did you mean session_id?"},
		{"/events?name=a&name=b", "name is given 2 times"},
		{"/stats?start_time=2022-01-01&end_time=2022-01-02&bucket=hour&groupby=name", "did you mean group_by?"},
		{"/matches?uidd=x", "uidd is not a parameter of this endpoint; did you mean uid?"},
	} {
		req, _ := http.NewRequest("GET", public.URL+tc.query, nil)
		req.Header.Set("Authorization", "Bearer q")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body errorBody
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != 400 || err != nil || !strings.Contains(body.Error, tc.want) {
			t.Errorf("%s: %d %+v (%v), want 400 saying %q", tc.query, resp.StatusCode, body, err, tc.want)
		}
	}
}
