package cookiesync

import (
	"strings"

	"github.com/edgetrack/edgetrack/wasm/abi"
)

// Query parameter names.
const (
	ParamPartner   = "p"
	ParamPartnerID = "pi"
	ParamUserID    = "ui"
	ParamGDPR      = "gdpr"
	ParamConsent   = "gdpr_consent"
)

// Cookie names.
const (
	CookieUID    = "uid"
	CookieOptOut = "optout"
)

// MaxCookieValue is the longest uid cookie value kept; a longer one is
// treated as malformed and replaced.
const MaxCookieValue = 64

// param is one query parameter the rule reads: its last value and how many
// times it was given.
type param struct {
	value string
	n     int
}

// query holds the parameters the rule reads; values alias the request or the
// rule's decoding buffer.
type query struct {
	p, pi, ui, gdpr, consent param
}

// repeated says which parameter is given more than once, or returns "".
func (q *query) repeated() string {
	switch {
	case q.p.n > 1:
		return "parameter p is given more than once"
	case q.pi.n > 1:
		return "parameter pi is given more than once"
	case q.ui.n > 1:
		return "parameter ui is given more than once"
	case q.gdpr.n > 1:
		return "parameter gdpr is given more than once"
	case q.consent.n > 1:
		return "parameter gdpr_consent is given more than once"
	}
	return ""
}

// parseQuery reads raw (a query string without '?') as net/url's ParseQuery
// would: pairs split at '&', key and value split at the first '=',
// percent-escapes and '+' decoded. A pair whose escapes are invalid keeps its
// raw bytes, which no id or partner name accepts. Decoded bytes are written
// to buf, which must have room for len(raw) more bytes, so that the strings
// stay valid: buf never reallocates.
func parseQuery(raw string, buf []byte, q *query) []byte {
	*q = query{}
	for raw != "" {
		var pair string
		if i := strings.IndexByte(raw, '&'); i >= 0 {
			pair, raw = raw[:i], raw[i+1:]
		} else {
			pair, raw = raw, ""
		}
		if pair == "" {
			continue
		}
		key, value := pair, ""
		if i := strings.IndexByte(pair, '='); i >= 0 {
			key, value = pair[:i], pair[i+1:]
		}
		key, buf = unescape(key, buf)
		var p *param
		switch key {
		case ParamPartner:
			p = &q.p
		case ParamPartnerID:
			p = &q.pi
		case ParamUserID:
			p = &q.ui
		case ParamGDPR:
			p = &q.gdpr
		case ParamConsent:
			p = &q.consent
		default:
			continue
		}
		p.n++
		p.value, buf = unescape(value, buf)
	}
	return buf
}

// unescape decodes s as a query component into buf (no copy when there is
// nothing to decode). When s has an invalid escape it is returned as is.
func unescape(s string, buf []byte) (string, []byte) {
	plain := true
	for i := 0; i < len(s); i++ {
		if s[i] == '%' || s[i] == '+' {
			plain = false
			break
		}
	}
	if plain {
		return s, buf
	}
	start := len(buf)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '+':
			buf = append(buf, ' ')
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return s, buf[:start]
			}
			buf = append(buf, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
		default:
			buf = append(buf, c)
		}
	}
	return abi.Alias(buf[start:len(buf):len(buf)]), buf
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// appendQueryEscape appends s escaped as a query component, as
// url.QueryEscape does.
func appendQueryEscape(b []byte, s string) []byte {
	const upperHex = "0123456789ABCDEF"
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) {
			continue
		}
		b = append(b, s[start:i]...)
		if c == ' ' {
			b = append(b, '+')
		} else {
			b = append(b, '%', upperHex[c>>4], upperHex[c&0xf])
		}
		start = i + 1
	}
	return append(b, s[start:]...)
}

// isUnreserved reports the bytes an id may have: RFC 3986's unreserved set.
func isUnreserved(c byte) bool { return isAlnum(c) || c == '-' || c == '_' || c == '.' || c == '~' }

// cookies are the cookies the rule reads.
type cookies struct {
	uid    string // first uid cookie, unquoted; "" when absent
	hasUID bool
	optOut bool
}

// readCookies reads the uid and optout cookies from every Cookie header.
func readCookies(req *abi.Request, c *cookies) {
	*c = cookies{}
	for i := range req.Headers {
		if req.Headers[i].Name != "cookie" {
			continue
		}
		rest := req.Headers[i].Value
		for rest != "" {
			var pair string
			if j := strings.IndexByte(rest, ';'); j >= 0 {
				pair, rest = rest[:j], rest[j+1:]
			} else {
				pair, rest = rest, ""
			}
			pair = trim(pair)
			name, value := pair, ""
			if j := strings.IndexByte(pair, '='); j >= 0 {
				name, value = trim(pair[:j]), trim(pair[j+1:])
			}
			switch name {
			case CookieOptOut:
				c.optOut = true
			case CookieUID:
				if !c.hasUID {
					if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
						value = value[1 : len(value)-1]
					}
					c.uid, c.hasUID = value, true
				}
			}
		}
	}
}

// validUID reports whether a uid cookie value is kept.
func validUID(s string) bool {
	return s != "" && len(s) <= MaxCookieValue && onlyUnreserved(s) && !onlyDots(s)
}

func onlyUnreserved(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isUnreserved(s[i]) {
			return false
		}
	}
	return true
}

func onlyDots(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '.' {
			return false
		}
	}
	return true
}

// steering reports whether s looks like an attempt to change where a
// redirect goes or to split a response: "//", ':', '\', '@', CR, LF, other
// whitespace, or an escaped CR or LF that survived decoding.
func steering(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ':', '\\', '@', ' ', '\t', '\r', '\n', '\v', '\f':
			return true
		case '/':
			if i+1 < len(s) && s[i+1] == '/' {
				return true
			}
		case '%':
			if i+2 < len(s) && s[i+1] == '0' && (s[i+2]|0x20 == 'd' || s[i+2]|0x20 == 'a') {
				return true
			}
		}
	}
	return false
}

func trim(s string) string { return strings.Trim(s, " \t") }
