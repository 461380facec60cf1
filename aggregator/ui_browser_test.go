package aggregator_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/edgetrack/edgetrack/internal/aggtest"
	"github.com/edgetrack/edgetrack/internal/browsertest"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// ScreenshotsVar names a directory for the dashboard test's screenshots
// (docs/img is where the README's come from:
// EDGETRACK_TEST_SCREENSHOTS=$PWD/docs/img go test ./aggregator -run TestDashboard);
// without it they go to a temporary directory.
const screenshotsVar = "EDGETRACK_TEST_SCREENSHOTS"

// dashboardEvents are a few visits of the last hour and two cookie-sync
// matches.
func dashboardEvents(now time.Time) []*eventpb.Event {
	var evs []*eventpb.Event
	n := 0
	add := func(minutesAgo int, session, category, name, data string) {
		n++
		at := now.Add(-time.Duration(minutesAgo) * time.Minute)
		evs = append(evs, &eventpb.Event{
			Id: fmt.Sprintf("eye:%032d", n), Source: eventpb.Source_SOURCE_EYE, Session: session, Category: category, Name: name,
			ClientTime: at.UnixNano(), ReceivedAt: at.Add(80 * time.Millisecond).UnixNano(),
			Data: []byte(data), Ip: "192.0.2.7", Edge: "edge-1", Rule: "eye@0123456789ab",
		})
	}
	view := func(path string) string { return `{"host":"www.example.com","path":"` + path + `"}` }
	click := func(el string) string { return `{"host":"www.example.com","path":"/pricing","element":"` + el + `"}` }
	add(55, "visitor-a", "page_interaction", "page_view", view("/"))
	add(54, "visitor-a", "page_interaction", "page_view", view("/pricing"))
	add(53, "visitor-a", "page_interaction", "cta_click", click("chat bubble"))
	add(50, "visitor-a", "form_interaction", "submit", `{"host":"www.example.com","path":"/signup","form":{"first_name":"Ada","plan":"pro"}}`)
	for i := 0; i < 6; i++ {
		s := fmt.Sprintf("visitor-%c", 'b'+i)
		add(45-7*i, s, "page_interaction", "page_view", view("/"))
		add(44-7*i, s, "page_interaction", "page_view", view("/pricing"))
		if i%2 == 0 {
			add(43-7*i, s, "page_interaction", "cta_click", click("buy now"))
		}
	}
	add(3, "visitor-h", "form_interaction", "submit", `{"host":"www.example.com","path":"/signup","form":{"first_name":"Grace"}}`)
	for _, m := range [][2]string{{"acme", "acme-77"}, {"beta", "b-1"}} {
		at := now.Add(-40 * time.Minute)
		evs = append(evs, &eventpb.Event{
			Id: "cs:" + m[0] + ":" + m[1] + ":visitor-a", Source: eventpb.Source_SOURCE_COOKIESYNC, Session: "visitor-a",
			Category: "cookiesync", Name: "match", ReceivedAt: at.UnixNano(), Data: []byte(`{"partner":"` + m[0] + `"}`),
			Edge: "edge-1", Rule: "cookiesync@0123456789ab",
		})
	}
	return evs
}

// TestDashboardInChromium logs in to /ui/ in Chromium and uses every page:
// the overview chart draws the counts /stats gives, filters narrow the
// explorer, pages turn, a session's timeline and both match lookups show,
// and a bad token and a bad parameter show the API's error. It saves a
// screenshot of each page.
func TestDashboardInChromium(t *testing.T) {
	agg := aggtest.Start(t, t.TempDir())
	now := time.Now().UTC()
	evs := dashboardEvents(now)
	agg.Ingest(evs...)
	shots := os.Getenv(screenshotsVar)
	if shots == "" {
		shots = t.TempDir()
	}
	ctx := browsertest.New(t, 1200, 900)
	console := chromedp.Console(ctx)
	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(js string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			shown, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + " error: " + document.getElementById("error").textContent`))
			t.Fatalf("waiting for %s: %v (at %s)", js, err, shown)
		}
	}
	eval := func(js string, v any) {
		t.Helper()
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](js))
		if err == nil {
			err = json.Unmarshal(raw, v)
		}
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		var s string
		eval(`document.querySelector(`+jsString(sel)+`).textContent`, &s)
		return s
	}
	shot := func(name string, viewport ...bool) {
		t.Helper()
		take := chromedp.FullScreenshot(100)
		if len(viewport) > 0 {
			take = chromedp.CaptureScreenshot()
		}
		png, err := chromedp.Run(ctx, take)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(shots, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// A token of no kind is refused, and the page says so.
	do(chromedp.Navigate(agg.URL+"/ui/"), chromedp.WaitVisible(chromedp.ID("token")))
	var navShown bool
	if eval(`document.getElementById("nav").offsetParent !== null`, &navShown); navShown {
		t.Error("the page links show before logging in")
	}
	shot("login.png")
	do(chromedp.SendKeys(chromedp.ID("token"), "not-a-token"), chromedp.Click(chromedp.CSS("#login-form button")))
	wait(`!document.getElementById("error").hidden`)
	if e := text("#error"); !strings.Contains(e, "refused") || !strings.Contains(e, "403") {
		t.Fatalf("a bad token shows %q", e)
	}
	var stored string
	if eval(`sessionStorage.getItem("edgetrack_query_token") || ""`, &stored); stored != "" {
		t.Fatal("a refused token was kept")
	}

	// Overview: the chart and the totals are /stats's counts.
	do(chromedp.Evaluate[chromedp.Void](`document.getElementById("token").value = ""`), chromedp.SendKeys(chromedp.ID("token"), aggtest.QueryToken), chromedp.Click(chromedp.CSS("#login-form button")))
	wait(`document.getElementById("grand-total").dataset.total !== undefined && !!window.edgetrackUI.chart`)
	want := statsTotals(t, agg.URL, now)
	var shown map[string]int
	eval(`Object.fromEntries([...document.querySelectorAll("#totals tbody tr")].map(r => [r.querySelector("th").textContent, +r.querySelector("td").dataset.total]))`, &shown)
	if fmt.Sprint(shown) != fmt.Sprint(want) {
		t.Errorf("totals shown %v, /stats gives %v", shown, want)
	}
	var grand, charted int
	eval(`+document.getElementById("grand-total").dataset.total`, &grand)
	eval(`window.edgetrackUI.chart.data.slice(1).flat().reduce((a, b) => a + b, 0)`, &charted)
	if grand != len(evs) || charted != len(evs) {
		t.Errorf("grand total %d, charted %d; want %d", grand, charted, len(evs))
	}
	// The lines are drawn: the canvas has pixels of the first series' colour.
	var drawn int
	eval(`(() => { const c = document.querySelector("#chart canvas"), d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
		let n = 0; for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - 37) < 30 && Math.abs(d[i+1] - 99) < 30 && Math.abs(d[i+2] - 235) < 30 && d[i+3] > 128) n++; return n; })()`, &drawn)
	if drawn < 20 {
		t.Errorf("%d pixels of the first line's colour on the chart: it is blank", drawn)
	}
	shot("overview.png")

	// Explorer: all events, then a filter narrows them.
	do(chromedp.Click(chromedp.CSS(`#nav a[href="#events"]`)))
	wait(`document.getElementById("events-count").dataset.count == ` + fmt.Sprint(len(evs)))
	do(chromedp.SendKeys(chromedp.CSS(`#events-form [name=category]`), "form_interaction"), chromedp.Click(chromedp.CSS("#events-form button")))
	wait(`document.getElementById("events-count").dataset.count == 2`)
	var cats []string
	eval(`[...document.querySelectorAll("#events-table tbody tr td:nth-child(2)")].map(td => td.textContent)`, &cats)
	if strings.Join(cats, ",") != "form_interaction,form_interaction" {
		t.Errorf("filtered rows: %v", cats)
	}
	do(chromedp.Click(chromedp.CSS(`#events-table tbody tr:first-child button`)))
	wait(`!document.getElementById("event-json").hidden`)
	if j := text("#event-json pre"); !strings.Contains(j, `"first_name": "Grace"`) {
		t.Errorf("the event's JSON: %s", j)
	}
	shot("events.png")

	// Pages of 10: the third has the rest, and none after it.
	do(chromedp.Navigate(agg.URL + "/ui/#events?page_size=10"))
	wait(`document.querySelectorAll("#events-table tbody tr").length === 10 && !document.getElementById("events-next").disabled`)
	do(chromedp.Click(chromedp.ID("events-next")))
	wait(`document.getElementById("events-table").dataset.page === "2"`)
	do(chromedp.Click(chromedp.ID("events-next")))
	wait(fmt.Sprintf(`document.querySelectorAll("#events-table tbody tr").length === %d && document.getElementById("events-next").disabled`, len(evs)-20))
	do(chromedp.Click(chromedp.ID("events-prev")))
	wait(`document.getElementById("events-table").dataset.page === "2" && document.querySelectorAll("#events-table tbody tr").length === 10`)

	// A parameter the API refuses: its error, not an empty table.
	do(chromedp.Navigate(agg.URL + "/ui/#events?start_time=yesterday"))
	wait(`!document.getElementById("error").hidden`)
	if e := text("#error"); !strings.Contains(e, "400") || !strings.Contains(e, "start_time") {
		t.Errorf("a bad start_time shows %q", e)
	}

	// Session timeline, oldest first.
	do(chromedp.Navigate(agg.URL + "/ui/#session?session_id=visitor-a"))
	wait(`document.querySelectorAll("#timeline li").length === 6`)
	var steps []string
	eval(`[...document.querySelectorAll("#timeline li strong")].map(s => s.textContent)`, &steps)
	if steps[0] != "page_interaction / page_view" || steps[3] != "form_interaction / submit" {
		t.Errorf("timeline %v", steps)
	}
	shot("session.png")

	// Matches, both ways.
	do(chromedp.Navigate(agg.URL+"/ui/#matches"), chromedp.SendKeys(chromedp.CSS(`#matches-uid [name=uid]`), "visitor-a"), chromedp.Click(chromedp.CSS("#matches-uid button")))
	wait(`!document.getElementById("matches-table").hidden`)
	if m := text("#matches-table tbody"); m != "acmeacme-77betab-1" {
		t.Errorf("matches of visitor-a: %q", m)
	}
	shot("matches.png")
	do(chromedp.Navigate(agg.URL + "/ui/#matches?partner=beta&pi=b-1"))
	wait(`document.querySelector("#matches-table tbody").textContent === "our uidvisitor-a"`)

	// A phone-sized screen: nothing wider than it.
	do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)), chromedp.Navigate(agg.URL+"/ui/#overview"))
	wait(`!!window.edgetrackUI.chart && document.getElementById("grand-total").dataset.total == ` + fmt.Sprint(len(evs)))
	shot("overview-phone.png", true)
	var wide []string
	eval(`[...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).map(e => e.tagName + "#" + e.id + "." + e.className + " " + Math.round(e.getBoundingClientRect().right))`, &wide)
	if len(wide) > 0 {
		t.Errorf("wider than a phone's screen (%d px): %v", 390, wide)
	}

	// Keyboard: the page links are reachable with Tab and follow with Enter.
	do(chromedp.Focus(chromedp.CSS(`#nav a[href="#session"]`)), chromedp.KeyEvent("\r"))
	wait(`location.hash === "#session" && !document.getElementById("page-session").hidden`)

	// No script errors and nothing the content security policy blocked; the
	// failed requests are the refused token and the bad start_time.
	do(chromedp.Evaluate[chromedp.Void](`console.log("end of test")`))
	for m, err := range console {
		if err != nil {
			t.Fatal(err)
		}
		if m.Text == "end of test" {
			break
		}
		if m.IsException() || strings.Contains(m.Text, "Content Security Policy") ||
			m.Type == chromedp.ConsoleError && !strings.Contains(m.Text, "403") && !strings.Contains(m.Text, "400") {
			t.Errorf("console: %s (%s)", m.Text, m.URL)
		}
	}
}

// statsTotals asks /stats for the counts of the last day, per category and
// name, labelled as the dashboard labels them.
func statsTotals(t *testing.T, base string, now time.Time) map[string]int {
	t.Helper()
	q := url.Values{"start_time": {now.Add(-25 * time.Hour).Format(time.RFC3339)}, "end_time": {now.Add(time.Hour).Format(time.RFC3339)}, "bucket": {"hour"}}
	req, _ := http.NewRequest("GET", base+"/stats?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+aggtest.QueryToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var stats struct {
		Series []struct {
			Category, Name string
			Points         []struct{ Count int }
		}
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &stats) != nil {
		t.Fatalf("/stats: %d %s", resp.StatusCode, b)
	}
	out := map[string]int{}
	for _, s := range stats.Series {
		for _, p := range s.Points {
			out[s.Category+" / "+s.Name] += p.Count
		}
	}
	return out
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestDashboardRulesInChromium opens the dashboard on the admin listener:
// with an admin token its rules page lists every rule's versions, which is
// active and what each edge reported running; on the public listener it
// says where to go instead.
func TestDashboardRulesInChromium(t *testing.T) {
	r := start(t, testConfig(t))
	v1 := withCustomSection(builtinHamustro(t), "v1")
	r.upload("hamustro", v1, nil).wantStatus(t, http.StatusCreated)
	r.activate("hamustro", sha(v1)).wantStatus(t, http.StatusOK)
	report := fmt.Sprintf(`{"edge":"edge-paris","rules":{"hamustro":{"active":%q},"eye":{"active":"builtin"}}}`, sha(v1))
	r.do("POST", r.base+"/v1/rules/status", edgeToken, []byte(report), "Content-Type", "application/json").wantStatus(t, http.StatusNoContent)

	ctx := browsertest.New(t, 1200, 900)
	wait := func(js string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			shown, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("error").textContent + " | " + document.getElementById("rules").textContent`))
			t.Fatalf("waiting for %s: %v (page: %s)", js, err, shown)
		}
	}
	login := func(base, token string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ui/#rules"),
			chromedp.SendKeys(chromedp.CSS(`#rules-form [name=admin_token]`), token),
			chromedp.Click(chromedp.CSS("#rules-form button"))); err != nil {
			t.Fatal(err)
		}
	}

	login(r.base, adminToken)
	wait(`!document.getElementById("error").hidden && document.getElementById("error").textContent.includes("admin listener")`)

	login(r.admin, queryToken) // a token of another kind
	wait(`document.getElementById("error").textContent.includes("403")`)

	login(r.admin, adminToken)
	wait(`document.querySelectorAll("#rules h2").length === 3`)
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("rules").innerText`))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hamustro: " + sha(v1)[:12] + "… active", "eye: built-in active", "cookiesync: built-in active", "edge-paris"} {
		if !strings.Contains(text, want) {
			t.Errorf("the rules page lacks %q:\n%s", want, text)
		}
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv(screenshotsVar); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, "rules.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
