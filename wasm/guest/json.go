package guest

import (
	"strconv"
	"unicode/utf8"
)

// JSONObject writes one JSON object into a caller's buffer without reflection
// (encoding/json is not dependable under TinyGo) and without allocating when
// the buffer has room. Fields are written in call order.
//
//	o := guest.NewJSONObject(buf)
//	o.String("host", h)
//	buf, obj := o.Finish()
type JSONObject struct {
	b     []byte
	start int
	n     int
}

// NewJSONObject starts an object at the end of buf.
func NewJSONObject(buf []byte) JSONObject { return JSONObject{b: buf, start: len(buf)} }

func (o *JSONObject) key(k string) {
	if o.n == 0 {
		o.b = append(o.b, '{')
	} else {
		o.b = append(o.b, ',')
	}
	o.n++
	o.b = AppendJSONString(o.b, k)
	o.b = append(o.b, ':')
}

// String adds a string field.
func (o *JSONObject) String(k, v string) { o.key(k); o.b = AppendJSONString(o.b, v) }

// Uint adds an unsigned number field.
func (o *JSONObject) Uint(k string, v uint64) { o.key(k); o.b = strconv.AppendUint(o.b, v, 10) }

// Int adds a signed number field.
func (o *JSONObject) Int(k string, v int64) { o.key(k); o.b = strconv.AppendInt(o.b, v, 10) }

// Bool adds a boolean field.
func (o *JSONObject) Bool(k string, v bool) { o.key(k); o.b = strconv.AppendBool(o.b, v) }

// Raw adds a field whose value is already valid JSON.
func (o *JSONObject) Raw(k string, v []byte) { o.key(k); o.b = append(o.b, v...) }

// Finish closes the object and returns the grown buffer and the object
// within it.
func (o *JSONObject) Finish() (buf, obj []byte) {
	if o.n == 0 {
		o.b = append(o.b, '{')
	}
	o.b = append(o.b, '}')
	return o.b, o.b[o.start:len(o.b):len(o.b)]
}

// AppendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD.
// Runs of characters that need no escaping are copied at once: under TinyGo
// every append is a runtime call, so appending byte by byte is slow.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\ufffd"...)
			i += size
			start = i
			continue
		}
		if r == 0x2028 || r == 0x2029 { // valid JSON, but not valid JavaScript
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
