package abi

import (
	"errors"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrMalformed is returned for bytes that are not a valid encoding.
var ErrMalformed = errors.New("abi: malformed message")

// Field numbers, as in proto/rulepb/rule.proto and proto/eventpb/event.proto.
const (
	fHeaderName, fHeaderValue = 1, 2

	fSettingKey, fSettingValues = 1, 2

	fConfigVersion, fConfigRule, fConfigSettings = 1, 2, 3

	fReqMethod, fReqPath, fReqQuery, fReqHeaders, fReqBody, fReqRemoteIP, fReqReceivedAt = 1, 2, 3, 4, 5, 6, 7

	fCookieName, fCookieValue, fCookieMaxAge, fCookiePath, fCookieDomain, fCookieSecure, fCookieHTTPOnly, fCookieSameSite = 1, 2, 3, 4, 5, 6, 7, 8

	fVerdictStatus, fVerdictMessage, fVerdictHeaders, fVerdictBody, fVerdictLocation, fVerdictCookies, fVerdictEvents = 1, 2, 3, 4, 5, 6, 7

	fEvID, fEvSource, fEvReceivedAt, fEvClientTime, fEvSession, fEvCategory, fEvName, fEvData, fEvIP, fEvEdge, fEvRule = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
)

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendBool(b []byte, num protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	return appendVarint(b, num, 1)
}

// beginMessage starts a length-delimited sub-message: it appends the tag and
// a one-byte length placeholder and returns where the content starts.
// endMessage fixes the length up, moving the content when the length needs
// more than one byte. (No closures: TinyGo would allocate them on the heap.)
func beginMessage(b []byte, num protowire.Number) ([]byte, int) {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return append(b, 0), len(b) + 1
}

func endMessage(b []byte, start int) []byte {
	n := len(b) - start
	if n < 0x80 {
		b[start-1] = byte(n)
		return b
	}
	size := protowire.SizeVarint(uint64(n))
	for i := 1; i < size; i++ {
		b = append(b, 0)
	}
	copy(b[start-1+size:], b[start:start+n])
	protowire.AppendVarint(b[start-1:start-1], uint64(n))
	return b
}

// fieldReader walks the fields of one message.
type fieldReader struct {
	b   []byte
	err error
}

// next returns the next field's number, type and, for length-delimited
// fields, its bytes (v for varints). ok is false at the end or on error.
func (r *fieldReader) next() (num protowire.Number, typ protowire.Type, v uint64, data []byte, ok bool) {
	if len(r.b) == 0 || r.err != nil {
		return 0, 0, 0, nil, false
	}
	num, typ, n := protowire.ConsumeTag(r.b)
	if n < 0 {
		r.err = ErrMalformed
		return 0, 0, 0, nil, false
	}
	r.b = r.b[n:]
	switch typ {
	case protowire.VarintType:
		v, n = protowire.ConsumeVarint(r.b)
	case protowire.BytesType:
		data, n = protowire.ConsumeBytes(r.b)
	default:
		n = protowire.ConsumeFieldValue(num, typ, r.b)
	}
	if n < 0 {
		r.err = ErrMalformed
		return 0, 0, 0, nil, false
	}
	r.b = r.b[n:]
	return num, typ, v, data, true
}

// AppendHeader and friends append the encoding of one message.

func appendHeaders(b []byte, num protowire.Number, hs []Header) []byte {
	for i := range hs {
		var start int
		b, start = beginMessage(b, num)
		b = appendString(b, fHeaderName, hs[i].Name)
		b = appendString(b, fHeaderValue, hs[i].Value)
		b = endMessage(b, start)
	}
	return b
}

// decodeHeader decodes a Header, turning bytes into strings with str (a
// copy, or an alias for the zero-copy request decode).
func decodeHeader(data []byte, str func([]byte) string) (Header, error) {
	var h Header
	r := fieldReader{b: data}
	for num, typ, _, d, ok := r.next(); ok; num, typ, _, d, ok = r.next() {
		if typ != protowire.BytesType {
			continue
		}
		switch num {
		case fHeaderName:
			h.Name = str(d)
		case fHeaderValue:
			h.Value = str(d)
		}
	}
	return h, r.err
}

// AppendConfig appends the encoding of c to b.
func AppendConfig(b []byte, c *Config) []byte {
	b = appendVarint(b, fConfigVersion, uint64(c.ABIVersion))
	b = appendString(b, fConfigRule, c.Rule)
	for i := range c.Settings {
		var start int
		b, start = beginMessage(b, fConfigSettings)
		b = appendString(b, fSettingKey, c.Settings[i].Key)
		for _, v := range c.Settings[i].Values {
			// Repeated strings keep empty elements.
			b = protowire.AppendTag(b, fSettingValues, protowire.BytesType)
			b = protowire.AppendString(b, v)
		}
		b = endMessage(b, start)
	}
	return b
}

// DecodeConfig decodes a Config.
func DecodeConfig(data []byte) (*Config, error) {
	c := &Config{}
	r := fieldReader{b: data}
	for num, typ, v, d, ok := r.next(); ok; num, typ, v, d, ok = r.next() {
		switch {
		case num == fConfigVersion && typ == protowire.VarintType:
			c.ABIVersion = uint32(v)
		case num == fConfigRule && typ == protowire.BytesType:
			c.Rule = string(d)
		case num == fConfigSettings && typ == protowire.BytesType:
			var s Setting
			sr := fieldReader{b: d}
			for sn, st, _, sd, sok := sr.next(); sok; sn, st, _, sd, sok = sr.next() {
				if st != protowire.BytesType {
					continue
				}
				switch sn {
				case fSettingKey:
					s.Key = string(sd)
				case fSettingValues:
					s.Values = append(s.Values, string(sd))
				}
			}
			if sr.err != nil {
				return nil, sr.err
			}
			c.Settings = append(c.Settings, s)
		}
	}
	return c, r.err
}

// AppendRequest appends the encoding of q to b.
func AppendRequest(b []byte, q *Request) []byte {
	b = appendString(b, fReqMethod, q.Method)
	b = appendString(b, fReqPath, q.Path)
	b = appendString(b, fReqQuery, q.Query)
	b = appendHeaders(b, fReqHeaders, q.Headers)
	b = appendBytes(b, fReqBody, q.Body)
	b = appendString(b, fReqRemoteIP, q.RemoteIP)
	b = appendVarint(b, fReqReceivedAt, uint64(q.ReceivedAt))
	return b
}

// DecodeRequest decodes a Request into q, reusing q's header slice. Nothing
// is copied: Body and every string alias data, so q is valid only as long as
// data is unchanged (in a guest: until the next call).
func DecodeRequest(data []byte, q *Request) error {
	*q = Request{Headers: q.Headers[:0]}
	r := fieldReader{b: data}
	for num, typ, v, d, ok := r.next(); ok; num, typ, v, d, ok = r.next() {
		if typ == protowire.VarintType {
			if num == fReqReceivedAt {
				q.ReceivedAt = int64(v)
			}
			continue
		}
		if typ != protowire.BytesType {
			continue
		}
		switch num {
		case fReqMethod:
			q.Method = alias(d)
		case fReqPath:
			q.Path = alias(d)
		case fReqQuery:
			q.Query = alias(d)
		case fReqHeaders:
			h, err := decodeHeader(d, alias)
			if err != nil {
				return err
			}
			q.Headers = append(q.Headers, h)
		case fReqBody:
			q.Body = d
		case fReqRemoteIP:
			q.RemoteIP = alias(d)
		}
	}
	return r.err
}

// AppendEvent appends the encoding of e (an eventpb.Event) to b.
func AppendEvent(b []byte, e *Event) []byte {
	b = appendString(b, fEvID, e.ID)
	b = appendVarint(b, fEvSource, uint64(e.Source))
	b = appendVarint(b, fEvReceivedAt, uint64(e.ReceivedAt))
	b = appendVarint(b, fEvClientTime, uint64(e.ClientTime))
	b = appendString(b, fEvSession, e.Session)
	b = appendString(b, fEvCategory, e.Category)
	b = appendString(b, fEvName, e.Name)
	b = appendBytes(b, fEvData, e.Data)
	b = appendString(b, fEvIP, e.IP)
	b = appendString(b, fEvEdge, e.Edge)
	b = appendString(b, fEvRule, e.Rule)
	return b
}

// DecodeEvent decodes an eventpb.Event. Data is a copy.
func DecodeEvent(data []byte, e *Event) error { return decodeEvent(data, e, copyString, copyBytes) }

// decodeEvent decodes an eventpb.Event, turning bytes into strings with str
// and into Data with byt (copies, or aliases of a buffer the caller owns).
func decodeEvent(data []byte, e *Event, str func([]byte) string, byt func([]byte) []byte) error {
	*e = Event{}
	r := fieldReader{b: data}
	for num, typ, v, d, ok := r.next(); ok; num, typ, v, d, ok = r.next() {
		if typ == protowire.VarintType {
			switch num {
			case fEvSource:
				e.Source = int32(v)
			case fEvReceivedAt:
				e.ReceivedAt = int64(v)
			case fEvClientTime:
				e.ClientTime = int64(v)
			}
			continue
		}
		if typ != protowire.BytesType {
			continue
		}
		switch num {
		case fEvID:
			e.ID = str(d)
		case fEvSession:
			e.Session = str(d)
		case fEvCategory:
			e.Category = str(d)
		case fEvName:
			e.Name = str(d)
		case fEvData:
			e.Data = byt(d)
		case fEvIP:
			e.IP = str(d)
		case fEvEdge:
			e.Edge = str(d)
		case fEvRule:
			e.Rule = str(d)
		}
	}
	return r.err
}

// SizeHint returns a size that the encoding of v will not exceed, to size a
// buffer once.
func SizeHint(v *Verdict) int {
	n := 32 + len(v.Message) + len(v.Body) + len(v.Location)
	for i := range v.Headers {
		n += 16 + len(v.Headers[i].Name) + len(v.Headers[i].Value)
	}
	for i := range v.Cookies {
		c := &v.Cookies[i]
		n += 64 + len(c.Name) + len(c.Value) + len(c.Path) + len(c.Domain) + len(c.SameSite)
	}
	for i := range v.Events {
		e := &v.Events[i]
		n += 96 + len(e.ID) + len(e.Session) + len(e.Category) + len(e.Name) + len(e.Data) + len(e.IP) + len(e.Edge) + len(e.Rule)
	}
	return n
}

// AppendVerdict appends the encoding of v to b.
func AppendVerdict(b []byte, v *Verdict) []byte {
	b = appendVarint(b, fVerdictStatus, uint64(v.Status))
	b = appendString(b, fVerdictMessage, v.Message)
	b = appendHeaders(b, fVerdictHeaders, v.Headers)
	b = appendBytes(b, fVerdictBody, v.Body)
	b = appendString(b, fVerdictLocation, v.Location)
	for i := range v.Cookies {
		c := &v.Cookies[i]
		var start int
		b, start = beginMessage(b, fVerdictCookies)
		b = appendString(b, fCookieName, c.Name)
		b = appendString(b, fCookieValue, c.Value)
		b = appendVarint(b, fCookieMaxAge, uint64(c.MaxAge))
		b = appendString(b, fCookiePath, c.Path)
		b = appendString(b, fCookieDomain, c.Domain)
		b = appendBool(b, fCookieSecure, c.Secure)
		b = appendBool(b, fCookieHTTPOnly, c.HTTPOnly)
		b = appendString(b, fCookieSameSite, c.SameSite)
		b = endMessage(b, start)
	}
	for i := range v.Events {
		var start int
		b, start = beginMessage(b, fVerdictEvents)
		b = AppendEvent(b, &v.Events[i])
		b = endMessage(b, start)
	}
	return b
}

// DecodeVerdict decodes a Verdict. It copies data once, and every string and
// byte slice of the result aliases that copy (slices capped at their
// length), so the result stays valid after data is reused, and decoding
// allocates twice (the copy and the events) rather than once per field.
func DecodeVerdict(data []byte, v *Verdict) error {
	*v = Verdict{}
	if len(data) == 0 {
		return nil
	}
	data = append([]byte(nil), data...)
	events := 0
	r := fieldReader{b: data}
	for num, typ, _, _, ok := r.next(); ok; num, typ, _, _, ok = r.next() {
		if num == fVerdictEvents && typ == protowire.BytesType {
			events++
		}
	}
	if r.err != nil {
		return r.err
	}
	if events > 0 {
		v.Events = make([]Event, 0, events)
	}
	r = fieldReader{b: data}
	for num, typ, x, d, ok := r.next(); ok; num, typ, x, d, ok = r.next() {
		if typ == protowire.VarintType {
			if num == fVerdictStatus {
				v.Status = uint32(x)
			}
			continue
		}
		if typ != protowire.BytesType {
			continue
		}
		switch num {
		case fVerdictMessage:
			v.Message = alias(d)
		case fVerdictHeaders:
			h, err := decodeHeader(d, alias)
			if err != nil {
				return err
			}
			v.Headers = append(v.Headers, h)
		case fVerdictBody:
			v.Body = aliasBytes(d)
		case fVerdictLocation:
			v.Location = alias(d)
		case fVerdictCookies:
			c, err := decodeCookie(d)
			if err != nil {
				return err
			}
			v.Cookies = append(v.Cookies, c)
		case fVerdictEvents:
			v.Events = append(v.Events, Event{})
			if err := decodeEvent(d, &v.Events[len(v.Events)-1], alias, aliasBytes); err != nil {
				return err
			}
		}
	}
	return r.err
}

func decodeCookie(data []byte) (Cookie, error) {
	var c Cookie
	r := fieldReader{b: data}
	for num, typ, x, d, ok := r.next(); ok; num, typ, x, d, ok = r.next() {
		if typ == protowire.VarintType {
			switch num {
			case fCookieMaxAge:
				c.MaxAge = int64(x)
			case fCookieSecure:
				c.Secure = x != 0
			case fCookieHTTPOnly:
				c.HTTPOnly = x != 0
			}
			continue
		}
		if typ != protowire.BytesType {
			continue
		}
		switch num {
		case fCookieName:
			c.Name = alias(d)
		case fCookieValue:
			c.Value = alias(d)
		case fCookiePath:
			c.Path = alias(d)
		case fCookieDomain:
			c.Domain = alias(d)
		case fCookieSameSite:
			c.SameSite = alias(d)
		}
	}
	return c, r.err
}

// alias returns b as a string without copying; b must not change while the
// string is in use.
func alias(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// Alias returns b as a string without copying, for rules that build strings in
// a buffer they keep for the duration of a call. b must not change while the
// string is in use.
func Alias(b []byte) string { return alias(b) }

func copyString(b []byte) string { return string(b) }

// copyBytes returns a copy of b, nil for an empty b.
func copyBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// aliasBytes returns b capped at its length (an append copies), nil for an
// empty b.
func aliasBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b[:len(b):len(b)]
}
