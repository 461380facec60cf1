package cookiesync_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/guest"
	"github.com/edgetrack/edgetrack/wasm/rules/cookiesync"
	"github.com/edgetrack/edgetrack/wasm/rules/cookiesync/cookiesynctest"
)

func newRule(tb testing.TB, cfg *abi.Config) abi.Rule {
	tb.Helper()
	r, err := cookiesync.New(cfg, guest.Native{})
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func TestVectorsNative(t *testing.T) {
	for _, v := range cookiesynctest.Vectors() {
		t.Run(v.Name, func(t *testing.T) {
			got := newRule(t, v.Config).Handle(v.Request)
			if diff := cookiesynctest.Diff(v, got); diff != "" {
				t.Fatal(diff)
			}
		})
	}
}

// TestVectorsOneInstance runs every vector of the default configuration on
// one rule, as an edge instance would, so that scratch space left by one
// call cannot leak into the next.
func TestVectorsOneInstance(t *testing.T) {
	r := newRule(t, cookiesynctest.Config())
	def := cookiesynctest.Config()
	for round := 0; round < 2; round++ {
		for _, v := range cookiesynctest.Vectors() {
			if !sameSettings(v.Config, def) {
				continue
			}
			if diff := cookiesynctest.Diff(v, r.Handle(v.Request)); diff != "" {
				t.Errorf("%s (round %d): %s", v.Name, round, diff)
			}
		}
	}
}

func sameSettings(a, b *abi.Config) bool {
	if len(a.Settings) != len(b.Settings) {
		return false
	}
	for i := range a.Settings {
		if a.Settings[i].Key != b.Settings[i].Key || strings.Join(a.Settings[i].Values, "\n") != strings.Join(b.Settings[i].Values, "\n") {
			return false
		}
	}
	return true
}

func TestPixel(t *testing.T) {
	if len(cookiesync.Pixel) != 43 || !cookiesynctest.Pixel(cookiesync.Pixel) {
		t.Fatalf("Pixel (%d bytes) is not a 1×1 transparent GIF", len(cookiesync.Pixel))
	}
}

// TestFlowInitLocal runs init:local → sync:remote → done:local, playing the
// partner between our two calls.
func TestFlowInitLocal(t *testing.T) {
	r := newRule(t, cookiesynctest.Config())
	init := r.Handle(cookiesynctest.Request("/cs/i", "p=acme"))
	if init.Status != 302 || len(init.Cookies) != 1 || len(init.Events) != 0 {
		t.Fatalf("init: %+v", init)
	}
	uid := init.Cookies[0].Value
	u, err := url.Parse(init.Location)
	if err != nil || u.Host != "sync.acme.example" || u.Query().Get("pi") != uid || u.Query().Get("p") != "edgetrack" {
		t.Fatalf("init: Location %q does not carry our uid %q to acme", init.Location, uid)
	}

	// Acme records the match and sends the browser to our done.
	const acmeID = "acme-user-77"
	done := r.Handle(cookiesynctest.Request("/cs/d", "p=acme&pi="+acmeID+"&ui="+url.QueryEscape(uid), "uid="+uid))
	if done.Status != 200 || done.Location != "" || len(done.Events) != 1 || !cookiesynctest.Pixel(done.Body) {
		t.Fatalf("done: %+v", done)
	}
	e := done.Events[0]
	if e.ID != "cs:acme:"+acmeID+":"+uid || e.Session != uid || string(e.Data) != `{"uid":"`+uid+`","partner":"acme","partner_id":"`+acmeID+`","flow":"done"}` {
		t.Fatalf("done event: %+v (data %s)", e, e.Data)
	}

	// Another browser (another uid) cannot complete this sync.
	other := r.Handle(cookiesynctest.Request("/cs/d", "p=acme&pi="+acmeID+"&ui="+url.QueryEscape(uid), "uid="+cookiesynctest.UID))
	if other.Status != 400 || len(other.Events) != 0 || len(other.Cookies) != 0 {
		t.Fatalf("done with another browser's ui: %+v", other)
	}
}

// TestFlowInitRemote runs init:remote → sync:local → done:remote.
func TestFlowInitRemote(t *testing.T) {
	r := newRule(t, cookiesynctest.Config())
	const acmeID = "acme-user-78"
	sync := r.Handle(cookiesynctest.Request("/cs/s", "p=acme&pi="+acmeID))
	if sync.Status != 302 || len(sync.Cookies) != 1 || len(sync.Events) != 1 {
		t.Fatalf("sync: %+v", sync)
	}
	uid := sync.Cookies[0].Value
	u, err := url.Parse(sync.Location)
	q := u.Query()
	// From acme's side, pi is its partner's id (ours) and ui its own user id.
	if err != nil || u.Host != "sync.acme.example" || u.Path != "/cs/d" || q.Get("pi") != uid || q.Get("ui") != acmeID {
		t.Fatalf("sync: Location %q does not carry uid %q and acme's id to acme's done", sync.Location, uid)
	}
	if e := sync.Events[0]; e.ID != "cs:acme:"+acmeID+":"+uid || !strings.Contains(string(e.Data), `"flow":"sync"`) {
		t.Fatalf("sync event: %+v", e)
	}
}

func TestConfigErrors(t *testing.T) {
	cw := cookiesynctest.ConfigWith
	partners := func(p ...string) *abi.Config {
		c := cookiesynctest.Config()
		c.Settings[0].Values = p
		return c
	}
	const ok = "https://sync.acme.example/s?pi={uid}"
	const okDone = "https://sync.acme.example/d?pi={uid}&ui={pi}"
	acme := func(sync, done, hosts string) *abi.Config {
		return partners("acme|" + sync + "|" + done + "|" + hosts)
	}
	for _, c := range []struct {
		name string
		cfg  *abi.Config
		want string // in the error
	}{
		{"no partners", cw("partners", ""), "partners: none configured"},
		{"too few fields", partners("acme|" + ok + "|" + okDone), "partners[0]: want name|sync_url"},
		{"bad name", partners("ac me|" + ok + "|" + okDone + "|sync.acme.example"), "partners[0]: name"},
		{"name with colon", partners("a:b|" + ok + "|" + okDone + "|sync.acme.example"), "partners[0]: name"},
		{"names equal ignoring case", partners("acme|"+ok+"|"+okDone+"|sync.acme.example", "ACME|"+ok+"|"+okDone+"|sync.acme.example"), "partners[1]: partner \"ACME\" is configured twice"},
		{"http sync_url", acme("http://sync.acme.example/s?pi={uid}", okDone, "sync.acme.example"), "sync_url: \"http://sync.acme.example/s?pi={uid}\" is http"},
		{"relative sync_url", acme("/s?pi={uid}", okDone, "sync.acme.example"), "sync_url: \"/s?pi={uid}\" is not an absolute https URL"},
		{"protocol-relative done_url", acme(ok, "//sync.acme.example/d?pi={uid}", "sync.acme.example"), "done_url:"},
		{"other scheme", acme("javascript://sync.acme.example/%0aalert({uid})", okDone, "sync.acme.example"), "sync_url:"},
		{"host not allowed", acme("https://sync.other.example/s?pi={uid}", okDone, "sync.acme.example"), "not among the partner's allowed hosts"},
		{"port not allowed", acme("https://sync.acme.example:8443/s?pi={uid}", okDone, "sync.acme.example"), "\"sync.acme.example:8443\""},
		{"placeholder in host", acme("https://{uid}.acme.example/s", okDone, "sync.acme.example"), "placeholder in its scheme or host"},
		{"placeholder after host", acme("https://sync.acme.example{uid}/s", okDone, "sync.acme.example"), "placeholder in its scheme or host"},
		{"placeholder in scheme", acme("{uid}://sync.acme.example/s", okDone, "sync.acme.example"), "sync_url:"},
		{"placeholder in port", acme("https://sync.acme.example:{pi}/s?x={uid}", okDone, "sync.acme.example"), "placeholder in its scheme or host"},
		{"unknown placeholder", acme("https://sync.acme.example/s?pi={user}", okDone, "sync.acme.example"), "not {uid} or {pi}"},
		{"stray brace", acme("https://sync.acme.example/s?pi={uid}}", okDone, "sync.acme.example"), "not {uid} or {pi}"},
		{"userinfo", acme("https://sync.acme.example@evil.example/s?pi={uid}", okDone, "sync.acme.example,evil.example"), "userinfo"},
		{"backslash", acme("https://sync.acme.example\\@evil.example/s?pi={uid}", okDone, "sync.acme.example"), "not allowed in a URL template"},
		{"space", acme("https://sync.acme.example/s?pi={uid} x", okDone, "sync.acme.example"), "not allowed in a URL template"},
		{"sync_url without uid", acme("https://sync.acme.example/s", okDone, "sync.acme.example"), "sync_url: must contain {uid}"},
		{"sync_url with pi", acme("https://sync.acme.example/s?a={uid}&b={pi}", okDone, "sync.acme.example"), "sync_url: may not contain {pi}"},
		{"done_url without uid", acme(ok, "https://sync.acme.example/d?ui={pi}", "sync.acme.example"), "done_url: must contain {uid}"},
		{"bad allowed host", acme(ok, okDone, "sync.acme.example,evil example"), "allowed host \"evil example\""},
		{"empty allowed hosts", acme(ok, okDone, ""), "allowed host \"\""},
		{"allow_http", cw("allow_http", "yes"), "allow_http: \"yes\""},
		{"cookie_max_age zero", cw("cookie_max_age", "0"), "cookie_max_age: \"0\""},
		{"cookie_max_age negative", cw("cookie_max_age", "-5"), "cookie_max_age"},
		{"cookie_max_age over 400 days", cw("cookie_max_age", "34560001"), "cookie_max_age"},
		{"cookie_max_age not a number", cw("cookie_max_age", "1y"), "cookie_max_age"},
		{"cookie_domain", cw("cookie_domain", "exa mple.com"), "cookie_domain: \"exa mple.com\""},
		{"cookie_domain empty label", cw("cookie_domain", "a..example"), "cookie_domain"},
		{"cookie_domain with attribute", cw("cookie_domain", "example.com; Secure"), "cookie_domain"},
		{"vendor_id zero", cw("vendor_id", "0"), "vendor_id: \"0\""},
		{"vendor_id too large", cw("vendor_id", "65536"), "vendor_id"},
		{"vendor_id not a number", cw("vendor_id", "acme"), "vendor_id"},
		{"gdpr_default missing", cw("gdpr_default", ""), "gdpr_default: is required"},
		{"gdpr_default unknown", cw("gdpr_default", "maybe"), "gdpr_default: \"maybe\""},
		{"applies without vendor_id", cw("gdpr_default", "applies", "vendor_id", ""), "vendor_id: is required when gdpr_default is applies"},
		{"max_id_bytes zero", cw("max_id_bytes", "0"), "max_id_bytes: \"0\""},
		{"max_id_bytes too large", cw("max_id_bytes", "4096"), "max_id_bytes"},
		{"unknown setting", cw("cookie_maxage", "10"), "\"cookie_maxage\": unknown setting"},
		{"setting twice", &abi.Config{Settings: append(cookiesynctest.Config().Settings,
			abi.Setting{Key: "vendor_id", Values: []string{"43"}})}, "vendor_id: is given twice"},
		{"two values", &abi.Config{Settings: append(cookiesynctest.Config().Settings[:2:2],
			abi.Setting{Key: "gdpr_default", Values: []string{"applies", "not_applies"}})}, "gdpr_default: has 2 values"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := cookiesync.New(c.cfg, guest.Native{})
			if err == nil {
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "cookiesync: ") {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestConfigReportsAllProblems(t *testing.T) {
	cfg := cookiesynctest.ConfigWith("gdpr_default", "maybe", "max_id_bytes", "x", "cookie_max_age", "0", "vendor_id", "")
	cfg.Settings[0].Values = append(cfg.Settings[0].Values, "bad")
	_, err := cookiesync.New(cfg, guest.Native{})
	if err == nil {
		t.Fatal("New succeeded")
	}
	for _, s := range []string{"gdpr_default", "max_id_bytes", "cookie_max_age", "partners[2]"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %s", err, s)
		}
	}
}

func TestConfigAccepts(t *testing.T) {
	for name, cfg := range map[string]*abi.Config{
		"defaults": cookiesynctest.Config(),
		"http with allow_http": cookiesynctest.ConfigWith("allow_http", "true", "partners",
			"acme|http://sync.acme.example/s?pi={uid}|https://sync.acme.example/d?pi={uid}|sync.acme.example"),
		"port": cookiesynctest.ConfigWith("partners",
			"acme|https://sync.acme.example:8443/s?pi={uid}|https://sync.acme.example:8443/d/{pi}?u={uid}|sync.acme.example:8443"),
		"upper-case host": cookiesynctest.ConfigWith("partners",
			"acme|https://Sync.Acme.Example/s?pi={uid}|https://sync.acme.example/d#{uid}|SYNC.acme.example"),
		"escapes in the template": cookiesynctest.ConfigWith("partners",
			"acme|https://sync.acme.example/s?r=https%3A%2F%2Fx&pi={uid}|https://sync.acme.example/d?pi={uid}|sync.acme.example"),
		"everything": cookiesynctest.ConfigWith("gdpr_default", "applies", "cookie_domain", "track.example.com",
			"cookie_max_age", "34560000", "max_id_bytes", "1024", "allow_http", "false"),
	} {
		if _, err := cookiesync.New(cfg, guest.Native{}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestAllowHTTPRedirect(t *testing.T) {
	r := newRule(t, cookiesynctest.ConfigWith("allow_http", "true", "partners",
		"acme|http://sync.acme.example:8080/s?pi={uid}|http://sync.acme.example:8080/d?pi={uid}|sync.acme.example:8080"))
	v := r.Handle(cookiesynctest.Request("/cs/i", "p=acme", "uid="+cookiesynctest.UID))
	if v.Status != 302 || v.Location != "http://sync.acme.example:8080/s?pi="+cookiesynctest.UID {
		t.Fatalf("%+v", v)
	}
}

// TestAllocs checks that a call allocates nothing once the scratch space is
// sized: under TinyGo every allocation is slow (docs/RATIONALE.md).
func TestAllocs(t *testing.T) {
	r := newRule(t, cookiesynctest.Config())
	for _, c := range []struct{ name, path, query string }{
		{"init", "/cs/i", "p=acme"},
		{"sync", "/cs/s", "p=beta&pi=x"},
		{"sync with consent", "/cs/s", "p=acme&pi=x&gdpr=1&gdpr_consent=" + cookiesynctest.TCString([]int{1}, []int{7, 42, 1000}, true, 0)},
		{"done", "/cs/d", "p=acme&pi=x&ui=" + cookiesynctest.UID},
		{"unknown partner", "/cs/i", "p=evil"},
		{"steering", "/cs/s", "p=acme&pi=%2F%2Fevil.example"},
		{"consent refused", "/cs/s", "p=acme&pi=x&gdpr=1&gdpr_consent=" + cookiesynctest.TCString([]int{1}, []int{7, 1000}, true, 0)},
	} {
		req := cookiesynctest.Request(c.path, c.query, "a=b; uid="+cookiesynctest.UID)
		r.Handle(req) // size the scratch space
		if n := testing.AllocsPerRun(100, func() { r.Handle(req) }); n != 0 {
			t.Errorf("%s: %.0f allocations per call, want 0", c.name, n)
		}
	}
	// A new uid is hex-encoded into the rule's own buffer.
	req := cookiesynctest.Request("/cs/i", "p=acme")
	if n := testing.AllocsPerRun(100, func() { r.Handle(req) }); n != 0 {
		t.Errorf("new uid: %.0f allocations per call, want 0", n)
	}
}

func BenchmarkHandle(b *testing.B) {
	consent := cookiesynctest.TCString([]int{1, 2}, []int{7, cookiesynctest.VendorID, 1000}, true, 0)
	for _, c := range []struct{ name, path, query string }{
		{"init", "/cs/i", "p=acme"},
		{"sync", "/cs/s", "p=acme&pi=" + cookiesynctest.PartnerID},
		{"sync-consent", "/cs/s", "p=acme&pi=" + cookiesynctest.PartnerID + "&gdpr=1&gdpr_consent=" + consent},
		{"done", "/cs/d", "p=acme&pi=" + cookiesynctest.PartnerID + "&ui=" + cookiesynctest.UID},
		{"steering", "/cs/s", "p=acme&pi=%2F%2Fevil.example"},
	} {
		b.Run(c.name, func(b *testing.B) {
			r := newRule(b, cookiesynctest.Config())
			req := cookiesynctest.Request(c.path, c.query, "uid="+cookiesynctest.UID)
			b.ReportAllocs()
			for b.Loop() {
				r.Handle(req)
			}
		})
	}
}

func FuzzHandle(f *testing.F) {
	for _, v := range cookiesynctest.Vectors() {
		if sameSettings(v.Config, cookiesynctest.Config()) {
			cookie := ""
			for _, h := range v.Request.Headers {
				cookie = h.Value
			}
			f.Add(v.Request.Path, v.Request.Query, cookie)
		}
	}
	r := newRule(f, cookiesynctest.Config())
	f.Fuzz(func(t *testing.T, path, query, cookie string) {
		req := cookiesynctest.Request(path, query, cookie)
		v := r.Handle(req)
		switch v.Status {
		case 200, 302, 400, 404, 405, 451:
		default:
			t.Fatalf("status %d", v.Status)
		}
		if (v.Status == 302) != (v.Location != "") {
			t.Fatalf("status %d with Location %q", v.Status, v.Location)
		}
		if v.Location != "" {
			u, err := url.Parse(v.Location)
			if err != nil || u.Scheme != "https" || u.User != nil || !allowed(u.Host) {
				t.Fatalf("Location %q is not on an allowed host", v.Location)
			}
			if strings.ContainsAny(v.Location, "\r\n\t \\@") {
				t.Fatalf("Location %q has a byte it must not", v.Location)
			}
		}
		if len(v.Events) > 1 || len(v.Cookies) > 1 {
			t.Fatalf("%d events, %d cookies", len(v.Events), len(v.Cookies))
		}
		if len(v.Events) == 1 {
			e := v.Events[0]
			if v.Status != 302 && v.Status != 200 || len(v.Cookies) != 1 || e.Session != v.Cookies[0].Value {
				t.Fatalf("event %+v with status %d", e, v.Status)
			}
			if parts := strings.Split(e.ID, ":"); len(parts) != 4 || parts[1] != "acme" && parts[1] != "beta" {
				t.Fatalf("event id %q", e.ID)
			}
		}
		if len(v.Cookies) == 1 {
			c := v.Cookies[0]
			if v.Status >= 400 || c.Value == "" || len(c.Value) > 64 || strings.ContainsAny(c.Value, ";, \"\r\n") || !c.Secure || !c.HTTPOnly {
				t.Fatalf("cookie %+v with status %d", c, v.Status)
			}
		}
		if v.Status != 302 && !(v.Status == 200 && len(v.Events) == 1) && v.Message == "" {
			t.Fatalf("status %d without a reason", v.Status)
		}
	})
}

func allowed(host string) bool {
	for _, h := range cookiesynctest.AllowedHosts {
		if host == h {
			return true
		}
	}
	return false
}
