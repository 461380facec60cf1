package cookiesync

import (
	"net/url"
	"strings"
	"testing"

	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/guest"
	"github.com/edgetrack/edgetrack/wasm/rules/cookiesync/cookiesynctest"
)

// TestLocationCheck breaks a validated template behind New's back: the
// re-parse of the built Location must catch it and answer the pixel.
func TestLocationCheck(t *testing.T) {
	for name, breakIt := range map[string]func(*template){
		"host differs":         func(t *template) { t.host = "other.example" },
		"scheme differs":       func(t *template) { t.scheme = "http" },
		"literal to elsewhere": func(t *template) { t.lits[0] = "https://evil.example/s?p=edgetrack&pi=" },
		"userinfo":             func(t *template) { t.lits[0] = "https://sync.acme.example@evil.example/?pi=" },
		"control byte":         func(t *template) { t.lits[0] = "https://sync.acme.example/\r\n?pi=" },
	} {
		t.Run(name, func(t *testing.T) {
			rule, err := New(cookiesynctest.Config(), guest.Native{})
			if err != nil {
				t.Fatal(err)
			}
			r := rule.(*Rule)
			breakIt(&r.s.partners[0].sync)
			v := r.Handle(cookiesynctest.Request("/cs/i", "p=acme", "uid="+cookiesynctest.UID))
			if v.Status != 200 || v.Location != "" || len(v.Cookies) != 0 || !strings.HasPrefix(v.Message, ReasonLocationCheck) {
				t.Fatalf("%+v", v)
			}
		})
	}
}

func TestEscape(t *testing.T) {
	for _, s := range []string{"", "abc", "a b", "a+b", "//evil", "\r\n", "é", "~._-", "%", "a&b=c#d"} {
		if got, want := string(appendQueryEscape(nil, s)), url.QueryEscape(s); got != want {
			t.Errorf("escape %q = %q, want %q", s, got, want)
		}
	}
}

// FuzzQuery checks the query parser against net/url's, and the escaping
// against url.QueryEscape.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{"p=acme&pi=x", "p=a%20b&pi=%zz", "p&pi=&ui==", "%70=x", "a=b&&p=+", "gdpr=1&gdpr_consent=CP3w"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if got, want := string(appendQueryEscape(nil, raw)), url.QueryEscape(raw); got != want {
			t.Fatalf("escape %q = %q, want %q", raw, got, want)
		}
		var q query
		buf := parseQuery(raw, make([]byte, 0, len(raw)), &q)
		if cap(buf) != len(raw) {
			t.Fatalf("decoding buffer grew from %d to %d", len(raw), cap(buf))
		}
		vals, err := url.ParseQuery(raw)
		if err != nil || strings.Contains(raw, ";") {
			return // net/url skips pairs it cannot decode; the rule keeps them raw
		}
		for key, p := range map[string]param{"p": q.p, "pi": q.pi, "ui": q.ui, "gdpr": q.gdpr, "gdpr_consent": q.consent} {
			v := vals[key]
			if p.n != len(v) || len(v) > 0 && p.value != v[len(v)-1] {
				t.Fatalf("%q: %s = %q (%d times), net/url %q", raw, key, p.value, p.n, v)
			}
		}
	})
}

func TestReadCookies(t *testing.T) {
	req := &abi.Request{Headers: []abi.Header{
		{Name: "cookie", Value: " a=1 ;uid = first ; uid=second"},
		{Name: "cookie", Value: "optout"},
	}}
	var c cookies
	readCookies(req, &c)
	if c.uid != "first" || !c.hasUID || !c.optOut {
		t.Fatalf("%+v", c)
	}
}

func TestSplitOrigin(t *testing.T) {
	for _, c := range []struct {
		in           string
		scheme, host string // "" when refused
	}{
		{"https://sync.acme.example/s?pi=1", "https", "sync.acme.example"},
		{"https://sync.acme.example", "https", "sync.acme.example"},
		{"http://sync.acme.example:8080?x", "http", "sync.acme.example:8080"},
		{"https://sync.acme.example#frag", "https", "sync.acme.example"},
		{"https://[::1]:8443/x", "https", "[::1]:8443"},
		{"https://sync.acme.example?next=https://evil.example/", "https", "sync.acme.example"},
		{"https://sync.acme.example@evil.example/", "", ""},
		{"https://sync.acme.example\\@evil.example/", "", ""},
		{"https://sync.acme.example\\evil.example/", "", ""},
		{"https://evil.example\r\n/", "", ""},
		{"https://sync.acme.example /", "", ""},
		{"HTTPS://sync.acme.example/", "", ""},
		{"//sync.acme.example/", "", ""},
		{"https:sync.acme.example/", "", ""},
		{"https:///path", "", ""},
	} {
		scheme, host, ok := splitOrigin(c.in)
		if ok != (c.scheme != "") || scheme != c.scheme || host != c.host {
			t.Errorf("splitOrigin(%q) = %q, %q, %v; want %q, %q", c.in, scheme, host, ok, c.scheme, c.host)
		}
	}
}

// FuzzSplitOrigin checks that whenever the rule's reader accepts an http(s)
// URL with a plain host, net/url reads the same scheme and host and no
// userinfo.
func FuzzSplitOrigin(f *testing.F) {
	for _, s := range []string{
		"https://sync.acme.example/s?x=1", "https://a.example@evil/", "https://a.example\\@evil/", "https://a.example#@evil/",
		"https://a.example?@evil", "http://[::1]:8080/x", "https://a.example:443", "https://a.example/%2F%2Fevil",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		scheme, host, ok := splitOrigin(s)
		if !ok || scheme != "https" && scheme != "http" || !validHostPort(strings.ToLower(host)) {
			return
		}
		u, err := url.Parse(s)
		if err != nil {
			return // net/url refuses more (bad escapes in the path); that is no disagreement on the host
		}
		if u.Scheme != scheme || !strings.EqualFold(u.Host, host) || u.User != nil || u.Opaque != "" {
			t.Fatalf("%q: rule reads %s://%s, net/url %s://%s (user %v, opaque %q)", s, scheme, host, u.Scheme, u.Host, u.User, u.Opaque)
		}
	})
}

// TestTemplatesAgreeWithNetURL checks the scheme and host New records for
// each template against net/url's reading of the template with sample ids.
func TestTemplatesAgreeWithNetURL(t *testing.T) {
	rule, err := New(cookiesynctest.ConfigWith("allow_http", "true", "partners",
		"acme|http://sync.acme.example:8080/s?pi={uid}|https://Sync.Acme.Example/d/{pi}?u={uid}#x|sync.acme.example:8080,sync.acme.example"),
		guest.Native{})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := New(cookiesynctest.Config(), guest.Native{})
	for _, r := range []*Rule{rule.(*Rule), base.(*Rule)} {
		for _, p := range r.s.partners {
			for _, tm := range []template{p.sync, p.done} {
				sample := strings.NewReplacer("{uid}", "x", "{pi}", "y").Replace(tm.raw)
				u, err := url.Parse(sample)
				if err != nil || u.Scheme != tm.scheme || strings.ToLower(u.Host) != tm.host {
					t.Errorf("%s: rule %s://%s, net/url %v %v", tm.raw, tm.scheme, tm.host, u, err)
				}
			}
		}
	}
}
