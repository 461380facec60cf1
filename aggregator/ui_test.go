package aggregator_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/edgetrack/edgetrack/internal/aggtest"
)

// TestDashboardServed checks how /ui/ is served: without a token, with a
// content security policy, compressed when asked, revalidated with ETags.
func TestDashboardServed(t *testing.T) {
	agg := aggtest.Start(t, t.TempDir())
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string, header ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", agg.URL+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("/ui/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, `<script src="app.js">`) {
		t.Fatalf("/ui/: %d %s %.80q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	if resp, _ := get("/ui"); resp.StatusCode/100 != 3 || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("/ui: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, f := range []string{"app.js", "app.css", "vendor/uplot/uPlot.iife.min.js", "vendor/uplot/uPlot.min.css", "vendor/uplot/LICENSE"} {
		resp, body := get("/ui/"+f, "Accept-Encoding", "br")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "br" || len(body) == 0 {
			t.Errorf("%s: %d, Content-Encoding %q", f, resp.StatusCode, resp.Header.Get("Content-Encoding"))
		}
		if resp, _ := get("/ui/"+f, "Accept-Encoding", "br", "If-None-Match", resp.Header.Get("ETag")); resp.StatusCode != 304 {
			t.Errorf("%s revalidated: %d, want 304", f, resp.StatusCode)
		}
	}
	if resp, body := get("/ui/nothing.js"); resp.StatusCode != 404 || !strings.Contains(body, `"error"`) {
		t.Errorf("/ui/nothing.js: %d %s", resp.StatusCode, body)
	}
}
