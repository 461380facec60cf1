package browsertest_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/edgetrack/edgetrack/internal/browsertest"
)

// TestNew loads a page from loopback and reads what its script wrote.
func TestNew(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(`<!doctype html><title>t</title><p id=p></p><script>document.getElementById('p').textContent = 6 * 7</script>`))
	}))
	defer srv.Close()
	ctx := browsertest.New(t, 800, 600)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("p")))
	if err != nil || got != "42" {
		t.Fatalf("text %q, %v; want 42", got, err)
	}
}
