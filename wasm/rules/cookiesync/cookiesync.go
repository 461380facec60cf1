package cookiesync

import (
	"strings"

	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/guest"
)

// Reasons, in X-Edgetrack-Reason and at the start of Verdict.Message of
// every answer that is not a success. The status each comes with is noted.
const (
	ReasonUnknownPath     = "unknown_path"          // 404
	ReasonMethod          = "method_not_allowed"    // 405
	ReasonRepeatedParam   = "repeated_parameter"    // pixel
	ReasonMissingPartner  = "missing_partner"       // 400
	ReasonBadGDPR         = "bad_gdpr"              // 400
	ReasonConsentRequired = "consent_required"      // 400
	ReasonBadConsent      = "bad_consent"           // 400
	ReasonNoVendorID      = "no_vendor_id"          // 451
	ReasonNoPurpose1      = "no_purpose1_consent"   // 451
	ReasonNoVendorConsent = "no_vendor_consent"     // 451
	ReasonOptedOut        = "opted_out"             // pixel
	ReasonUnknownPartner  = "unknown_partner"       // pixel
	ReasonSteering        = "steering_attempt"      // pixel
	ReasonMissingID       = "missing_id"            // pixel
	ReasonLongID          = "id_too_long"           // pixel
	ReasonMalformedID     = "malformed_id"          // pixel
	ReasonUIMismatch      = "ui_mismatch"           // 400
	ReasonLocationCheck   = "location_check_failed" // pixel
)

// HeaderReason carries the reason of an answer that is not a success.
const HeaderReason = "X-Edgetrack-Reason"

// Event fields of a match.
const (
	EventCategory = "cookiesync"
	EventName     = "match"
	FlowSync      = "sync"
	FlowDone      = "done"
)

// Pixel is the body of pixel answers: a 1×1 transparent GIF (43 bytes).
var Pixel = []byte{
	'G', 'I', 'F', '8', '9', 'a', 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00,
	0x00, 0x00, 0x00, 0xff, 0xff, 0xff, // global colour table: black, white
	0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, // graphic control: index 0 transparent
	0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, // image descriptor
	0x02, 0x02, 0x44, 0x01, 0x00, // LZW data
	0x3b,
}

type flow uint8

const (
	flowNone flow = iota
	flowInit
	flowSync
	flowDone
)

func flowOf(path string) flow {
	switch path {
	case "/cookiesync/i", "/cs/i":
		return flowInit
	case "/cookiesync/sync", "/cs/s":
		return flowSync
	case "/cookiesync/done", "/cs/d":
		return flowDone
	}
	return flowNone
}

// Rule is the cookie-sync rule; build it with New. It serves one call at a
// time: the fields after the settings are scratch space reused by every
// call, and the strings of a Verdict alias them, so that a call allocates
// nothing once they are sized.
type Rule struct {
	host abi.Host
	s    settings

	q       query
	ck      cookies
	dec     []byte // decoded query values
	loc     []byte // Location
	arena   []byte // event id and data
	rnd     [16]byte
	uidBuf  [32]byte
	hdr     []abi.Header
	cookie  [1]abi.Cookie
	event   [1]abi.Event
	message []byte
}

// New builds the rule from its settings; the error lists every problem.
func New(cfg *abi.Config, host abi.Host) (abi.Rule, error) {
	s, err := parseSettings(cfg)
	if err != nil {
		return nil, err
	}
	r := &Rule{host: host, s: s, hdr: make([]abi.Header, 0, 4)}
	longest := 0
	for i := range s.partners {
		for _, t := range []*template{&s.partners[i].sync, &s.partners[i].done} {
			if n := len(t.raw) + 3*s.maxID*len(t.holes); n > longest {
				longest = n
			}
		}
	}
	r.loc = make([]byte, 0, longest)
	r.arena = make([]byte, 0, 256+4*(MaxPartnerName+s.maxID+MaxCookieValue))
	return r, nil
}

// Handle decides on one request; see the package documentation for the
// order of checks.
func (r *Rule) Handle(req *abi.Request) abi.Verdict {
	f := flowOf(req.Path)
	if f == flowNone {
		return r.fail(404, ReasonUnknownPath, "not a cookie-sync path")
	}
	if req.Method != "GET" {
		v := r.fail(405, ReasonMethod, "cookie sync answers GET only")
		r.hdr = append(r.hdr, abi.Header{Name: "Allow", Value: "GET"})
		v.Headers = r.hdr
		return v
	}
	if cap(r.dec) < len(req.Query) {
		r.dec = make([]byte, 0, len(req.Query))
	}
	q := &r.q
	r.dec = parseQuery(req.Query, r.dec[:0], q)
	if msg := q.repeated(); msg != "" {
		return r.pixel(ReasonRepeatedParam, msg)
	}
	if q.p.value == "" {
		return r.fail(400, ReasonMissingPartner, "missing parameter p (the partner's name)")
	}
	if v, ok := r.checkConsent(q); !ok {
		return v
	}
	readCookies(req, &r.ck)
	if r.ck.optOut {
		return r.pixel(ReasonOptedOut, "the user opted out (optout cookie)")
	}
	var pt *partner
	for i := range r.s.partners {
		if r.s.partners[i].name == q.p.value {
			pt = &r.s.partners[i]
			break
		}
	}
	if pt == nil {
		if steering(q.p.value) {
			return r.pixel(ReasonSteering, "p looks like an attempt to steer the redirect")
		}
		return r.pixel(ReasonUnknownPartner, "p is not a configured partner")
	}
	if f != flowInit {
		if reason, msg := r.checkID(false, q.pi.value); reason != "" {
			return r.pixel(reason, msg)
		}
	}
	if f == flowDone {
		if reason, msg := r.checkID(true, q.ui.value); reason != "" {
			return r.pixel(reason, msg)
		}
	}

	var uid string
	switch {
	case r.ck.hasUID && validUID(r.ck.uid):
		uid = r.ck.uid
	case f == flowDone:
		return r.fail(400, ReasonUIMismatch, "no uid cookie to match ui against")
	default:
		r.host.Random(r.rnd[:])
		guest.AppendHex(r.uidBuf[:0], r.rnd[:])
		uid = abi.Alias(r.uidBuf[:])
	}

	r.cookie[0] = abi.Cookie{
		Name: CookieUID, Value: uid, MaxAge: r.s.cookieMaxAge, Path: "/", Domain: r.s.cookieDomain,
		Secure: true, HTTPOnly: true, SameSite: "none",
	}
	switch f {
	case flowInit:
		loc, ok := r.expand(&pt.sync, uid, "")
		if !ok {
			return r.pixel(ReasonLocationCheck, "the built Location does not have the template's scheme and host")
		}
		return abi.Verdict{Status: 302, Location: loc, Cookies: r.cookie[:], Headers: r.headers("")}
	case flowSync:
		loc, ok := r.expand(&pt.done, uid, q.pi.value)
		if !ok {
			return r.pixel(ReasonLocationCheck, "the built Location does not have the template's scheme and host")
		}
		r.event[0] = r.match(pt.name, q.pi.value, uid, FlowSync, req)
		return abi.Verdict{Status: 302, Location: loc, Cookies: r.cookie[:], Events: r.event[:], Headers: r.headers("")}
	default: // done
		if !equal(q.ui.value, uid) {
			return r.fail(400, ReasonUIMismatch, "ui is not the id in the uid cookie")
		}
		r.event[0] = r.match(pt.name, q.pi.value, uid, FlowDone, req)
		return abi.Verdict{Status: 200, Body: Pixel, Cookies: r.cookie[:], Events: r.event[:], Headers: r.pixelHeaders("")}
	}
}

// checkConsent decides whether storage is allowed; when it is not, it
// returns the answer.
func (r *Rule) checkConsent(q *query) (abi.Verdict, bool) {
	applies := r.s.gdprApplies
	switch q.gdpr.value {
	case "": // absent or empty: the configured default
	case "1":
		applies = true
	case "0":
		applies = false
	default:
		return r.fail(400, ReasonBadGDPR, "gdpr must be 0 or 1"), false
	}
	if !applies {
		return abi.Verdict{}, true
	}
	if q.consent.value == "" {
		return r.fail(400, ReasonConsentRequired, "consent required: gdpr applies and gdpr_consent is missing"), false
	}
	c, err := ParseConsent(q.consent.value)
	switch {
	case err != nil:
		return r.fail(400, ReasonBadConsent, err.Error()), false
	case r.s.vendorID == 0:
		return r.fail(451, ReasonNoVendorID, "gdpr applies and no vendor_id is configured, so vendor consent cannot be established"), false
	case !c.Purpose(1):
		return r.fail(451, ReasonNoPurpose1, "consent does not allow storage (no consent to purpose 1)"), false
	case !c.Vendor(int(r.s.vendorID)):
		return r.fail(451, ReasonNoVendorConsent, "consent does not allow storage (no consent for our vendor id)"), false
	}
	return abi.Verdict{}, true
}

// idMessages are checkID's messages, for pi and for ui: constants, so that
// refusing allocates nothing.
var idMessages = [2][4]string{
	{"pi is missing or empty", "pi looks like an attempt to steer the redirect",
		"pi is longer than max_id_bytes", "pi has bytes other than [A-Za-z0-9._~-] or is only dots"},
	{"ui is missing or empty", "ui looks like an attempt to steer the redirect",
		"ui is longer than max_id_bytes", "ui has bytes other than [A-Za-z0-9._~-] or is only dots"},
}

// checkID returns the reason an id parameter (pi, or ui when isUI) is
// refused, or "".
func (r *Rule) checkID(isUI bool, v string) (reason, msg string) {
	m := &idMessages[0]
	if isUI {
		m = &idMessages[1]
	}
	switch {
	case v == "":
		return ReasonMissingID, m[0]
	case steering(v):
		return ReasonSteering, m[1]
	case len(v) > r.s.maxID:
		return ReasonLongID, m[2]
	case !onlyUnreserved(v) || onlyDots(v):
		return ReasonMalformedID, m[3]
	}
	return "", ""
}

// expand builds t with the ids query-escaped, then reads the result again
// and accepts it only with the template's scheme and host.
func (r *Rule) expand(t *template, uid, pi string) (string, bool) {
	b := r.loc[:0]
	for i, l := range t.lits {
		b = append(b, l...)
		if i < len(t.holes) {
			switch t.holes[i] {
			case holeUID:
				b = appendQueryEscape(b, uid)
			case holePI:
				b = appendQueryEscape(b, pi)
			}
		}
	}
	r.loc = b
	loc := abi.Alias(b)
	scheme, host, ok := splitOrigin(loc)
	if !ok || scheme != t.scheme || !strings.EqualFold(host, t.host) {
		return "", false
	}
	return loc, true
}

// splitOrigin reads the scheme and host (with port) of an absolute URL, and
// refuses any URL that RFC 3986 parsers (net/url) and browsers (the WHATWG
// URL standard) might read differently: bytes outside printable ASCII,
// backslashes (a path separator to browsers), userinfo, and a scheme that is
// not lower-case letters. The host ends at the first '/', '?' or '#'.
// It is the rule's own reader rather than net/url, which is slow and large
// under TinyGo; the tests check the two agree.
func splitOrigin(s string) (scheme, host string, ok bool) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return "", "", false
		}
	}
	i := strings.Index(s, "://")
	if i <= 0 {
		return "", "", false
	}
	scheme = s[:i]
	for j := 0; j < len(scheme); j++ {
		if c := scheme[j]; c < 'a' || c > 'z' {
			return "", "", false
		}
	}
	host = s[i+3:]
	if end := strings.IndexAny(host, "/?#"); end >= 0 {
		host = host[:end]
	}
	if host == "" || strings.IndexByte(host, '@') >= 0 {
		return "", "", false
	}
	return scheme, host, true
}

// match returns the event of a recorded match; its strings live in the
// arena until the next call.
func (r *Rule) match(partnerName, pi, uid, flowName string, req *abi.Request) abi.Event {
	a := r.arena[:0]
	a = append(a, "cs:"...)
	a = append(a, partnerName...)
	a = append(a, ':')
	a = append(a, pi...)
	a = append(a, ':')
	a = append(a, uid...)
	id := abi.Alias(a[:len(a):len(a)])
	d := guest.NewJSONObject(a)
	d.String("uid", uid)
	d.String("partner", partnerName)
	d.String("partner_id", pi)
	d.String("flow", flowName)
	var data []byte
	r.arena, data = d.Finish()
	return abi.Event{
		ID:       id,
		Source:   abi.SourceCookieSync,
		Session:  uid,
		Category: EventCategory,
		Name:     EventName,
		Data:     data,
		IP:       req.RemoteIP,
	}
}

// headers returns the headers of a redirect or refusal, with the reason
// when there is one.
func (r *Rule) headers(reason string) []abi.Header {
	r.hdr = append(r.hdr[:0], abi.Header{Name: "Cache-Control", Value: "no-store"})
	if reason != "" {
		r.hdr = append(r.hdr, abi.Header{Name: HeaderReason, Value: reason})
	}
	return r.hdr
}

func (r *Rule) pixelHeaders(reason string) []abi.Header {
	r.headers(reason)
	r.hdr = append(r.hdr, abi.Header{Name: "Content-Type", Value: "image/gif"})
	return r.hdr
}

// pixel answers the transparent GIF with a reason: no Location, no cookie,
// no event.
func (r *Rule) pixel(reason, detail string) abi.Verdict {
	return abi.Verdict{Status: 200, Body: Pixel, Message: r.reasonMessage(reason, detail), Headers: r.pixelHeaders(reason)}
}

// fail answers status with a reason; the message is the response body.
func (r *Rule) fail(status uint32, reason, detail string) abi.Verdict {
	return abi.Verdict{Status: status, Message: r.reasonMessage(reason, detail), Headers: r.headers(reason)}
}

func (r *Rule) reasonMessage(reason, detail string) string {
	r.message = append(r.message[:0], reason...)
	r.message = append(r.message, ": "...)
	r.message = append(r.message, detail...)
	return abi.Alias(r.message)
}

// equal compares in time that does not depend on where a and b differ.
func equal(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var d byte
	for i := 0; i < len(a); i++ {
		d |= a[i] ^ b[i]
	}
	return d == 0
}
