package edge_test

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"

	"github.com/edgetrack/edgetrack/client/tracker"
)

// TestTrackerServed checks how the edge serves /et.js: compressed when
// asked, cacheable with an ETag that revalidates to a 304, the inert script
// for a browser with the optout cookie, and only GET and HEAD.
func TestTrackerServed(t *testing.T) {
	cfg := edgeConfig(t)
	cfg.Rules.Pull = false
	e, _ := runEdge(t, cfg)
	u := "http://" + e.Addr() + tracker.Path

	decode := map[string]func(io.Reader) (io.Reader, error){
		"":     func(r io.Reader) (io.Reader, error) { return r, nil },
		"gzip": func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) },
		"br":   func(r io.Reader) (io.Reader, error) { return brotli.NewReader(r), nil },
	}
	etags := map[string]bool{}
	for _, c := range []struct{ accept, enc string }{{"", ""}, {"gzip", "gzip"}, {"gzip, deflate, br, zstd", "br"}} {
		resp, body := do(t, "GET", u, "", map[string]string{"Accept-Encoding": c.accept})
		h := resp.Header
		if resp.StatusCode != 200 || h.Get("Content-Encoding") != c.enc || h.Get("Content-Type") != "text/javascript; charset=utf-8" {
			t.Fatalf("Accept-Encoding %q: %d, Content-Encoding %q, Content-Type %q", c.accept, resp.StatusCode, h.Get("Content-Encoding"), h.Get("Content-Type"))
		}
		if h.Get("Cache-Control") != "public, no-cache" || !strings.Contains(h.Get("Vary"), "Accept-Encoding") || h.Get("ETag") == "" {
			t.Fatalf("caching headers: %v", h)
		}
		r, err := decode[c.enc](strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, tracker.Script) {
			t.Fatalf("Accept-Encoding %q: the body is not the tracker (%v)", c.accept, err)
		}
		etags[h.Get("ETag")] = true
		if c.enc == "gzip" && len(body) > 6<<10 {
			t.Errorf("the tracker is %d bytes gzipped; it must stay within 6 KiB", len(body))
		}
		resp, body = do(t, "GET", u, "", map[string]string{"Accept-Encoding": c.accept, "If-None-Match": h.Get("ETag")})
		if resp.StatusCode != 304 || body != "" || resp.Header.Get("ETag") != h.Get("ETag") {
			t.Fatalf("revalidation with %s: %d %q, ETag %q", h.Get("ETag"), resp.StatusCode, body, resp.Header.Get("ETag"))
		}
	}
	if len(etags) != 3 {
		t.Errorf("ETags %v: want one per encoding", etags)
	}
	if resp, _ := do(t, "GET", u, "", map[string]string{"If-None-Match": `"0123456789abcdef01234567"`}); resp.StatusCode != 200 {
		t.Errorf("a stale ETag: %d, want 200", resp.StatusCode)
	}

	for _, cookie := range []string{"optout=1", "uid=abc; optout", "a=b;optout=no"} {
		resp, body := do(t, "GET", u, "", map[string]string{"Cookie": cookie})
		if resp.StatusCode != 200 || body != string(tracker.OptedOut) || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("Cookie %q: %d, Cache-Control %q, body %.60q", cookie, resp.StatusCode, resp.Header.Get("Cache-Control"), body)
		}
	}
	if _, body := do(t, "GET", u, "", map[string]string{"Cookie": "notoptout=1; optoutx=2"}); body != string(tracker.Script) {
		t.Error("cookies that only look like optout opt out")
	}
	if resp, body := do(t, "HEAD", u, "", nil); resp.StatusCode != 200 || body != "" {
		t.Errorf("HEAD: %d %q", resp.StatusCode, body)
	}
	if resp, _ := do(t, "POST", u, "x", nil); resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}
