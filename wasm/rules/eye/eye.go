// Package eye is the built-in rule for POST /events, The Eye's event API: it
// validates a JSON event, or a batch of them, before the client is answered,
// and emits one event per element. A batch is all or nothing.
//
// An event is
//
//	{"session_id": str, "category": str, "name": str, "data": obj,
//	 "timestamp": str, "event_id": str (optional)}
//
// with one of three kinds and its data:
//
//	page_interaction/page_view  data {host, path}
//	page_interaction/cta_click  data {host, path, element}
//	form_interaction/submit     data {host, path, form}
//
// Unknown keys, at the top or in data, are errors; so is a known key given
// twice (JSON parsers disagree on which one wins).
//
// Settings (abi.Config):
//
//	max_clock_skew   a Go duration (default 5m): a timestamp further than this
//	                 in the future of the edge clock is refused
//	max_events       most events in one batch (default 500); more is a 413
//	max_event_bytes  most bytes of one element's JSON text (default 65536);
//	                 more is a 413
//	max_keys         most keys of one JSON object anywhere in the body
//	                 (default 256, from 8 to 65536); more is a 413
//	max_depth        deepest nesting of arrays and objects in the body, the
//	                 outermost counting as 1 (default 32, from 4 to 48); deeper
//	                 is a 400
//
// A bad setting stops the rule from starting; New names every bad one.
//
// Cost: one pass over the body, linear in its size, under the edge's call
// deadline (wazero checks for cancellation at every loop iteration, which
// costs more than the loop's own work); nothing is allocated per event. The
// first large body on a fresh instance costs more: the heap grows to about
// three times the body (request, events, verdict), and TinyGo collects
// before each growth. A body near the default edge.max_body_bytes can
// therefore miss the default call deadline on a fresh instance: keep the
// route's bodies well under it, or raise edge.rules.call_timeout.
//
// Answers are JSON with Content-Type application/json: 201
// {"accepted": N, "event_ids": [...]} on success, otherwise 400 (413 for the
// size limits) with {"error": summary, "problems": [{"index", "field",
// "reason"}, ...]}; see Rule.Handle.
//
// Event mapping: id "eye:" + event_id when given, else "eye:" + the hex of
// the first 16 bytes of SHA-256 over the canonical content (ContentID), so
// that the same event sent again gets the same id, and for the second and
// later events of one batch with the same content, RepeatID of it, so that
// identical events sent together are each stored; client time = timestamp;
// session, category and name as sent; data = the data object as compact JSON;
// ip = the connection's.
package eye

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/guest"
)

// Defaults and bounds of the settings.
const (
	DefaultMaxClockSkew  = 5 * time.Minute
	DefaultMaxEvents     = 500
	DefaultMaxEventBytes = 64 << 10
	DefaultMaxDepth      = 32
	DefaultMaxKeys       = 256

	// MinDepth is the least max_depth: a batch of form submissions needs
	// four levels (batch, event, data, form).
	MinDepth = 4
	// MaxDepth is the most max_depth. fastjson's parser recurses once per
	// level, and under TinyGo each level takes about 1 KiB of the guest's
	// 64 KiB stack: measured, an element nested 67 deep overflows it (a trap,
	// so a 500). The body's depth is checked without recursion first (scan).
	MaxDepth = 48
)

// MaxProblems is the most problems one answer lists; the rest are counted in
// "more". It bounds the answer to a hostile body with thousands of unknown
// keys; an honest client sees every problem.
const MaxProblems = 1000

// Limits on fields.
const (
	MaxSessionBytes = 256
	MaxEventIDBytes = 128
)

// Rule is the eye rule; build it with New. It serves one call at a time: the
// fields after the settings are scratch space reused by every call, so that
// a call allocates nothing once the buffers have grown to the traffic
// (TinyGo's allocator and collector degrade with many small objects; see
// docs/RATIONALE.md). The Verdict of a call points into them and is valid
// until the next call.
type Rule struct {
	host          abi.Host
	maxSkew       int64 // nanoseconds
	maxEvents     int
	maxEventBytes int
	maxDepth      int
	maxKeys       int
	futureReason  string

	parser   fastjson.Parser // one element at a time
	seps     []int           // body offsets of a top-level array's '[', commas and ']'
	stack    []bool          // scan's open containers, true for objects; cap max_depth
	keys     []int           // keys of each of scan's open containers
	overKeys bool            // scan stopped at an object of more than max_keys keys
	plain    bool            // the body's strings need no re-escaping
	events   []abi.Event
	content  []bool         // content[i]: events[i]'s id is a content id
	seen     map[string]int // repeats' count of each content id in this batch
	arena    []byte         // canonical content, data, and ids of this call's events
	body     []byte         // the answer
	problems []problem
	more     int  // problems past MaxProblems, counted only
	tooBig   bool // a problem is a size limit: answer 413
	sum      [32]byte
	member   func(key []byte, v *fastjson.Value)
}

// New builds the rule from its settings.
func New(cfg *abi.Config, host abi.Host) (abi.Rule, error) {
	r := &Rule{
		host:          host,
		maxSkew:       int64(DefaultMaxClockSkew),
		maxEvents:     DefaultMaxEvents,
		maxEventBytes: DefaultMaxEventBytes,
		maxDepth:      DefaultMaxDepth,
		maxKeys:       DefaultMaxKeys,
	}
	var bad []string
	if s := cfg.Value("max_clock_skew"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			bad = append(bad, "max_clock_skew "+strconv.Quote(s)+" is not a non-negative duration")
		}
		r.maxSkew = int64(d)
	}
	bad = intSetting(bad, cfg, "max_events", &r.maxEvents, 1, 1<<20)
	bad = intSetting(bad, cfg, "max_event_bytes", &r.maxEventBytes, 1, 1<<30)
	bad = intSetting(bad, cfg, "max_depth", &r.maxDepth, MinDepth, MaxDepth)
	bad = intSetting(bad, cfg, "max_keys", &r.maxKeys, 8, 1<<16)
	if len(bad) > 0 {
		return nil, errors.New("eye: " + strings.Join(bad, "; "))
	}
	r.stack = make([]bool, 0, r.maxDepth)
	r.keys = make([]int, 0, r.maxDepth)
	r.futureReason = "is more than " + time.Duration(r.maxSkew).String() + " in the future"
	r.member = r.writeMember
	return r, nil
}

// intSetting reads setting key into *n when it is set, or appends why it is
// bad to bad.
func intSetting(bad []string, cfg *abi.Config, key string, n *int, lo, hi int) []string {
	s := cfg.Value(key)
	if s == "" {
		return bad
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return append(bad, key+" "+strconv.Quote(s)+" is not a number from "+strconv.Itoa(lo)+" to "+strconv.Itoa(hi))
	}
	*n = v
	return bad
}

// jsonHeaders are the headers of every answer.
var jsonHeaders = []abi.Header{{Name: "Content-Type", Value: "application/json"}}

// Handle decides on one request. The body is checked in this order, each
// step guarding the next: JSON syntax, UTF-8 and nesting depth in one pass
// without recursion (scan), the top-level type, the number of events, then
// each event. Body-level failures answer
//
//	{"error": "<reason>", "problems": []}
//
// and event-level ones
//
//	{"error": "validation failed", "problems": [
//	  {"index": 0, "field": "data.host", "reason": "is not a valid host name (...)"}, ...]}
//
// where index is the element's position (0 for a single object) and field a
// dotted path ("" for the element itself). Every problem of every element is
// listed, up to MaxProblems; past that the document ends with "more": N, the
// number left out. The status is 400, or 413 when the batch has too
// many events or an element is too large. Verdict.Message repeats the
// summary on one line, e.g. "validation failed: 1 problem in 1 of 2 events;
// first: [1] data.host is not a valid host name (has an empty label)".
func (r *Rule) Handle(req *abi.Request) abi.Verdict {
	body := req.Body
	elems, why, overLimit := r.scan(body)
	switch {
	case overLimit && r.overKeys:
		return r.fail(413, "a JSON object has more than "+strconv.Itoa(r.maxKeys)+" keys")
	case overLimit:
		return r.fail(400, "JSON nesting is deeper than "+strconv.Itoa(r.maxDepth)+" levels")
	}
	if why != "" {
		return r.fail(400, "body is not valid JSON: "+why)
	}
	if t := trimWS(body); t[0] != '{' && t[0] != '[' {
		return r.fail(400, "body must be a JSON object or an array of objects")
	}
	// Counted before parsing, so that a huge batch costs no parsing.
	if elems == 0 {
		return r.fail(400, "no events")
	}
	if elems > r.maxEvents {
		return r.fail(413, "batch has "+strconv.Itoa(elems)+" events; send at most "+strconv.Itoa(r.maxEvents)+" per request")
	}
	if len(r.seps) != 0 && len(r.seps) != elems+1 { // scan is wrong about valid JSON: a bug
		return r.fail(500, "eye: internal error: "+strconv.Itoa(len(r.seps))+" separators for "+strconv.Itoa(elems)+" events")
	}
	// Size the scratch space once: growing large buffers by doubling is
	// slow under TinyGo's allocator. Data is compact JSON, seldom longer
	// than its text in the body (escapes such as \b come out as \u0008);
	// session copies, ids and canonical prefixes are bounded per event.
	if cap(r.events) < elems {
		r.events = make([]abi.Event, 0, elems)
	}
	if need := len(body) + 128*elems; cap(r.arena) < need {
		r.arena = make([]byte, 0, need)
	}
	r.events = r.events[:0]
	r.content = r.content[:0]
	r.arena = r.arena[:0]
	r.problems = r.problems[:0]
	r.more = 0
	r.tooBig = false

	if len(r.seps) == 0 { // a single object
		r.element(0, trimWS(body), req)
	} else {
		for i := 0; i < elems; i++ {
			r.element(i, trimWS(body[r.seps[i]+1:r.seps[i+1]]), req)
		}
	}
	if len(r.problems) > 0 {
		return r.invalid(elems)
	}
	r.repeats()
	return r.accept()
}

// repeats gives the second and later of events with the same content id in
// one batch ids of their own (RepeatID), so that two identical clicks sent
// together are two events, while the same batch sent again gets the same
// ids. An event_id the client repeats is the client saying it is one event.
func (r *Rule) repeats() {
	if len(r.events) < 2 {
		return
	}
	if r.seen == nil {
		r.seen = map[string]int{}
	}
	clear(r.seen)
	for i := range r.events {
		if !r.content[i] {
			continue
		}
		id := r.events[i].ID
		k := r.seen[id]
		r.seen[id] = k + 1
		if k > 0 {
			start := len(r.arena)
			r.arena = appendRepeatID(r.arena, r.host, id, k)
			r.events[i].ID = abi.Alias(r.arena[start:len(r.arena):len(r.arena)])
		}
	}
}

// RepeatID is the id of the k-th repeat (k ≥ 1) in one batch of an event
// whose content id is id: IDPrefix + the hex of the first 16 bytes of
// SHA-256 over id + "#" + decimal k.
func RepeatID(host abi.Host, id string, k int) string {
	return string(appendRepeatID(nil, host, id, k))
}

func appendRepeatID(b []byte, host abi.Host, id string, k int) []byte {
	start := len(b)
	b = append(b, id...)
	b = append(b, '#')
	b = strconv.AppendInt(b, int64(k), 10)
	sum := host.SHA256(b[start:])
	b = append(b[:start], IDPrefix...)
	return guest.AppendHex(b, sum[:16])
}

// element parses, checks and, while the request has no problems yet, turns
// into an event the JSON text of element i.
//
// Elements are parsed one at a time, so that fastjson's cache of values stays
// the size of one event: a 500-event batch parsed whole made the first call
// on a fresh instance over ten times slower than the next ones (the
// collector ran again and again while the cache grew). So nothing may point
// into the parser once the next element is parsed: an event's strings are
// copied to the arena.
func (r *Rule) element(i int, text []byte, req *abi.Request) {
	if len(text) > r.maxEventBytes {
		// Not parsed: its size is reason enough, and parsing is what a
		// hostile body would want the rule to spend its deadline on.
		r.tooBig = true
		r.add(i, "", "", "is "+strconv.Itoa(len(text))+" bytes of JSON; at most "+strconv.Itoa(r.maxEventBytes)+" are accepted per event")
		return
	}
	v, err := r.parser.ParseBytes(text)
	if err != nil { // not expected: the body passed the validator
		r.add(i, "", "", "is not valid JSON: "+err.Error())
		return
	}
	f, ok := r.check(i, v, req.ReceivedAt)
	if !ok || len(r.problems) > 0 {
		return
	}
	r.events = append(r.events, r.event(f, req))
	r.content = append(r.content, f.eventID == "")
}

// event builds the event of a checked element in the arena.
func (r *Rule) event(f fields, req *abi.Request) abi.Event {
	start := len(r.arena)
	var session string
	if f.eventID == "" {
		r.arena = appendCanonicalPrefix(r.arena, f.session, f.kind.category, f.kind.name, f.clientTime)
		at := start + len(canonicalVersion)
		session = abi.Alias(r.arena[at : at+len(f.session) : at+len(f.session)])
	} else {
		r.arena = append(r.arena, f.session...)
		session = abi.Alias(r.arena[start:len(r.arena):len(r.arena)])
	}
	dataStart := len(r.arena)
	r.writeValue(f.data)
	dataEnd := len(r.arena)
	data := r.arena[dataStart:dataEnd:dataEnd]

	idStart := len(r.arena)
	r.arena = append(r.arena, IDPrefix...)
	if f.eventID != "" {
		r.arena = append(r.arena, f.eventID...)
	} else {
		r.sum = r.host.SHA256(r.arena[start:dataEnd])
		r.arena = guest.AppendHex(r.arena, r.sum[:16])
	}
	id := abi.Alias(r.arena[idStart:len(r.arena):len(r.arena)])
	return abi.Event{
		ID:         id,
		Source:     abi.SourceEye,
		ClientTime: f.clientTime,
		Session:    session,
		Category:   f.kind.category,
		Name:       f.kind.name,
		Data:       data,
		IP:         req.RemoteIP,
	}
}

// IDPrefix starts every event id of this rule.
const IDPrefix = "eye:"

// canonicalVersion starts the canonical content; a change to the content's
// form must change it.
const canonicalVersion = "eye/v1\n"

// appendCanonicalPrefix appends what precedes the compact data in the
// canonical content of an event without event_id. Fields are separated by
// newlines, which none of them may contain (session_id has no control
// characters, category and name come from a fixed set), and data comes last,
// so two different events cannot have the same content.
func appendCanonicalPrefix(b []byte, session, category, name string, clientTime int64) []byte {
	b = append(b, canonicalVersion...)
	b = append(b, session...)
	b = append(b, '\n')
	b = append(b, category...)
	b = append(b, '\n')
	b = append(b, name...)
	b = append(b, '\n')
	b = strconv.AppendInt(b, clientTime, 10)
	return append(b, '\n')
}

// ContentID returns the id of an event without event_id: IDPrefix + the hex
// of the first 16 bytes of SHA-256 over
//
//	"eye/v1\n" + session + "\n" + category + "\n" + name + "\n" +
//	decimal unix nanoseconds of the timestamp + "\n" + compact data JSON
//
// where the data is re-serialised from the parsed object: keys in the order
// sent, no whitespace, strings escaped as guest.AppendJSONString does,
// numbers as sent.
func ContentID(host abi.Host, session, category, name string, clientTime int64, compactData []byte) string {
	b := appendCanonicalPrefix(nil, session, category, name, clientTime)
	b = append(b, compactData...)
	sum := host.SHA256(b)
	return IDPrefix + guest.Hex(sum[:16])
}

// accept answers 201 with the events.
func (r *Rule) accept() abi.Verdict {
	need := 40
	for i := range r.events {
		need += 8 + 2*len(r.events[i].ID)
	}
	if cap(r.body) < need {
		r.body = make([]byte, 0, need)
	}
	b := append(r.body[:0], `{"accepted":`...)
	b = strconv.AppendInt(b, int64(len(r.events)), 10)
	b = append(b, `,"event_ids":[`...)
	for i := range r.events {
		if i > 0 {
			b = append(b, ',')
		}
		b = guest.AppendJSONString(b, r.events[i].ID)
	}
	b = append(b, "]}"...)
	r.body = b
	return abi.Verdict{Status: 201, Headers: jsonHeaders, Body: b, Events: r.events}
}

// fail answers a problem with the body as a whole.
func (r *Rule) fail(status uint32, reason string) abi.Verdict {
	b := append(r.body[:0], `{"error":`...)
	b = guest.AppendJSONString(b, reason)
	b = append(b, `,"problems":[]}`...)
	r.body = b
	return abi.Verdict{Status: status, Message: reason, Headers: jsonHeaders, Body: b}
}
