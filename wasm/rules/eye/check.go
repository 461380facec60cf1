package eye

import (
	"strconv"

	"github.com/valyala/fastjson"

	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/guest"
)

// kind is an allowed category/name pair, the data field beyond host and path
// that it requires ("" for none), and so the keys its data may have.
type kind struct {
	category, name, extra string
	dataKeys              []string
}

var kinds = [...]kind{
	{"page_interaction", "page_view", "", []string{"host", "path"}},
	{"page_interaction", "cta_click", "element", []string{"host", "path", "element"}},
	{"form_interaction", "submit", "form", []string{"host", "path", "form"}},
}

// Keys of an event, and of data when the kind is unknown: then all data
// fields of any kind are let through, so that only the kind is reported.
var (
	eventKeys   = []string{"session_id", "category", "name", "data", "timestamp", "event_id"}
	anyDataKeys = []string{"host", "path", "element", "form"}
)

// fields are a checked element's values; strings alias the parser's buffer.
type fields struct {
	session    string
	eventID    string
	kind       *kind
	clientTime int64 // unix nanoseconds
	data       *fastjson.Value
}

// problem is one entry of the answer's problems; the field is prefix+name.
type problem struct {
	index        int
	prefix, name string
	reason       string
}

// add records a problem; past MaxProblems it only counts, so that a hostile
// body cannot make the list large.
func (r *Rule) add(index int, prefix, name, reason string) {
	if len(r.problems) == MaxProblems {
		r.more++
		return
	}
	r.problems = append(r.problems, problem{index: index, prefix: prefix, name: name, reason: reason})
}

// check checks element i and returns its fields; ok is false when it has a
// problem (recorded with add).
func (r *Rule) check(i int, v *fastjson.Value, now int64) (f fields, ok bool) {
	if v.Type() != fastjson.TypeObject {
		r.add(i, "", "", "must be a JSON object")
		return f, false
	}
	o, _ := v.Object()
	before := len(r.problems)

	vSession, vCategory, vName := o.Get("session_id"), o.Get("category"), o.Get("name")
	vData, vTime, vID := o.Get("data"), o.Get("timestamp"), o.Get("event_id")
	if present(vSession)+present(vCategory)+present(vName)+present(vData)+present(vTime)+present(vID) != o.Len() {
		r.strayKeys(i, "", o, eventKeys)
	}

	if s, ok := r.str(i, "", "session_id", vSession); ok {
		switch {
		case s == "":
			r.add(i, "", "session_id", "must not be empty")
		case len(s) > MaxSessionBytes:
			r.add(i, "", "session_id", "is longer than "+strconv.Itoa(MaxSessionBytes)+" bytes")
		case hasControl(s):
			r.add(i, "", "session_id", "must not contain control characters")
		default:
			f.session = s
		}
	}

	category, okCategory := r.str(i, "", "category", vCategory)
	if okCategory && category != kinds[0].category && category != kinds[2].category {
		r.add(i, "", "category", `must be "page_interaction" or "form_interaction"`)
		okCategory = false
	}
	if name, ok := r.str(i, "", "name", vName); ok {
		for k := range kinds {
			if kinds[k].name == name && (!okCategory || kinds[k].category == category) {
				f.kind = &kinds[k]
				break
			}
		}
		switch {
		case f.kind != nil && okCategory:
		case category == kinds[0].category:
			r.add(i, "", "name", `must be "page_view" or "cta_click" for category "page_interaction"`)
		case category == kinds[2].category:
			r.add(i, "", "name", `must be "submit" for category "form_interaction"`)
		case f.kind == nil:
			r.add(i, "", "name", `must be "page_view", "cta_click" or "submit"`)
		}
		if !okCategory {
			f.kind = nil
		}
	}

	if s, ok := r.str(i, "", "timestamp", vTime); ok {
		sec, nsec, year, ok := parseTimestamp(s)
		switch {
		case !ok:
			r.add(i, "", "timestamp", "is not an ISO 8601 timestamp like 2022-04-11T01:08:01.407119 or 2022-04-11 01:08:01.407119")
		case year < 2000:
			r.add(i, "", "timestamp", "is before the year 2000")
		case sec > (now+r.maxSkew)/1e9+1 || sec*1e9+nsec > now+r.maxSkew: // first test: no overflow in the second
			r.add(i, "", "timestamp", r.futureReason)
		default:
			f.clientTime = sec*1e9 + nsec
		}
	}

	if vID != nil && vID.Type() != fastjson.TypeNull {
		if s, ok := r.str(i, "", "event_id", vID); ok {
			switch {
			case s == "":
				r.add(i, "", "event_id", "must not be empty")
			case len(s) > MaxEventIDBytes:
				r.add(i, "", "event_id", "is longer than "+strconv.Itoa(MaxEventIDBytes)+" bytes")
			case !printableASCII(s):
				r.add(i, "", "event_id", "must be printable ASCII")
			default:
				f.eventID = s
			}
		}
	}

	switch {
	case vData == nil:
		r.add(i, "", "data", "is required")
	case vData.Type() != fastjson.TypeObject:
		r.add(i, "", "data", "must be a JSON object")
	default:
		f.data = vData
		r.checkData(i, vData, f.kind)
	}
	return f, len(r.problems) == before && r.more == 0
}

// checkData checks the data object of element i for kind k (nil: unknown).
func (r *Rule) checkData(i int, v *fastjson.Value, k *kind) {
	const p = "data."
	o, _ := v.Object()
	vHost, vPath, vElement, vForm := o.Get("host"), o.Get("path"), o.Get("element"), o.Get("form")
	allowed := anyDataKeys
	if k != nil {
		allowed = k.dataKeys
		switch k.extra {
		case "element":
			vForm = nil
		case "form":
			vElement = nil
		default:
			vElement, vForm = nil, nil
		}
	}
	if present(vHost)+present(vPath)+present(vElement)+present(vForm) != o.Len() {
		r.strayKeys(i, p, o, allowed)
	}
	if s, ok := r.str(i, p, "host", vHost); ok {
		if why := checkHost(s); why != "" {
			r.add(i, p, "host", "is not a valid host name ("+why+")")
		}
	}
	if s, ok := r.str(i, p, "path", vPath); ok {
		switch {
		case len(s) == 0 || s[0] != '/':
			r.add(i, p, "path", `must start with "/"`)
		case hasControl(s):
			r.add(i, p, "path", "must not contain control characters")
		}
	}
	if k == nil {
		return
	}
	switch k.extra {
	case "element":
		if s, ok := r.str(i, p, "element", vElement); ok && s == "" {
			r.add(i, p, "element", "must not be empty")
		}
	case "form":
		switch {
		case vForm == nil:
			r.add(i, p, "form", "is required")
		case vForm.Type() != fastjson.TypeObject:
			r.add(i, p, "form", "must be a JSON object")
		}
	}
}

// str returns the string v of required field prefix+name, or records why
// there is none.
func (r *Rule) str(i int, prefix, name string, v *fastjson.Value) (string, bool) {
	if v == nil {
		r.add(i, prefix, name, "is required")
		return "", false
	}
	if v.Type() != fastjson.TypeString {
		r.add(i, prefix, name, "must be a string")
		return "", false
	}
	b, _ := v.StringBytes()
	return abi.Alias(b), true
}

func present(v *fastjson.Value) int {
	if v == nil {
		return 0
	}
	return 1
}

// strayKeys records the keys of o that are not allowed, and allowed keys
// given more than once. It runs only when o has such keys.
func (r *Rule) strayKeys(i int, prefix string, o *fastjson.Object, allowed []string) {
	var seen uint32
	o.Visit(func(key []byte, _ *fastjson.Value) {
		for a, k := range allowed {
			if k == string(key) {
				if seen&(1<<a) != 0 {
					r.add(i, prefix, k, "is given more than once")
				}
				seen |= 1 << a
				return
			}
		}
		r.add(i, prefix, clip(key), "unexpected field")
	})
}

// clip copies a key for a problem, at most 64 bytes of it.
func clip(key []byte) string {
	if len(key) <= 64 {
		return string(key)
	}
	n := 64
	for n > 0 && key[n]&0xc0 == 0x80 { // do not split a UTF-8 sequence
		n--
	}
	return string(key[:n]) + "…"
}

// hasControl reports whether s has a C0 or C1 control character or DEL.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || c == 0xc2 && i+1 < len(s) && s[i+1] >= 0x80 && s[i+1] <= 0x9f {
			return true
		}
	}
	return false
}

// printableASCII reports whether s has only characters from ' ' to '~'.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// invalid answers the recorded problems.
func (r *Rule) invalid(elems int) abi.Verdict {
	status := uint32(400)
	if r.tooBig {
		status = 413
	}
	first := &r.problems[0]
	total := len(r.problems) + r.more
	summary := "validation failed: " + strconv.Itoa(total) + plural(total, " problem", " problems")
	if r.more == 0 { // all kept: count the events they are in
		failed, last := 0, -1
		for _, p := range r.problems {
			if p.index != last {
				failed++
				last = p.index
			}
		}
		summary += " in " + strconv.Itoa(failed) + " of " + strconv.Itoa(elems) + plural(elems, " event", " events")
	}
	summary += "; first: [" + strconv.Itoa(first.index) + "] "
	if f := first.prefix + first.name; f != "" {
		summary += f + " "
	}
	summary += first.reason

	b := append(r.body[:0], `{"error":"validation failed","problems":[`...)
	for n := range r.problems {
		p := &r.problems[n]
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"index":`...)
		b = strconv.AppendInt(b, int64(p.index), 10)
		b = append(b, `,"field":`...)
		b = guest.AppendJSONString(b, p.prefix+p.name)
		b = append(b, `,"reason":`...)
		b = guest.AppendJSONString(b, p.reason)
		b = append(b, '}')
	}
	b = append(b, ']')
	if r.more > 0 {
		b = append(b, `,"more":`...)
		b = strconv.AppendInt(b, int64(r.more), 10)
	}
	b = append(b, '}')
	r.body = b
	return abi.Verdict{Status: status, Message: summary, Headers: jsonHeaders, Body: b}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
