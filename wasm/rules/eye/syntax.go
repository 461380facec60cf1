package eye

import "strings"

// parseTimestamp reads an ISO 8601 timestamp as The Eye's clients send it:
//
//	2006-01-02T15:04:05[.f…][Z|±hh:mm]
//
// with a fraction of 1 to 9 digits, and a space allowed in place of the T
// (Python's "%Y-%m-%d %H:%M:%S.%f"). Without an offset it is UTC. It returns
// unix seconds, the nanoseconds within the second, and the year as written.
// It is written out rather than calling time.Parse so that refusing garbage
// allocates nothing.
func parseTimestamp(s string) (sec, nsec int64, year int, ok bool) {
	if len(s) < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':' {
		return 0, 0, 0, false
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	second, ok6 := digits(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		month < 1 || month > 12 || day < 1 || day > daysIn(year, month) ||
		hour > 23 || minute > 59 || second > 59 {
		return 0, 0, 0, false
	}
	rest := s[19:]
	if len(rest) > 0 && rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 1 || n > 10 {
			return 0, 0, 0, false
		}
		f, _ := digits(rest[1:n])
		for k := n; k < 10; k++ {
			f *= 10
		}
		nsec = int64(f)
		rest = rest[n:]
	}
	offset := 0
	switch {
	case rest == "" || rest == "Z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, ok1 := digits(rest[1:3])
		om, ok2 := digits(rest[4:6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, 0, 0, false
		}
		offset = oh*3600 + om*60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return 0, 0, 0, false
	}
	sec = daysFromCivil(year, month, day)*86400 + int64(hour*3600+minute*60+second-offset)
	return sec, nsec, year, true
}

// digits reads a run of ASCII digits (at most 9).
func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns the days from 1970-01-01 to the given proleptic
// Gregorian date (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// checkHost returns why s is not a host as data.host may be, or "". A host
// is a DNS name (RFC 1123 labels of 1 to 63 letters, digits and hyphens, not
// starting or ending with a hyphen; at most 253 characters; a trailing dot
// allowed), optionally after http:// or https:// and before :port.
func checkHost(s string) string {
	if s == "" {
		return "empty"
	}
	rest := s
	switch {
	case hasPrefixFold(rest, "https://"):
		rest = rest[len("https://"):]
	case hasPrefixFold(rest, "http://"):
		rest = rest[len("http://"):]
	case strings.Contains(rest, "://"):
		return "the only schemes allowed are http:// and https://"
	}
	switch {
	case strings.IndexByte(rest, '/') >= 0 || strings.IndexByte(rest, '?') >= 0 || strings.IndexByte(rest, '#') >= 0:
		return "has a path, query or fragment"
	case strings.IndexByte(rest, '@') >= 0:
		return "has user info"
	case hasSpace(rest):
		return "has whitespace"
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		port := rest[i+1:]
		rest = rest[:i]
		p, ok := digits(port)
		if !ok || port == "" || len(port) > 5 || p < 1 || p > 65535 {
			return "has an invalid port"
		}
	}
	rest = strings.TrimSuffix(rest, ".")
	if rest == "" {
		return "empty"
	}
	if len(rest) > 253 {
		return "longer than 253 characters"
	}
	for len(rest) > 0 {
		label := rest
		if i := strings.IndexByte(rest, '.'); i >= 0 {
			label, rest = rest[:i], rest[i+1:]
			if rest == "" {
				return "has an empty label"
			}
		} else {
			rest = ""
		}
		switch {
		case label == "":
			return "has an empty label"
		case len(label) > 63:
			return "has a label longer than 63 characters"
		case label[0] == '-' || label[len(label)-1] == '-':
			return "has a label starting or ending with a hyphen"
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return "has a character other than letters, digits, hyphens and dots"
			}
		}
	}
	return ""
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func hasSpace(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n' {
			return true
		}
	}
	return false
}
