package edge_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/wasm/rules/cookiesync/cookiesynctest"
)

func uidCookie(resp *http.Response) string {
	for _, c := range resp.Cookies() {
		if c.Name == "uid" {
			return c.Value
		}
	}
	return ""
}

// TestCookieSyncEndToEnd runs both sync flows through an edge, forwards the
// matches to an aggregator and reads them back with /matches, in both
// directions; consent and opt-out are refused at the edge and store nothing.
func TestCookieSyncEndToEnd(t *testing.T) {
	dir := t.TempDir()
	agg := startAggregator(t, dir)

	cfg := edgeConfig(t)
	cfg.AggregatorURL = "http://" + agg.Addr()
	cfg.Token = "edge-token"
	cfg.Rules.Pull = false
	cfg.Forward.BatchMaxAge = config.Duration(20 * time.Millisecond)
	cfg.CookieSync.Partners = []string{"acme|" + cookiesynctest.AcmeSync + "|" + cookiesynctest.AcmeDone + "|sync.acme.example"}
	cfg.CookieSync.GDPRDefault = "not_applies"
	cfg.CookieSync.VendorID = cookiesynctest.VendorID
	e, _ := runEdge(t, cfg)
	edgeURL, aggURL := "http://"+e.Addr(), "http://"+agg.Addr()

	// init:local → sync:remote → done:local.
	resp, _ := do(t, "GET", edgeURL+"/cs/i?p=acme", "", nil)
	uid := uidCookie(resp)
	if resp.StatusCode != 302 || uid == "" {
		t.Fatalf("init: %d, uid %q", resp.StatusCode, uid)
	}
	resp, _ = do(t, "GET", edgeURL+"/cs/d?p=acme&pi=acme-77&ui="+uid, "", map[string]string{"Cookie": "uid=" + uid})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/gif" {
		t.Fatalf("done: %d", resp.StatusCode)
	}

	// init:remote → sync:local → done:remote, for a browser we have not seen.
	resp, _ = do(t, "GET", edgeURL+"/cookiesync/sync?p=acme&pi=acme-88", "", nil)
	uid2 := uidCookie(resp)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 302 || uid2 == "" || uid2 == uid || loc == nil || loc.Host != "sync.acme.example" {
		t.Fatalf("sync: %d uid %q Location %q", resp.StatusCode, uid2, resp.Header.Get("Location"))
	}

	// Consent and opt-out: refused at the edge, nothing stored.
	resp, _ = do(t, "GET", edgeURL+"/cs/s?p=acme&pi=acme-x&gdpr=1", "", nil)
	if resp.StatusCode != 400 || uidCookie(resp) != "" {
		t.Fatalf("gdpr=1 without consent: %d cookie %q, want 400 and no cookie", resp.StatusCode, uidCookie(resp))
	}
	noStorage := cookiesynctest.TCString([]int{2, 3}, []int{cookiesynctest.VendorID}, false, 100)
	resp, _ = do(t, "GET", edgeURL+"/cs/s?p=acme&pi=acme-x&gdpr=1&gdpr_consent="+noStorage, "", nil)
	if resp.StatusCode != 451 || uidCookie(resp) != "" {
		t.Fatalf("consent without purpose 1: %d cookie %q, want 451 and no cookie", resp.StatusCode, uidCookie(resp))
	}
	consent := cookiesynctest.TCString([]int{1, 2}, []int{cookiesynctest.VendorID}, true, 100)
	resp, _ = do(t, "GET", edgeURL+"/cs/s?p=acme&pi=acme-99&gdpr=1&gdpr_consent="+consent, "", map[string]string{"Cookie": "uid=" + uid})
	if resp.StatusCode != 302 {
		t.Fatalf("sync with consent: %d", resp.StatusCode)
	}
	resp, _ = do(t, "GET", edgeURL+"/cs/s?p=acme&pi=acme-optout", "", map[string]string{"Cookie": "optout=1; uid=" + uid})
	if resp.StatusCode != 200 || uidCookie(resp) != "" || resp.Header.Get("Location") != "" {
		t.Fatalf("opted out: %d cookie %q Location %q", resp.StatusCode, uidCookie(resp), resp.Header.Get("Location"))
	}

	matches := func(q string) (int, map[string]string) {
		resp, body := do(t, "GET", aggURL+"/matches?"+q, "", map[string]string{"Authorization": "Bearer query-token"})
		m := map[string]string{}
		json.Unmarshal([]byte(body), &m)
		return resp.StatusCode, m
	}
	// uid's latest acme match is acme-99 (after acme-77); uid2's is acme-88.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, m1 := matches("uid=" + uid)
		_, m2 := matches("uid=" + uid2)
		if m1["acme"] == "acme-99" && m2["acme"] == "acme-88" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("matches never arrived: uid %v, uid2 %v", m1, m2)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for pi, want := range map[string]string{"acme-77": uid, "acme-88": uid2, "acme-99": uid} {
		if code, m := matches("partner=acme&pi=" + pi); code != 200 || m["uid"] != want {
			t.Errorf("partner id %s: %d %v, want uid %s", pi, code, m, want)
		}
	}
	for _, pi := range []string{"acme-x", "acme-optout"} {
		if code, _ := matches("partner=acme&pi=" + pi); code != 404 {
			t.Errorf("refused sync %s was stored (%d)", pi, code)
		}
	}
	if code, _ := matches("uid=" + uid + "&partner=acme"); code != 400 {
		t.Errorf("mixed parameters: %d, want 400", code)
	}
}
