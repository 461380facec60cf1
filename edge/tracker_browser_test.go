package edge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/edgetrack/edgetrack/internal/browsertest"
	"github.com/edgetrack/edgetrack/internal/config"
)

// trackerSite is a real edge and aggregator on loopback, and a web site on
// another loopback origin whose pages load the tracker from the edge.
type trackerSite struct {
	t               *testing.T
	edge, agg, site string // base URLs; pages reach the edge through a proxy at edge
	// down, while true, makes the proxy drop every request to the edge's
	// /events without an answer: the network between page and edge is gone.
	down atomic.Bool
}

// secret is typed into the password field; it must never reach the edge.
const secret = "hunter2-never-sent"

func startTrackerSite(t *testing.T) *trackerSite {
	t.Helper()
	agg := startAggregator(t, t.TempDir())
	cfg := edgeConfig(t)
	cfg.AggregatorURL = "http://" + agg.Addr()
	cfg.Rules.Pull = false
	cfg.Forward.BatchMaxAge = config.Duration(20 * time.Millisecond)
	e, _ := runEdge(t, cfg)
	s := &trackerSite{t: t, agg: "http://" + agg.Addr()}
	edgeURL, _ := url.Parse("http://" + e.Addr())
	rp := httputil.NewSingleHostReverseProxy(edgeURL)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.down.Load() && r.URL.Path == "/events" {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	s.edge = proxy.URL
	page := func(title, body string) string {
		return `<!doctype html><meta charset=utf-8><title>` + title + `</title>` + body +
			`<script async src="` + s.edge + `/et.js"></script>`
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch r.URL.Path {
		case "/thanks":
			fmt.Fprint(w, page("thanks", `<p id=done>thanks</p>`))
		default:
			fmt.Fprint(w, page("shop", `
<button id=chat data-et-cta="chat bubble">Chat</button>
<a id=buy href="#" data-et-cta onclick="return false"><span>Buy now</span></a>
<button id=plain>not tracked</button>
<form id=signup data-et-form method=post action=/thanks>
  <input name=first_name id=first_name>
  <input name=email id=email type=email>
  <input name=password id=password type=password>
  <input name=csrf type=hidden value=hidden-token>
  <input name=card id=card data-et-skip>
  <label data-et-skip><input name=ssn id=ssn></label>
  <input name=news type=checkbox value=yes checked>
  <input name=terms type=checkbox value=ok>
  <select name=plan><option>free<option selected>pro</select>
  <button id=send>Sign up</button>
</form>`))
		}
	}))
	t.Cleanup(srv.Close)
	s.site = srv.URL
	return s
}

// storedEvent is an event as GET /events answers it.
type storedEvent struct {
	ID        string         `json:"id"`
	SessionID string         `json:"session_id"`
	Category  string         `json:"category"`
	Name      string         `json:"name"`
	Data      map[string]any `json:"data"`
}

// events returns every stored event, oldest first, and the raw answer.
func (s *trackerSite) events() ([]storedEvent, string) {
	s.t.Helper()
	resp, body := do(s.t, "GET", s.agg+"/events?page_size=1000", "", map[string]string{"Authorization": "Bearer query-token"})
	var page struct {
		Count   int
		Results []storedEvent
	}
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &page) != nil {
		s.t.Fatalf("GET /events: %d %s", resp.StatusCode, body)
	}
	for i, j := 0, len(page.Results)-1; i < j; i, j = i+1, j-1 {
		page.Results[i], page.Results[j] = page.Results[j], page.Results[i]
	}
	return page.Results, body
}

// waitEvents waits until the aggregator has n events and returns them. It
// fails on more: each event the page made must be stored once.
func (s *trackerSite) waitEvents(n int) ([]storedEvent, string) {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		evs, raw := s.events()
		switch {
		case len(evs) > n:
			s.t.Fatalf("%d events stored, want %d:\n%s", len(evs), n, describe(evs))
		case len(evs) == n:
			return evs, raw
		case time.Now().After(deadline):
			s.t.Fatalf("%d events stored after a minute, want %d:\n%s", len(evs), n, describe(evs))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func describe(evs []storedEvent) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "  %s %s/%s %v\n", e.ID, e.Category, e.Name, e.Data)
	}
	return b.String()
}

func run(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

// loaded waits until the tracker has run on the current page.
func loaded(t *testing.T, ctx context.Context) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`!!(window.edgetrack && window.edgetrack.loaded)`)); err != nil {
		t.Fatal(err)
	}
}

// queued returns how many events the tracker keeps in localStorage.
func queued(t *testing.T, ctx context.Context) int {
	return eval[int](t, ctx, `JSON.parse(localStorage.getItem("et_q") || "[]").length`)
}

var clientID = regexp.MustCompile(`^eye:[0-9a-f]{32}$`)

// TestTrackerInChromium loads pages with the tracker in Chromium and reads
// what reached the aggregator: page views on load and on single-page-app
// navigation, clicks on marked elements and through the API, and a form
// submission without its password, hidden and skipped fields.
func TestTrackerInChromium(t *testing.T) {
	s := startTrackerSite(t)
	ctx := browsertest.New(t, 1000, 800)
	run(t, ctx, chromedp.Navigate(s.site+"/shop"))
	loaded(t, ctx)
	run(t, ctx,
		chromedp.Click(chromedp.ID("chat")),
		chromedp.Click(chromedp.ID("buy")),
		chromedp.Click(chromedp.ID("plain")),
		chromedp.Evaluate[chromedp.Void](`history.pushState({}, "", "/shop/cart")`),
		chromedp.Evaluate[chromedp.Void](`history.replaceState({}, "", "/shop/cart?step=2")`), // not a new page
	)
	// history.back fires popstate once the navigation is done.
	run(t, ctx, chromedp.Evaluate[chromedp.Void](`new Promise(r => { addEventListener("popstate", r, {once: true}); history.back(); })`, chromedp.EvalAwaitPromise))
	run(t, ctx,
		chromedp.Evaluate[chromedp.Void](`edgetrack("cta_click", "chat bubble api")`),
		chromedp.SendKeys(chromedp.ID("first_name"), "Ada"),
		chromedp.SendKeys(chromedp.ID("email"), "ada@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), secret),
		chromedp.SendKeys(chromedp.ID("card"), "4111111111111111"),
		chromedp.SendKeys(chromedp.ID("ssn"), "078-05-1120"),
	)
	// The submission leaves the page: the event goes by beacon or by the
	// next page's tracker.
	run(t, ctx, chromedp.Click(chromedp.ID("send")), chromedp.WaitVisible(chromedp.ID("done")))
	loaded(t, ctx)

	evs, raw := s.waitEvents(8)
	type kind struct{ category, name, path, extra string }
	want := []kind{
		{"page_interaction", "page_view", "/shop", ""},
		{"page_interaction", "cta_click", "/shop", "chat bubble"},
		{"page_interaction", "cta_click", "/shop", "Buy now"},
		{"page_interaction", "page_view", "/shop/cart", ""},
		{"page_interaction", "page_view", "/shop", ""},
		{"page_interaction", "cta_click", "/shop", "chat bubble api"},
		{"form_interaction", "submit", "/shop", ""},
		{"page_interaction", "page_view", "/thanks", ""},
	}
	host := strings.TrimPrefix(s.site, "http://")
	for i, e := range evs {
		w := want[i]
		if e.Category != w.category || e.Name != w.name || e.Data["path"] != w.path || e.Data["host"] != host {
			t.Errorf("event %d: %s/%s %v, want %s/%s at %s%s", i, e.Category, e.Name, e.Data, w.category, w.name, host, w.path)
		}
		if w.extra != "" && e.Data["element"] != w.extra {
			t.Errorf("event %d: element %v, want %q", i, e.Data["element"], w.extra)
		}
		if e.SessionID != evs[0].SessionID || len(e.SessionID) != 32 {
			t.Errorf("event %d: session %q, want one session for the visit (%q)", i, e.SessionID, evs[0].SessionID)
		}
		if !clientID.MatchString(e.ID) {
			t.Errorf("event %d: id %q is not the client's event_id", i, e.ID)
		}
	}
	form, _ := evs[6].Data["form"].(map[string]any)
	wantForm := map[string]any{"first_name": "Ada", "email": "ada@example.com", "news": []any{"yes"}, "plan": "pro"}
	if fmt.Sprint(form) != fmt.Sprint(wantForm) {
		t.Errorf("form %v, want %v (no password, hidden, data-et-skip or unchecked fields)", form, wantForm)
	}
	for _, never := range []string{secret, "hidden-token", "4111111111111111", "078-05-1120"} {
		if strings.Contains(raw, never) {
			t.Errorf("%q reached the aggregator", never)
		}
	}
	if n := queued(t, ctx); n != 0 {
		t.Errorf("%d events still queued after all were stored", n)
	}

	// 30 minutes without an event end the session: the next one starts another.
	run(t, ctx, chromedp.Evaluate[chromedp.Void](`(() => { const s = JSON.parse(localStorage.getItem("et_s"));
		s.t = Date.now() - 30 * 60 * 1000 - 1000; localStorage.setItem("et_s", JSON.stringify(s)); edgetrack("cta_click", "after a break"); })()`))
	evs, _ = s.waitEvents(9)
	if last := evs[8]; last.Data["element"] != "after a break" || last.SessionID == evs[0].SessionID || len(last.SessionID) != 32 {
		t.Errorf("after 30 idle minutes: %s in session %q, want a new session (not %q)", last.Data["element"], last.SessionID, evs[0].SessionID)
	}
}

// TestTrackerOffline takes the edge away from the page: events queue in
// localStorage across a reload, and once the network is back each is
// stored exactly once.
func TestTrackerOffline(t *testing.T) {
	s := startTrackerSite(t)
	ctx := browsertest.New(t, 1000, 800)
	run(t, ctx, chromedp.Navigate(s.site+"/shop"))
	loaded(t, ctx)
	s.waitEvents(1)

	// Chromium's own offline emulation lets sendBeacon through, so the
	// requests are dropped by the proxy; the browser is told it is offline
	// too, so that it fires "online" when it is back.
	offline := func(off bool) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			s.down.Store(off)
			_, err := cdp.Call(ctx, tg, network.OverrideNetworkState, network.OverrideNetworkStateParams{Offline: off, DownloadThroughput: -1, UploadThroughput: -1})
			return err
		})
	}
	run(t, ctx, offline(true), chromedp.Click(chromedp.ID("chat")))
	run(t, ctx, chromedp.Evaluate[chromedp.Void](`edgetrack("cta_click", "while offline")`))
	run(t, ctx, chromedp.Reload())
	loaded(t, ctx)
	// Every send has failed so far: all three are kept, across the reload.
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`JSON.parse(localStorage.getItem("et_q") || "[]").length === 3`)); err != nil {
		t.Fatal(err)
	}
	if evs, _ := s.events(); len(evs) != 1 {
		t.Fatalf("%d events stored while the edge was unreachable, want 1:\n%s", len(evs), describe(evs))
	}

	run(t, ctx, offline(false))
	evs, _ := s.waitEvents(4)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`(localStorage.getItem("et_q") || "[]") === "[]"`)); err != nil {
		t.Fatal(err)
	}
	// Sends that went out just before the queue emptied are stored once too.
	evs, _ = s.waitEvents(4)
	got := []string{}
	for _, e := range evs[1:] {
		got = append(got, e.Name+":"+fmt.Sprint(e.Data["element"]))
	}
	if strings.Join(got, ",") != "cta_click:chat bubble,cta_click:while offline,page_view:<nil>" {
		t.Errorf("after going online: %v", got)
	}
}

// TestTrackerRefusalsAndOptOut: an event the edge refuses (400) is dropped
// with a console warning while the rest of its batch is stored; after
// edgetrack('optout'), and for a browser with the edge's optout cookie,
// nothing is sent.
func TestTrackerRefusalsAndOptOut(t *testing.T) {
	s := startTrackerSite(t)
	ctx := browsertest.New(t, 1000, 800)
	console := chromedp.Console(ctx)
	run(t, ctx, chromedp.Navigate(s.site+"/shop"))
	loaded(t, ctx)
	run(t, ctx, chromedp.Evaluate[chromedp.Void](`edgetrack("cta_click", ""); edgetrack("cta_click", "fine")`))
	evs, _ := s.waitEvents(2)
	if evs[1].Data["element"] != "fine" {
		t.Fatalf("stored %v", describe(evs))
	}
	for m, err := range console {
		if err != nil {
			t.Fatal(err)
		}
		if m.Type == chromedp.ConsoleWarning && strings.Contains(m.Text, "refused") {
			if !strings.Contains(m.Text, "must not be empty") {
				t.Errorf("the warning does not say why: %s", m.Text)
			}
			break
		}
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`localStorage.getItem("et_q") === "[]"`)); err != nil {
		t.Fatal(err)
	}

	// Opted out by the page: nothing is queued, across reloads.
	run(t, ctx, chromedp.Evaluate[chromedp.Void](`edgetrack("optout")`), chromedp.Click(chromedp.ID("chat")), chromedp.Reload())
	loaded(t, ctx)
	run(t, ctx, chromedp.Click(chromedp.ID("chat")))
	if n := queued(t, ctx); n != 0 {
		t.Fatalf("%d events queued after opting out", n)
	}

	// Opted out by the edge's cookie: the edge serves the inert script.
	run(t, ctx, chromedp.Evaluate[chromedp.Void](`edgetrack("optin")`))
	run(t, ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.SetCookie, network.SetCookieParams{Name: "optout", Value: "1", URL: s.edge})
		return err
	}), chromedp.Reload())
	loaded(t, ctx)
	if !eval[bool](t, ctx, `window.edgetrack.optedOut === true`) {
		t.Fatal("with the optout cookie the edge served the tracker")
	}
	run(t, ctx, chromedp.Click(chromedp.ID("chat")))

	// Back in: the next event is stored, and none of the opted-out ones.
	run(t, ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.DeleteCookies, network.DeleteCookiesParams{Name: "optout", URL: s.edge})
		return err
	}), chromedp.Reload())
	loaded(t, ctx)
	evs, _ = s.waitEvents(3)
	if evs[2].Name != "page_view" {
		t.Fatalf("stored %v", describe(evs))
	}
}
