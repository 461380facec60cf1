package bench

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/chromedp"

	"github.com/edgetrack/edgetrack/client/tracker"
	"github.com/edgetrack/edgetrack/internal/browsertest"
)

// BenchmarkTrackerInPage measures what the tracker costs a page in
// headless Chromium: the main thread's JavaScript time for one page load
// (Chromium's ScriptDuration metric of the document, median over the
// loads: parsing, compiling and running the tracker's start-up, which
// records the page view in localStorage, and sending it), beside the same
// page without the tracker. Each iteration
// loads the page afresh; the browser revalidates the cached script (a 304),
// as it does on every page of a site. Without chromium it is skipped.
func BenchmarkTrackerInPage(b *testing.B) {
	addr, _, stop, err := startServer(serveEdge, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(stop)
	script := "http://" + addr + tracker.Path
	page := func(tag string) string {
		return `<!doctype html><meta charset=utf-8><title>t</title><p>A page.</p>` + tag
	}
	pages := map[string]string{
		"/with":    page(`<script async src="` + script + `"></script>`),
		"/without": page(``),
	}
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, pages[r.URL.Path])
	}))
	b.Cleanup(site.Close)
	ctx := browsertest.New(b, 800, 600)
	if _, err := chromedp.Call(ctx, performance.Enable, performance.EnableParams{}); err != nil {
		b.Fatal(err)
	}
	scriptTime := func() float64 {
		res, err := chromedp.Call(ctx, performance.GetMetrics, cdp.Empty{})
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range res.Metrics {
			if m.Name == "ScriptDuration" {
				return m.Value
			}
		}
		b.Fatal("no ScriptDuration metric")
		return 0
	}
	for _, c := range []struct{ name, path string }{{"baseline-no-script", "/without"}, {"tracker", "/with"}} {
		b.Run(c.name, func(b *testing.B) {
			if err := chromedp.Do(ctx, chromedp.Navigate(site.URL+c.path)); err != nil { // warm: cached script, compiled code
				b.Fatal(err)
			}
			var costs []float64
			for b.Loop() {
				if err := chromedp.Do(ctx, chromedp.Navigate(site.URL+c.path)); err != nil {
					b.Fatal(err)
				}
				// Time for the tracker to send its page view and handle the answer.
				if err := chromedp.Do(ctx, chromedp.Sleep(300*time.Millisecond)); err != nil {
					b.Fatal(err)
				}
				costs = append(costs, scriptTime()) // seconds, of this document: the metric starts at 0 with each
			}
			slices.Sort(costs)
			b.ReportMetric(costs[len(costs)/2]*1e6, "script-µs/page")
			b.ReportMetric(float64(len(tracker.Script)), "script-B")
		})
	}
}
