package eye

import (
	"strconv"
	"unicode/utf8"
)

// scan reads the body once, without recursion, before anything else does.
// It checks that the body is one JSON value as RFC 8259 defines it, in
// UTF-8, with arrays and objects nested at most max_depth deep, so that
// fastjson's recursive parser only ever sees bounded, valid input (fastjson's
// parser is lenient and its validator recurses without a bound). One pass
// instead of three (depth, syntax, UTF-8) matters: under the edge's call
// deadline wazero checks for cancellation at every loop iteration, which
// makes each byte loop several times slower than natively.
//
// For a top-level array it counts the elements and records in r.seps the
// offsets of the '[', of the commas between elements and of the ']' (at most
// max_events+2 of them), so element i's text is body[seps[i]+1:seps[i+1]]. It
// sets r.plain when no string has an escape or U+2028/U+2029.
//
// It is stricter than RFC 8259 in one way: a \u escape of half a UTF-16
// surrogate pair must be followed by the other half (encoding/json would
// decode a lone half as U+FFFD; fastjson keeps it as text or drops the next
// character).
//
// It returns the number of elements (1 when the body is not an array), or
// why the body is refused: overLimit when it is nested deeper than max_depth
// or an object has more than max_keys keys (then r.overKeys is set), or a
// syntax error in why. The limits are checked as the body is read, so a
// hostile body costs no more than the bytes before the limit.
func (r *Rule) scan(b []byte) (elems int, why string, overLimit bool) {
	r.seps = r.seps[:0]
	r.plain = true
	r.overKeys = false
	stack := r.stack[:0] // true: in an object
	keys := r.keys[:0]   // keys of each open container so far
	i := skipWS(b, 0)
	if i == len(b) {
		return 0, "the body is empty", false
	}
	topArray := b[i] == '['
	for {
		// A value starts at i.
		if i == len(b) {
			return 0, "unexpected end of JSON", false
		}
		switch c := b[i]; {
		case c == '{' || c == '[':
			if len(stack) == r.maxDepth {
				return 0, "", true
			}
			stack = append(stack, c == '{')
			keys = append(keys, 0)
			if topArray && len(stack) == 1 {
				r.seps = append(r.seps, i)
			}
			i = skipWS(b, i+1)
			if i < len(b) && (c == '{' && b[i] == '}' || c == '[' && b[i] == ']') {
				stack = stack[:len(stack)-1]
				keys = keys[:len(keys)-1]
				if topArray && len(stack) == 0 {
					r.seps = append(r.seps, i)
				}
				i++
				break // to after the value
			}
			if c == '{' {
				keys[len(keys)-1]++
				if i, why = r.scanKey(b, i); why != "" {
					return 0, why, false
				}
			}
			continue // to the first value inside
		case c == '"':
			if i, why = r.scanString(b, i); why != "" {
				return 0, why, false
			}
		case c == 't' || c == 'f' || c == 'n':
			lit := literal(c)
			if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
				return 0, unexpected(b, i), false
			}
			i += len(lit)
		case c == '-' || '0' <= c && c <= '9':
			var ok bool
			if i, ok = scanNumber(b, i); !ok {
				return 0, unexpected(b, i), false
			}
		default:
			return 0, unexpected(b, i), false
		}
		// After a value: close containers until a comma leads to the next
		// value, or the top-level value ends.
		for {
			i = skipWS(b, i)
			if len(stack) == 0 {
				if i != len(b) {
					return 0, "unexpected " + describe(b, i) + " after the top-level value", false
				}
				if !topArray {
					return 1, "", false
				}
				return elems, "", false
			}
			if i == len(b) {
				return 0, "unexpected end of JSON", false
			}
			if topArray && len(stack) == 1 {
				elems++ // an element just ended
			}
			inObject := stack[len(stack)-1]
			if c := b[i]; c == ',' {
				if topArray && len(stack) == 1 && len(r.seps) <= r.maxEvents {
					r.seps = append(r.seps, i)
				}
				i = skipWS(b, i+1)
				if inObject {
					if keys[len(keys)-1]++; keys[len(keys)-1] > r.maxKeys {
						r.overKeys = true
						return 0, "", true
					}
					if i, why = r.scanKey(b, i); why != "" {
						return 0, why, false
					}
				}
				break // to the next value
			} else if inObject && c == '}' || !inObject && c == ']' {
				stack = stack[:len(stack)-1]
				keys = keys[:len(keys)-1]
				if topArray && len(stack) == 0 {
					r.seps = append(r.seps, i)
				}
				i++
				continue
			}
			return 0, unexpected(b, i), false
		}
	}
}

func literal(c byte) string {
	switch c {
	case 't':
		return "true"
	case 'f':
		return "false"
	}
	return "null"
}

// scanKey reads `"key" :` at i, and returns where the value starts.
func (r *Rule) scanKey(b []byte, i int) (int, string) {
	if i == len(b) || b[i] != '"' {
		return 0, "expected a string key, found " + describe(b, i)
	}
	i, why := r.scanString(b, i)
	if why != "" {
		return 0, why
	}
	i = skipWS(b, i)
	if i == len(b) || b[i] != ':' {
		return 0, "expected ':' after an object key, found " + describe(b, i)
	}
	return skipWS(b, i+1), ""
}

// scanString reads the string that starts at i, and returns where it ends.
func (r *Rule) scanString(b []byte, i int) (int, string) {
	start := i
	for i++; i < len(b); {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, ""
		case c == '\\':
			r.plain = false
			if i+1 == len(b) {
				return 0, "unterminated string starting at offset " + strconv.Itoa(start)
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				u, ok := hex4(b, i)
				switch {
				case !ok:
					return 0, "invalid \\u escape at offset " + strconv.Itoa(i)
				case u >= 0xdc00 && u <= 0xdfff:
					return 0, "unpaired UTF-16 surrogate escape at offset " + strconv.Itoa(i)
				case u >= 0xd800 && u <= 0xdbff:
					// Only a pair encodes a character; fastjson would
					// keep a lone half as text, or drop what follows it.
					if lo, ok := hex4(b, i+6); !ok || lo < 0xdc00 || lo > 0xdfff {
						return 0, "unpaired UTF-16 surrogate escape at offset " + strconv.Itoa(i)
					}
					i += 6
				}
				i += 6
			default:
				return 0, "invalid escape at offset " + strconv.Itoa(i)
			}
		case c < 0x20:
			return 0, "control character " + describe(b, i) + " in a string"
		case c < utf8.RuneSelf:
			i++
		default:
			ru, size := utf8.DecodeRune(b[i:])
			if ru == utf8.RuneError && size == 1 {
				return 0, "invalid UTF-8 at offset " + strconv.Itoa(i)
			}
			if ru == '\u2028' || ru == '\u2029' {
				r.plain = false
			}
			i += size
		}
	}
	return 0, "unterminated string starting at offset " + strconv.Itoa(start)
}

// scanNumber reads the number that starts at i, and returns where it ends.
func scanNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i == len(b) || !isDigit(b[i]):
		return i, false
	case b[i] == '0':
		i++
	default:
		i = skipDigits(b, i)
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i == len(b) || !isDigit(b[i]) {
			return i, false
		}
		i = skipDigits(b, i)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i == len(b) || !isDigit(b[i]) {
			return i, false
		}
		i = skipDigits(b, i)
	}
	return i, true
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// hex4 reads the \uXXXX escape at i.
func hex4(b []byte, i int) (rune, bool) {
	if len(b)-i < 6 || b[i] != '\\' || b[i+1] != 'u' {
		return 0, false
	}
	var u rune
	for _, c := range b[i+2 : i+6] {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		u = u<<4 | rune(d)
	}
	return u, true
}

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipWS(b []byte, i int) int {
	for i < len(b) && isWS(b[i]) {
		i++
	}
	return i
}

func trimWS(b []byte) []byte {
	b = b[skipWS(b, 0):]
	for len(b) > 0 && isWS(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// unexpected describes the byte at i as an error.
func unexpected(b []byte, i int) string {
	if i == len(b) {
		return "unexpected end of JSON"
	}
	return "invalid character " + describe(b, i)
}

// describe names the byte at i and its offset.
func describe(b []byte, i int) string {
	if i >= len(b) {
		return "the end of the body"
	}
	c := b[i]
	var s string
	if c >= 0x20 && c < 0x7f {
		s = strconv.QuoteRune(rune(c))
	} else {
		s = "0x" + strconv.FormatUint(uint64(c), 16)
	}
	return s + " at offset " + strconv.Itoa(i)
}
