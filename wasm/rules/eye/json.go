package eye

import (
	"github.com/valyala/fastjson"

	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/guest"
)

// writeValue appends v to the arena as compact JSON: keys in the order sent,
// strings unescaped by fastjson and escaped again by guest.AppendJSONString,
// numbers as sent. (fastjson's own MarshalTo re-escapes strings it has
// unescaped with strconv.Quote, which is not JSON: "\u0001" comes out as
// "\x01".) Recursion is bounded by max_depth.
func (r *Rule) writeValue(v *fastjson.Value) {
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		r.arena = append(r.arena, '{')
		o.Visit(r.member)
		r.arena = append(r.arena, '}')
	case fastjson.TypeArray:
		a, _ := v.Array()
		r.arena = append(r.arena, '[')
		for i, e := range a {
			if i > 0 {
				r.arena = append(r.arena, ',')
			}
			r.writeValue(e)
		}
		r.arena = append(r.arena, ']')
	case fastjson.TypeString:
		s, _ := v.StringBytes()
		r.appendString(s)
	default: // number, true, false, null: as sent
		r.arena = v.MarshalTo(r.arena)
	}
}

// writeMember is the object visitor of writeValue; r.member holds it as a
// func value made once, so that visiting allocates no closure.
func (r *Rule) writeMember(key []byte, v *fastjson.Value) {
	if r.arena[len(r.arena)-1] != '{' {
		r.arena = append(r.arena, ',')
	}
	r.appendString(key)
	r.arena = append(r.arena, ':')
	r.writeValue(v)
}

// appendString appends s as a JSON string. When scan found no escape and no
// U+2028 or U+2029 in the body, every string in it is already in the form
// guest.AppendJSONString gives, and is copied at once: under the edge's call
// deadline every iteration of a byte loop is costly.
func (r *Rule) appendString(s []byte) {
	if r.plain {
		r.arena = append(r.arena, '"')
		r.arena = append(r.arena, s...)
		r.arena = append(r.arena, '"')
		return
	}
	r.arena = guest.AppendJSONString(r.arena, abi.Alias(s))
}
