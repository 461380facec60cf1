// Package eventdata reads fields out of an event's data, the JSON object of
// the payload's fields that rules write (eventpb.Event.Data).
package eventdata

import "github.com/valyala/fastjson"

// parsers are reused: a fastjson Parser keeps its buffers between parses.
var parsers fastjson.ParserPool

// Field returns data's top-level field key as text: a string's contents, a
// number's or a boolean's JSON text, an object's or array's JSON. It reports
// false when data is not a JSON object, or the field is absent or null.
func Field(data []byte, key string) (string, bool) {
	if len(data) == 0 {
		return "", false
	}
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := p.ParseBytes(data)
	if err != nil || v.Type() != fastjson.TypeObject {
		return "", false
	}
	f := v.Get(key)
	if f == nil || f.Type() == fastjson.TypeNull {
		return "", false
	}
	if f.Type() == fastjson.TypeString {
		return string(f.GetStringBytes()), true
	}
	return f.String(), true
}
