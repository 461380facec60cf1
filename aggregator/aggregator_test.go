package aggregator_test

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgetrack/edgetrack/aggregator"
)

func TestHealthAndMetrics(t *testing.T) {
	r := start(t, testConfig(t))
	for _, tc := range []struct {
		url    string
		status int
		body   string // prefix
	}{
		{r.base + "/healthz", 200, "ok"},
		{r.base + "/readyz", 200, "ok"},
		{r.base + "/metrics", 200, "# HELP"},
		{r.admin + "/healthz", 200, "ok"},
		{r.admin + "/metrics", 200, "# HELP"},
		{r.admin + "/events", 404, `{"error":`},
		{r.admin + "/readyz", 404, `{"error":`},
		{r.base + "/nope", 404, `{"error":`},
	} {
		resp := r.do(http.MethodGet, tc.url, "", nil)
		if resp.status != tc.status || !strings.HasPrefix(string(resp.body), tc.body) {
			t.Errorf("GET %s: %d %.40q, want %d %q…", tc.url, resp.status, resp.body, tc.status, tc.body)
		}
	}
	resp := r.do(http.MethodGet, r.admin+"/metrics", "", nil)
	for _, want := range []string{"edgetrack_http_requests_total", "edgetrack_store_ingest_seconds", "go_goroutines", "process_"} {
		if !strings.Contains(string(resp.body), want) {
			t.Errorf("admin /metrics lacks %s", want)
		}
	}
}

func TestRegisterer(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := testConfig(t)
	agg, err := aggregator.New(aggregator.Options{Config: cfg, Registerer: reg, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer agg.Close()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	for _, want := range []string{"edgetrack_ingest_events_total", "edgetrack_store_events_stored_total"} {
		if !slices.Contains(names, want) {
			t.Errorf("the given registry lacks %s; has %v", want, names)
		}
	}
}

// TestDurable stops an aggregator gracefully and starts another on the same
// data directory: the events acknowledged by the first are served by the
// second.
func TestDurable(t *testing.T) {
	cfg := testConfig(t)
	r := start(t, cfg)
	r.ingest(batch(event("a", "s", 1), event("b", "s", 2)))
	if err := r.stop(); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}

	r2 := start(t, cfg)
	if got, want := r2.sessionIDs("s", 10), []string{"b", "a"}; !slices.Equal(got, want) {
		t.Errorf("after restart: %v, want %v", got, want)
	}
	if got := r2.ingest(batch(event("a", "s", 1))); got.GetDuplicates() != 1 {
		t.Errorf("after restart, a stored event is not a duplicate: %v", got)
	}
}

func TestRunTwice(t *testing.T) {
	agg, err := aggregator.New(aggregator.Options{Config: testConfig(t), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := agg.Run(ctx); err != nil {
		t.Errorf("Run with a done context: %v", err)
	}
	if err := agg.Run(context.Background()); err == nil {
		t.Error("second Run returned nil")
	}
}

func TestNewErrors(t *testing.T) {
	t.Run("invalid configuration", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.Tokens.Edge = nil
		cfg.Query.MaxPageSize = 0
		_, err := aggregator.New(aggregator.Options{Config: cfg, Logger: quiet})
		if err == nil || !strings.Contains(err.Error(), "aggregator.tokens.edge") ||
			!strings.Contains(err.Error(), "aggregator.query.max_page_size") {
			t.Errorf("New = %v, want both problems", err)
		}
	})

	t.Run("address in use", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		cfg := testConfig(t)
		cfg.AdminListen = ln.Addr().String()
		if _, err := aggregator.New(aggregator.Options{Config: cfg, Logger: quiet}); err == nil {
			t.Fatal("New on a busy address succeeded")
		}
		// The failed New released the store and the public listener: the
		// data directory opens again.
		cfg.AdminListen = "127.0.0.1:0"
		agg, err := aggregator.New(aggregator.Options{Config: cfg, Logger: quiet})
		if err != nil {
			t.Fatalf("New after a failed New: %v", err)
		}
		if err := agg.Close(); err != nil {
			t.Error(err)
		}
	})
}
