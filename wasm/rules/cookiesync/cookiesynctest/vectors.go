// Package cookiesynctest holds the cookie-sync rule's test vectors, shared by
// the native tests, the wasm host tests and rule validation, so every place
// checks the same cases. Its TCF encoder (TCString) is written from the
// specification independently of the rule's decoder.
//
// The rule draws new user ids from the host's random source, so expected
// Locations and event ids write the uid the answer sets as {uid}.
package cookiesynctest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/gif"
	"sort"
	"strings"
	"time"

	"github.com/edgetrack/edgetrack/wasm/abi"
)

// Fixed inputs of the vectors.
const (
	// UID is a valid user id already in the browser's uid cookie.
	UID = "0123456789abcdef0123456789abcdef"
	// PartnerID is a partner's user id.
	PartnerID = "AcmeUser-1234"
	// VendorID is our TCF vendor id in Config.
	VendorID = 42
	// RemoteIP is every request's client address.
	RemoteIP = "203.0.113.7"

	// Acme's and beta's templates in Config.
	AcmeSync = "https://sync.acme.example/cs/s?p=edgetrack&pi={uid}"
	AcmeDone = "https://sync.acme.example/cs/d?p=edgetrack&pi={uid}&ui={pi}"
	BetaSync = "https://px.beta.example/match?src=edgetrack&id={uid}"
	BetaDone = "https://cdn.beta.example/done/{pi}?their={uid}"
)

// AllowedHosts are the hosts any Location of Config may have.
var AllowedHosts = []string{"sync.acme.example", "px.beta.example", "cdn.beta.example"}

// At is when every request is received.
var At = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// Config returns two partners, acme (one host) and beta (sync and done on
// different hosts), vendor_id 42 and gdpr_default not_applies.
func Config() *abi.Config {
	return &abi.Config{Rule: "cookiesync", Settings: []abi.Setting{
		{Key: "partners", Values: []string{
			"acme|" + AcmeSync + "|" + AcmeDone + "|sync.acme.example",
			"beta|" + BetaSync + "|" + BetaDone + "|px.beta.example, cdn.beta.example",
		}},
		{Key: "vendor_id", Values: []string{"42"}},
		{Key: "gdpr_default", Values: []string{"not_applies"}},
	}}
}

// ConfigWith returns Config with settings replaced or added, as key, value
// pairs; an empty value removes the setting.
func ConfigWith(kv ...string) *abi.Config {
	c := Config()
	for i := 0; i+1 < len(kv); i += 2 {
		k, v := kv[i], kv[i+1]
		out := c.Settings[:0]
		for _, s := range c.Settings {
			if s.Key != k {
				out = append(out, s)
			}
		}
		c.Settings = out
		if v != "" {
			c.Settings = append(c.Settings, abi.Setting{Key: k, Values: []string{v}})
		}
	}
	return c
}

// Request returns a GET of path?query with the given Cookie header values.
func Request(path, query string, cookies ...string) *abi.Request {
	r := &abi.Request{Method: "GET", Path: path, Query: query, RemoteIP: RemoteIP, ReceivedAt: At.UnixNano()}
	for _, c := range cookies {
		r.Headers = append(r.Headers, abi.Header{Name: "cookie", Value: c})
	}
	return r
}

// What a vector expects of the uid cookie.
const (
	NoCookie = ""      // no Set-Cookie
	NewUID   = "<new>" // a fresh id: 32 lower-case hex digits
)

// Vector is one request and what the rule must answer.
type Vector struct {
	Name    string
	Config  *abi.Config
	Request *abi.Request
	Status  uint32
	Reason  string // X-Edgetrack-Reason; "" for a success, which has none
	Message string // substring the message must contain
	// Location is the exact Location, with {uid} for the uid the answer
	// sets; "" means none.
	Location string
	// Cookie is NoCookie, NewUID or the uid value that must be set again.
	Cookie string
	// MaxAge and Domain the uid cookie must have (defaults: 31536000, none).
	MaxAge int64
	Domain string
	Events []string // event ids, with {uid}
	Flow   string   // the events' flow
}

// Pixel reports whether body is a 1×1 GIF whose only pixel is transparent.
func Pixel(body []byte) bool {
	img, err := gif.Decode(bytes.NewReader(body))
	if err != nil || img.Bounds().Dx() != 1 || img.Bounds().Dy() != 1 {
		return false
	}
	_, _, _, a := img.At(img.Bounds().Min.X, img.Bounds().Min.Y).RGBA()
	return a == 0
}

func header(v abi.Verdict, name string) (string, bool) {
	for _, h := range v.Headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value, true
		}
	}
	return "", false
}

// Diff describes how got differs from what v expects, or returns "".
func Diff(v Vector, got abi.Verdict) string {
	var b strings.Builder
	if got.Status != v.Status {
		fmt.Fprintf(&b, "status %d, want %d (message %q); ", got.Status, v.Status, got.Message)
	}
	reason, has := header(got, "X-Edgetrack-Reason")
	switch {
	case v.Reason == "" && has:
		fmt.Fprintf(&b, "reason %q on a success; ", reason)
	case v.Reason != "" && reason != v.Reason:
		fmt.Fprintf(&b, "reason %q, want %q; ", reason, v.Reason)
	case v.Reason != "" && !strings.HasPrefix(got.Message, v.Reason+": "):
		fmt.Fprintf(&b, "message %q does not start with the reason; ", got.Message)
	}
	if !strings.Contains(got.Message, v.Message) {
		fmt.Fprintf(&b, "message %q does not contain %q; ", got.Message, v.Message)
	}
	if cc, _ := header(got, "Cache-Control"); cc != "no-store" {
		fmt.Fprintf(&b, "Cache-Control %q, want no-store; ", cc)
	}
	if got.Status == 200 {
		if ct, _ := header(got, "Content-Type"); ct != "image/gif" || !Pixel(got.Body) {
			fmt.Fprintf(&b, "200 is not the transparent pixel (Content-Type %q, %d bytes); ", ct, len(got.Body))
		}
	}

	// The uid the answer gives: the cookie it sets, else the request's.
	uid := ""
	switch {
	case v.Cookie == NoCookie && len(got.Cookies) != 0:
		fmt.Fprintf(&b, "cookies %+v, want none; ", got.Cookies)
	case v.Cookie != NoCookie && len(got.Cookies) != 1:
		fmt.Fprintf(&b, "%d cookies, want the uid cookie; ", len(got.Cookies))
	case v.Cookie != NoCookie:
		c := got.Cookies[0]
		uid = c.Value
		maxAge := v.MaxAge
		if maxAge == 0 {
			maxAge = 31536000
		}
		if c.Name != "uid" || !c.Secure || !c.HTTPOnly || !strings.EqualFold(c.SameSite, "none") || c.Path != "/" ||
			c.MaxAge != maxAge || c.Domain != v.Domain || len(c.Value) > 64 {
			fmt.Fprintf(&b, "cookie %+v, want uid; Secure; HttpOnly; SameSite=None; Path=/; Max-Age=%d; Domain=%q; ", c, maxAge, v.Domain)
		}
		if v.Cookie == NewUID {
			if !isHex32(c.Value) || strings.Contains(cookieHeaders(v.Request), c.Value) {
				fmt.Fprintf(&b, "uid %q is not a new 32-hex-digit id; ", c.Value)
			}
		} else if c.Value != v.Cookie {
			fmt.Fprintf(&b, "uid %q, want %q kept; ", c.Value, v.Cookie)
		}
	}

	if want := strings.ReplaceAll(v.Location, "{uid}", uid); got.Location != want {
		fmt.Fprintf(&b, "location %q, want %q; ", got.Location, want)
	}
	if len(got.Events) != len(v.Events) {
		fmt.Fprintf(&b, "%d events, want %d; ", len(got.Events), len(v.Events))
	} else {
		for i, e := range got.Events {
			if want := strings.ReplaceAll(v.Events[i], "{uid}", uid); e.ID != want {
				fmt.Fprintf(&b, "event %d id %q, want %q; ", i, e.ID, want)
			}
			if d := eventDiff(e, uid, v.Flow); d != "" {
				fmt.Fprintf(&b, "event %d: %s; ", i, d)
			}
		}
	}
	return b.String()
}

// eventDiff checks a match event's fields against its id.
func eventDiff(e abi.Event, uid, flow string) string {
	parts := strings.Split(e.ID, ":")
	if len(parts) != 4 || parts[0] != "cs" {
		return "id is not cs:<partner>:<pi>:<uid>"
	}
	if e.Source != abi.SourceCookieSync || e.Category != "cookiesync" || e.Name != "match" || e.Session != uid ||
		e.ClientTime != 0 || e.IP != RemoteIP || parts[3] != uid {
		return fmt.Sprintf("fields %+v", e)
	}
	var data map[string]string
	if err := json.Unmarshal(e.Data, &data); err != nil {
		return "data: " + err.Error()
	}
	want := map[string]string{"uid": uid, "partner": parts[1], "partner_id": parts[2], "flow": flow}
	if len(data) != len(want) {
		return fmt.Sprintf("data %s, want %v", e.Data, want)
	}
	for k, w := range want {
		if data[k] != w {
			return fmt.Sprintf("data %s, want %v", e.Data, want)
		}
	}
	return ""
}

func isHex32(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func cookieHeaders(r *abi.Request) string {
	var s []string
	for _, h := range r.Headers {
		if h.Name == "cookie" {
			s = append(s, h.Value)
		}
	}
	return strings.Join(s, "\n")
}

// TCString returns a TCF v2 TC string, core segment only: consent to the
// given purposes and vendors, vendor consents as a bit field or (ranges) as
// range entries, MaxVendorId the largest vendor (or maxVendor when larger).
// It is written from the specification, independently of the rule.
func TCString(purposes, vendors []int, ranges bool, maxVendor int) string {
	return TCStringVersion(2, purposes, vendors, ranges, maxVendor)
}

// TCStringVersion is TCString with another version field.
func TCStringVersion(version int, purposes, vendors []int, ranges bool, maxVendor int) string {
	var w bitWriter
	deci := uint64(At.UnixMilli() / 100)
	w.put(uint64(version), 6)
	w.put(deci, 36) // Created
	w.put(deci, 36) // LastUpdated
	w.put(300, 12)  // CmpId
	w.put(2, 12)    // CmpVersion
	w.put(1, 6)     // ConsentScreen
	w.letters("EN") // ConsentLanguage
	w.put(48, 12)   // VendorListVersion
	w.put(2, 6)     // TcfPolicyVersion
	w.put(1, 1)     // IsServiceSpecific
	w.put(0, 1)     // UseNonStandardTexts
	w.put(0, 12)    // SpecialFeatureOptIns
	w.flags(purposes, 24)
	w.put(0, 24)    // PurposesLITransparency
	w.put(0, 1)     // PurposeOneTreatment
	w.letters("DE") // PublisherCC
	w.vendors(vendors, ranges, maxVendor)
	w.vendors(nil, false, 0) // vendor legitimate interests: none
	w.put(0, 12)             // NumPubRestrictions
	return base64.RawURLEncoding.EncodeToString(w.b)
}

type bitWriter struct {
	b []byte
	n int
}

func (w *bitWriter) put(v uint64, bits int) {
	for i := bits - 1; i >= 0; i-- {
		if w.n%8 == 0 {
			w.b = append(w.b, 0)
		}
		if v>>uint(i)&1 == 1 {
			w.b[w.n/8] |= 0x80 >> uint(w.n%8)
		}
		w.n++
	}
}

func (w *bitWriter) letters(s string) {
	w.put(uint64(s[0]-'A'), 6)
	w.put(uint64(s[1]-'A'), 6)
}

// flags writes n bits, bit i-1 set for each i in set.
func (w *bitWriter) flags(set []int, n int) {
	for i := 1; i <= n; i++ {
		v := uint64(0)
		for _, s := range set {
			if s == i {
				v = 1
			}
		}
		w.put(v, 1)
	}
}

func (w *bitWriter) vendors(ids []int, ranges bool, maxVendor int) {
	ids = append([]int(nil), ids...)
	sort.Ints(ids)
	if len(ids) > 0 && ids[len(ids)-1] > maxVendor {
		maxVendor = ids[len(ids)-1]
	}
	w.put(uint64(maxVendor), 16)
	if !ranges {
		w.put(0, 1)
		w.flags(ids, maxVendor)
		return
	}
	w.put(1, 1)
	type run struct{ start, end int }
	var runs []run
	for _, id := range ids {
		if n := len(runs); n > 0 && runs[n-1].end+1 == id {
			runs[n-1].end = id
		} else if n == 0 || runs[n-1].end != id {
			runs = append(runs, run{id, id})
		}
	}
	w.put(uint64(len(runs)), 12)
	for _, r := range runs {
		if r.start == r.end {
			w.put(0, 1)
			w.put(uint64(r.start), 16)
		} else {
			w.put(1, 1)
			w.put(uint64(r.start), 16)
			w.put(uint64(r.end), 16)
		}
	}
}

// Vectors returns the cookie-sync rule's test vectors.
func Vectors() []Vector {
	const (
		acmeSyncLoc = "https://sync.acme.example/cs/s?p=edgetrack&pi={uid}"
		betaSyncLoc = "https://px.beta.example/match?src=edgetrack&id={uid}"
	)
	acmeDoneLoc := func(pi string) string {
		return "https://sync.acme.example/cs/d?p=edgetrack&pi={uid}&ui=" + pi
	}
	match := func(partner, pi string) []string { return []string{"cs:" + partner + ":" + pi + ":{uid}"} }
	uidCookie := "uid=" + UID
	syncQ := "p=acme&pi=" + PartnerID
	doneQ := "p=acme&pi=" + PartnerID + "&ui=" + UID
	long := strings.Repeat("a", 128)

	// A steering attempt on sync: the pixel, nothing else.
	steer := func(name, query string) Vector {
		return Vector{Name: "steering: " + name, Config: Config(), Request: Request("/cs/s", query, uidCookie),
			Status: 200, Reason: "steering_attempt"}
	}
	pixel := func(name, path, query, reason string, cookies ...string) Vector {
		return Vector{Name: name, Config: Config(), Request: Request(path, query, cookies...), Status: 200, Reason: reason}
	}

	// Consent strings.
	bitAllow := TCString([]int{1, 2, 3}, []int{1, 7, VendorID, 99}, false, 0)
	rangeAllow := TCString([]int{1}, []int{5, 6, 7, 8, VendorID, 700, 701, 702, 2000}, true, 0)
	noPurpose1 := TCString([]int{2, 3, 4}, []int{VendorID}, false, 0)
	bitNoVendor := TCString([]int{1}, []int{1, 2, 41, 43}, false, 0)
	rangeNoVendor := TCString([]int{1}, []int{7, 40, 41, 43, 44, 1500}, true, 0)
	v1 := TCStringVersion(1, []int{1}, []int{VendorID}, false, 0)
	truncated := bitAllow[:30]
	applies := ConfigWith("gdpr_default", "applies")
	noVendor := ConfigWith("vendor_id", "")
	consentSync := func(name, gdpr, consent string, cfg *abi.Config, status uint32, reason, msg string) Vector {
		q := syncQ
		if gdpr != "" {
			q += "&gdpr=" + gdpr
		}
		if consent != "-" {
			q += "&gdpr_consent=" + consent
		}
		v := Vector{Name: "consent: " + name, Config: cfg, Request: Request("/cs/s", q, uidCookie), Status: status, Reason: reason, Message: msg}
		if status == 302 {
			v.Location, v.Cookie, v.Events, v.Flow = acmeDoneLoc(PartnerID), UID, match("acme", PartnerID), "sync"
		}
		return v
	}

	crlf := Request("/cs/s", "p=acme&pi=abc\r\nSet-Cookie:%20x=1", uidCookie)
	twoHeaders := Request("/cs/s", syncQ, "theme=dark", "lang=en; "+uidCookie)

	return []Vector{
		// init:local → sync:remote → done:local, our side.
		{Name: "init without cookie creates a uid", Config: Config(), Request: Request("/cs/i", "p=acme"),
			Status: 302, Location: acmeSyncLoc, Cookie: NewUID},
		{Name: "init keeps an existing uid", Config: Config(), Request: Request("/cookiesync/i", "p=acme", uidCookie),
			Status: 302, Location: acmeSyncLoc, Cookie: UID},
		{Name: "init to a partner on two hosts", Config: Config(), Request: Request("/cs/i", "p=beta", uidCookie),
			Status: 302, Location: betaSyncLoc, Cookie: UID},
		{Name: "init ignores pi and ui it does not use", Config: Config(), Request: Request("/cs/i", "p=acme&pi=//evil&ui=x", uidCookie),
			Status: 302, Location: acmeSyncLoc, Cookie: UID},
		{Name: "done records the match", Config: Config(), Request: Request("/cs/d", doneQ, uidCookie),
			Status: 200, Cookie: UID, Events: match("acme", PartnerID), Flow: "done"},
		{Name: "done on the long path", Config: Config(), Request: Request("/cookiesync/done", doneQ, uidCookie),
			Status: 200, Cookie: UID, Events: match("acme", PartnerID), Flow: "done"},
		{Name: "done with another ui", Config: Config(), Request: Request("/cs/d", "p=acme&pi="+PartnerID+"&ui=ffffffffffffffffffffffffffffffff", uidCookie),
			Status: 400, Reason: "ui_mismatch"},
		{Name: "done without a uid cookie", Config: Config(), Request: Request("/cs/d", doneQ),
			Status: 400, Reason: "ui_mismatch", Message: "no uid cookie"},
		{Name: "done with a malformed ui", Config: Config(), Request: Request("/cs/d", "p=acme&pi=x&ui=a<b", "uid=a<b"),
			Status: 200, Reason: "malformed_id"},
		{Name: "done with a malformed uid cookie", Config: Config(), Request: Request("/cs/d", "p=acme&pi=x&ui=ab", "uid=a<b"),
			Status: 400, Reason: "ui_mismatch", Message: "no uid cookie"},
		{Name: "done with an over-long uid cookie", Config: Config(), Request: Request("/cs/d", "p=acme&pi=x&ui="+strings.Repeat("a", 65), "uid="+strings.Repeat("a", 65)),
			Status: 400, Reason: "ui_mismatch"},
		{Name: "done without ui", Config: Config(), Request: Request("/cs/d", syncQ, uidCookie), Status: 200, Reason: "missing_id"},
		{Name: "done with a steering ui", Config: Config(), Request: Request("/cs/d", "p=acme&pi=x&ui=//evil.example", uidCookie),
			Status: 200, Reason: "steering_attempt"},

		// init:remote → sync:local → done:remote, our side.
		{Name: "sync records the match and redirects to done", Config: Config(), Request: Request("/cs/s", syncQ, uidCookie),
			Status: 302, Location: acmeDoneLoc(PartnerID), Cookie: UID, Events: match("acme", PartnerID), Flow: "sync"},
		{Name: "sync without cookie creates a uid", Config: Config(), Request: Request("/cookiesync/sync", syncQ),
			Status: 302, Location: acmeDoneLoc(PartnerID), Cookie: NewUID, Events: match("acme", PartnerID), Flow: "sync"},
		{Name: "sync with pi in the path of done_url", Config: Config(), Request: Request("/cs/s", "p=beta&pi=B.42~x_y", uidCookie),
			Status: 302, Location: "https://cdn.beta.example/done/B.42~x_y?their={uid}", Cookie: UID, Events: match("beta", "B.42~x_y"), Flow: "sync"},
		{Name: "sync with a percent-encoded id", Config: Config(), Request: Request("/cs/s", "p=acme&pi=Acme%55ser", uidCookie),
			Status: 302, Location: acmeDoneLoc("AcmeUser"), Cookie: UID, Events: match("acme", "AcmeUser"), Flow: "sync"},
		{Name: "sync with an id of max_id_bytes", Config: Config(), Request: Request("/cs/s", "p=acme&pi="+long, uidCookie),
			Status: 302, Location: acmeDoneLoc(long), Cookie: UID, Events: match("acme", long), Flow: "sync"},
		{Name: "sync without pi", Config: Config(), Request: Request("/cs/s", "p=acme", uidCookie), Status: 200, Reason: "missing_id"},
		{Name: "sync with empty pi", Config: Config(), Request: Request("/cs/s", "p=acme&pi=", uidCookie), Status: 200, Reason: "missing_id"},

		// Steering and malformed requests: the pixel, no Location, no cookie, no event.
		steer("protocol-relative pi", "p=acme&pi=//evil.example"),
		steer("scheme without slashes", "p=acme&pi=https:evil.example"),
		steer("absolute URL", "p=acme&pi=https://evil.example/"),
		steer("at sign", "p=acme&pi=@evil"),
		steer("userinfo trick", "p=acme&pi=user:pass@evil.example"),
		steer("userinfo without colon", "p=acme&pi=sync.acme.example@evil.example"),
		steer("escaped slashes", "p=acme&pi=%2F%2Fevil.example"),
		steer("backslashes", "p=acme&pi=%5C%5Cevil.example"),
		steer("escaped CRLF", "p=acme&pi=%0d%0aSet-Cookie:x=1"),
		steer("upper-case escaped CRLF", "p=acme&pi=x%0D%0A"),
		steer("double-escaped CRLF", "p=acme&pi=x%250d%250a"),
		steer("space as plus", "p=acme&pi=a+b"),
		steer("tab", "p=acme&pi=a%09b"),
		{Name: "steering: raw CR LF", Config: Config(), Request: crlf, Status: 200, Reason: "steering_attempt"},
		steer("partner is a URL", "p=//evil.example&pi=x"),
		pixel("steering: init partner is a URL", "/cs/i", "p=https://evil.example", "steering_attempt"),
		pixel("unknown partner", "/cs/i", "p=evil", "unknown_partner"),
		pixel("case-variant partner name", "/cs/i", "p=ACME", "unknown_partner"),
		pixel("partner name with trailing escape", "/cs/i", "p=acme%00", "unknown_partner"),
		pixel("partner name with bad escape", "/cs/i", "p=acme%zz", "unknown_partner"),
		pixel("over-long pi", "/cs/s", "p=acme&pi="+long+"a", "id_too_long", uidCookie),
		pixel("pi with a semicolon", "/cs/s", "p=acme&pi=a;b", "malformed_id", uidCookie),
		pixel("pi with an angle bracket", "/cs/s", "p=acme&pi=a%3Cb", "malformed_id", uidCookie),
		pixel("pi with a bad escape", "/cs/s", "p=acme&pi=a%zz", "malformed_id", uidCookie),
		pixel("pi of dots", "/cs/s", "p=acme&pi=..", "malformed_id", uidCookie),
		pixel("pi with non-ASCII", "/cs/s", "p=acme&pi=%C3%A9", "malformed_id", uidCookie),
		pixel("partner given twice", "/cs/i", "p=acme&p=evil", "repeated_parameter"),
		pixel("pi given twice", "/cs/s", "p=acme&pi=a&pi=b", "repeated_parameter", uidCookie),
		pixel("escaped key given twice", "/cs/i", "p=acme&%70=evil", "repeated_parameter"),
		{Name: "missing partner", Config: Config(), Request: Request("/cs/i", "pi=x"), Status: 400, Reason: "missing_partner"},
		{Name: "empty partner", Config: Config(), Request: Request("/cs/s", "p=&pi=x"), Status: 400, Reason: "missing_partner"},
		{Name: "unknown path", Config: Config(), Request: Request("/cs/x", "p=acme"), Status: 404, Reason: "unknown_path"},
		{Name: "POST", Config: Config(), Request: &abi.Request{Method: "POST", Path: "/cs/i", Query: "p=acme"}, Status: 405, Reason: "method_not_allowed"},

		// The uid cookie.
		{Name: "cookie: over-long uid is replaced", Config: Config(), Request: Request("/cs/i", "p=acme", "uid="+strings.Repeat("b", 65)),
			Status: 302, Location: acmeSyncLoc, Cookie: NewUID},
		{Name: "cookie: uid of 64 bytes is kept", Config: Config(), Request: Request("/cs/i", "p=acme", "uid="+strings.Repeat("b", 64)),
			Status: 302, Location: acmeSyncLoc, Cookie: strings.Repeat("b", 64)},
		{Name: "cookie: malformed uid is replaced", Config: Config(), Request: Request("/cs/i", "p=acme", "uid=<script>"),
			Status: 302, Location: acmeSyncLoc, Cookie: NewUID},
		{Name: "cookie: empty uid is replaced", Config: Config(), Request: Request("/cs/i", "p=acme", "uid="),
			Status: 302, Location: acmeSyncLoc, Cookie: NewUID},
		{Name: "cookie: quoted uid is kept", Config: Config(), Request: Request("/cs/i", "p=acme", `uid="`+UID+`"`),
			Status: 302, Location: acmeSyncLoc, Cookie: UID},
		{Name: "cookie: uid among others in two headers", Config: Config(), Request: twoHeaders,
			Status: 302, Location: acmeDoneLoc(PartnerID), Cookie: UID, Events: match("acme", PartnerID), Flow: "sync"},
		{Name: "cookie: an earlier system's numeric uid is kept", Config: Config(), Request: Request("/cs/i", "p=acme", "uid=6461045793582219264"),
			Status: 302, Location: acmeSyncLoc, Cookie: "6461045793582219264"},
		{Name: "cookie: domain and max age", Config: ConfigWith("cookie_domain", ".Example.com", "cookie_max_age", "86400"),
			Request: Request("/cs/i", "p=acme", uidCookie), Status: 302, Location: acmeSyncLoc, Cookie: UID, MaxAge: 86400, Domain: ".example.com"},

		// Consent.
		consentSync("gdpr=1 without consent", "1", "-", Config(), 400, "consent_required", "consent required"),
		consentSync("gdpr=1 with empty consent", "1", "", Config(), 400, "consent_required", "consent required"),
		consentSync("not base64url", "1", "not*base64", Config(), 400, "bad_consent", "base64url"),
		consentSync("TCF v1 string", "1", v1, Config(), 400, "bad_consent", "version"),
		consentSync("truncated", "1", truncated, Config(), 400, "bad_consent", ""),
		consentSync("no consent to purpose 1", "1", noPurpose1, Config(), 451, "no_purpose1_consent", ""),
		consentSync("vendor not consented, bit field", "1", bitNoVendor, Config(), 451, "no_vendor_consent", ""),
		consentSync("vendor not consented, ranges", "1", rangeNoVendor, Config(), 451, "no_vendor_consent", ""),
		consentSync("allowed, bit field", "1", bitAllow, Config(), 302, "", ""),
		consentSync("allowed, ranges", "1", rangeAllow, Config(), 302, "", ""),
		consentSync("allowed, with further segments", "1", bitAllow+".YAAAAAAAAAAA", Config(), 302, "", ""),
		// Made by the IAB's @iabtcf/core 1.5.6: vendors 42, 700-710, 2000 (ranges).
		consentSync("allowed, iabtcf reference string", "1", "CP3wuNyP3wuNyEsACBENAwCgAIAAAAAAAAAAPoQAwAVQK8AsYD6AAAAAAAAA.YAAAAAAAAAAA", Config(), 302, "", ""),
		consentSync("gdpr=0 ignores consent", "0", "garbage", Config(), 302, "", ""),
		consentSync("bad gdpr value", "yes", "-", Config(), 400, "bad_gdpr", ""),
		consentSync("default applies, no gdpr", "", "-", applies, 400, "consent_required", ""),
		consentSync("default applies, consent given", "", bitAllow, applies, 302, "", ""),
		consentSync("default applies, gdpr=0", "0", "-", applies, 302, "", ""),
		consentSync("default not_applies", "", "-", Config(), 302, "", ""),
		consentSync("gdpr=1 without vendor_id", "1", bitAllow, noVendor, 451, "no_vendor_id", ""),
		{Name: "consent: checked before the done match", Config: Config(), Request: Request("/cs/d", doneQ+"&gdpr=1&gdpr_consent="+noPurpose1, uidCookie),
			Status: 451, Reason: "no_purpose1_consent"},
		{Name: "consent: checked before init", Config: Config(), Request: Request("/cs/i", "p=acme&gdpr=1"),
			Status: 400, Reason: "consent_required"},

		// Opt-out.
		pixel("opt-out: init", "/cs/i", "p=acme", "opted_out", "optout=1"),
		pixel("opt-out: init with any value", "/cs/i", "p=acme", "opted_out", uidCookie+"; optout=no"),
		pixel("opt-out: sync", "/cs/s", syncQ, "opted_out", uidCookie+"; optout=1"),
		pixel("opt-out: done", "/cs/d", doneQ, "opted_out", "optout; "+uidCookie),
	}
}
