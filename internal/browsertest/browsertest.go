// Package browsertest runs Debian's Chromium headless for tests, driven by
// chromedp. Without a chromium on PATH the test is skipped, or fails when
// servers are required (internal/testenv; .ci/run installs it with
// scripts/install-chromium.sh).
package browsertest

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/edgetrack/edgetrack/internal/syncbuf"
	"github.com/edgetrack/edgetrack/internal/testenv"
)

// Executable is the browser the tests drive, Debian's package's name for it.
const Executable = "chromium"

// Timeout bounds a whole browser test, so that a page that never answers
// fails the test instead of hanging it.
const Timeout = 3 * time.Minute

// New starts a headless Chromium with a fresh profile and returns the
// context of a tab in it: run chromedp actions with it. The browser stops
// when the test ends. Width and height are the window's size in pixels.
//
// The flags keep the browser off the network except for what the page asks
// (no background, component, sync or safe-browsing traffic; no QUIC):
// without them it may try the internet and stall on this machine's
// firewall. --no-sandbox is needed as root and in containers.
func New(t testing.TB, width, height int) context.Context {
	t.Helper()
	path, err := exec.LookPath(Executable)
	if err != nil {
		testenv.Missing(t, "Chromium", "install Debian's chromium package (make browser)", err)
	}
	var out syncbuf.Buffer
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("safebrowsing-disable-auto-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
		chromedp.CombinedOutput(&out),
	)
	ctx, cancelTimeout := context.WithTimeout(context.Background(), Timeout)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelTab := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancelTimeout()
	})
	if err := chromedp.Do(bctx); err != nil { // start it now, so that a failure says so
		t.Fatalf("starting %s: %v\n%s", path, err, out.String())
	}
	return bctx
}
