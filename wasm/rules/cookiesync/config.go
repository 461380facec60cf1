package cookiesync

import (
	"errors"
	"strconv"
	"strings"

	"github.com/edgetrack/edgetrack/wasm/abi"
)

// Defaults and limits of the settings.
const (
	DefaultCookieMaxAge = 31536000 // one year, in seconds
	MaxCookieMaxAge     = 34560000 // 400 days: browsers cap cookie lifetimes there
	DefaultMaxIDBytes   = 128
	MaxMaxIDBytes       = 1024
	MaxPartnerName      = 64
)

// Setting names.
const (
	SettingPartners     = "partners"
	SettingAllowHTTP    = "allow_http"
	SettingCookieMaxAge = "cookie_max_age"
	SettingCookieDomain = "cookie_domain"
	SettingVendorID     = "vendor_id"
	SettingGDPRDefault  = "gdpr_default"
	SettingMaxIDBytes   = "max_id_bytes"
)

var knownSettings = [...]string{
	SettingPartners, SettingAllowHTTP, SettingCookieMaxAge, SettingCookieDomain,
	SettingVendorID, SettingGDPRDefault, SettingMaxIDBytes,
}

// Placeholders of partner URL templates.
const (
	placeholderUID = "{uid}"
	placeholderPI  = "{pi}"
)

// hole is what a template inserts between two literal pieces.
type hole uint8

const (
	holeUID hole = iota + 1
	holePI
)

// template is a partner URL with {uid} and {pi} holes, validated by New.
// Expanded, it is lits[0] hole[0] lits[1] ... lits[n].
type template struct {
	raw    string
	lits   []string
	holes  []hole
	scheme string // as net/url parses the template
	host   string // lower case, with port if any
}

// partner is one configured partner.
type partner struct {
	name       string
	sync, done template
}

// settings are the rule's validated settings.
type settings struct {
	partners     []partner
	allowHTTP    bool
	cookieMaxAge int64
	cookieDomain string
	vendorID     uint16 // 0: not configured
	gdprApplies  bool   // gdpr_default
	maxID        int
}

// problems collects configuration errors so that New reports them all.
type problems []string

func (p *problems) add(setting, msg string) { *p = append(*p, setting+": "+msg) }

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return errors.New("cookiesync: " + strings.Join(p, "; "))
}

// parseSettings validates every setting of cfg and reports all problems.
func parseSettings(cfg *abi.Config) (settings, error) {
	s := settings{cookieMaxAge: DefaultCookieMaxAge, maxID: DefaultMaxIDBytes}
	var p problems
	get := cfg.Values

	for i, st := range cfg.Settings {
		known := false
		for _, n := range knownSettings {
			known = known || st.Key == n
		}
		if !known {
			p.add(strconv.Quote(st.Key), "unknown setting")
		}
		for _, earlier := range cfg.Settings[:i] {
			if earlier.Key == st.Key {
				p.add(st.Key, "is given twice; give its values in one setting")
				break
			}
		}
	}
	single := func(key string) (string, bool) {
		v := get(key)
		switch len(v) {
		case 0:
			return "", false
		case 1:
			return v[0], true
		}
		p.add(key, "has "+strconv.Itoa(len(v))+" values; give one")
		return v[0], true
	}

	if v, ok := single(SettingAllowHTTP); ok {
		switch v {
		case "true":
			s.allowHTTP = true
		case "false", "":
		default:
			p.add(SettingAllowHTTP, strconv.Quote(v)+" is not true or false")
		}
	}
	if v, ok := single(SettingCookieMaxAge); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > MaxCookieMaxAge {
			p.add(SettingCookieMaxAge, strconv.Quote(v)+" is not a number of seconds from 1 to "+strconv.Itoa(MaxCookieMaxAge))
		} else {
			s.cookieMaxAge = n
		}
	}
	if v, ok := single(SettingCookieDomain); ok && v != "" {
		if !validDomain(v) {
			p.add(SettingCookieDomain, strconv.Quote(v)+" is not a domain name")
		} else {
			s.cookieDomain = strings.ToLower(v)
		}
	}
	if v, ok := single(SettingVendorID); ok {
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil || n < 1 {
			p.add(SettingVendorID, strconv.Quote(v)+" is not a TCF vendor id from 1 to 65535")
		} else {
			s.vendorID = uint16(n)
		}
	}
	switch v, ok := single(SettingGDPRDefault); {
	case !ok || v == "":
		p.add(SettingGDPRDefault, "is required: applies or not_applies (what a request without a gdpr parameter means)")
	case v == "applies":
		s.gdprApplies = true
		if s.vendorID == 0 && len(get(SettingVendorID)) == 0 {
			p.add(SettingVendorID, "is required when gdpr_default is applies")
		}
	case v == "not_applies":
	default:
		p.add(SettingGDPRDefault, strconv.Quote(v)+" is not applies or not_applies")
	}
	if v, ok := single(SettingMaxIDBytes); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxMaxIDBytes {
			p.add(SettingMaxIDBytes, strconv.Quote(v)+" is not a number from 1 to "+strconv.Itoa(MaxMaxIDBytes))
		} else {
			s.maxID = n
		}
	}

	values := get(SettingPartners)
	if len(values) == 0 {
		p.add(SettingPartners, "none configured")
	}
	for i, v := range values {
		where := SettingPartners + "[" + strconv.Itoa(i) + "]"
		pt, msgs := parsePartner(v, s.allowHTTP)
		for _, m := range msgs {
			p.add(where, m)
		}
		if len(msgs) > 0 {
			continue
		}
		for _, q := range s.partners {
			if strings.EqualFold(q.name, pt.name) {
				p.add(where, "partner "+strconv.Quote(pt.name)+" is configured twice (names are compared ignoring case)")
			}
		}
		s.partners = append(s.partners, pt)
	}
	return s, p.err()
}

// parsePartner parses "name|sync_url|done_url|host1,host2".
func parsePartner(v string, allowHTTP bool) (partner, []string) {
	var msgs []string
	f := strings.Split(v, "|")
	if len(f) != 4 {
		return partner{}, []string{"want name|sync_url|done_url|allowed_host1,allowed_host2, got " + strconv.Itoa(len(f)) + " field(s)"}
	}
	pt := partner{name: f[0]}
	if !validName(pt.name) {
		msgs = append(msgs, "name "+strconv.Quote(pt.name)+" is not 1-"+strconv.Itoa(MaxPartnerName)+" of [A-Za-z0-9._-]")
	}
	var hosts []string
	for _, h := range strings.Split(f[3], ",") {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" || !validHostPort(h) {
			msgs = append(msgs, "allowed host "+strconv.Quote(h)+" is not a host name")
			continue
		}
		hosts = append(hosts, h)
	}
	var err string
	if pt.sync, err = parseTemplate(f[1], allowHTTP, hosts); err != "" {
		msgs = append(msgs, "sync_url: "+err)
	} else if !strings.Contains(f[1], placeholderUID) {
		msgs = append(msgs, "sync_url: must contain {uid}")
	} else if strings.Contains(f[1], placeholderPI) {
		msgs = append(msgs, "sync_url: may not contain {pi}: the partner's id is not known at init")
	}
	if pt.done, err = parseTemplate(f[2], allowHTTP, hosts); err != "" {
		msgs = append(msgs, "done_url: "+err)
	} else if !strings.Contains(f[2], placeholderUID) {
		msgs = append(msgs, "done_url: must contain {uid}")
	}
	return pt, msgs
}

// parseTemplate validates a partner URL template; it returns a reason when
// the template is refused.
func parseTemplate(raw string, allowHTTP bool, hosts []string) (template, string) {
	t := template{raw: raw}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c <= ' ' || c >= 0x7f || c == '\\' || c == '"' || c == '<' || c == '>' || c == '`' || c == '^' {
			return t, strconv.Quote(raw) + " has a byte not allowed in a URL template (" + strconv.QuoteRune(rune(c)) + ")"
		}
	}
	rest := raw
	for {
		i := strings.IndexAny(rest, "{}")
		if i < 0 {
			t.lits = append(t.lits, rest)
			break
		}
		switch {
		case strings.HasPrefix(rest[i:], placeholderUID):
			t.lits = append(t.lits, rest[:i])
			t.holes = append(t.holes, holeUID)
			rest = rest[i+len(placeholderUID):]
		case strings.HasPrefix(rest[i:], placeholderPI):
			t.lits = append(t.lits, rest[:i])
			t.holes = append(t.holes, holePI)
			rest = rest[i+len(placeholderPI):]
		default:
			return t, strconv.Quote(raw) + " has a '{' or '}' that is not {uid} or {pi}"
		}
	}

	switch {
	case strings.HasPrefix(raw, "https://"):
	case strings.HasPrefix(raw, "http://") && allowHTTP:
	case strings.HasPrefix(raw, "http://"):
		return t, strconv.Quote(raw) + " is http; partner URLs must be https (or set allow_http)"
	default:
		return t, strconv.Quote(raw) + " is not an absolute https URL"
	}
	authority := raw[strings.Index(raw, "://")+3:]
	if i := strings.IndexAny(authority, "/?#"); i >= 0 {
		authority = authority[:i]
	}
	scheme, host, ok := splitOrigin(raw)
	switch {
	case strings.ContainsAny(authority, "{}"):
		return t, strconv.Quote(raw) + " has a placeholder in its scheme or host"
	case strings.Contains(authority, "@"):
		return t, strconv.Quote(raw) + " has userinfo"
	case !ok || host != authority || !validHostPort(strings.ToLower(host)):
		return t, strconv.Quote(raw) + " does not have a plain host"
	}
	t.scheme = scheme
	t.host = strings.ToLower(host)
	for _, h := range hosts {
		if h == t.host {
			return t, ""
		}
	}
	return t, "host " + strconv.Quote(t.host) + " of " + strconv.Quote(raw) + " is not among the partner's allowed hosts"
}

func validName(s string) bool {
	if s == "" || len(s) > MaxPartnerName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlnum(c) || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validDomain accepts a DNS name, optionally with a leading dot.
func validDomain(s string) bool {
	s = strings.TrimPrefix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !(isAlnum(c) || c == '-') {
				return false
			}
		}
	}
	return true
}

// validHostPort accepts a DNS name or IPv4 address with an optional port, or
// a bracketed IPv6 address with an optional port.
func validHostPort(s string) bool {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		i := strings.IndexByte(s, ']')
		if i < 0 {
			return false
		}
		for j := 1; j < i; j++ {
			if c := s[j]; !(isHex(c) || c == ':' || c == '.') {
				return false
			}
		}
		host, port = "", s[i+1:]
		if port != "" && port[0] != ':' {
			return false
		}
	} else if i := strings.IndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i:]
	}
	if port != "" {
		n, err := strconv.Atoi(port[1:])
		if err != nil || n < 1 || n > 65535 {
			return false
		}
	}
	return host == "" && strings.HasPrefix(s, "[") || host != "" && !strings.HasPrefix(host, ".") && validDomain(host)
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }
