// Package eyetest holds the eye rule's test vectors, shared by the native
// tests, the wasm host tests and rule validation, so every place checks the
// same cases. Expected ids are computed here with Go's crypto, independently
// of the rule.
package eyetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/edgetrack/edgetrack/wasm/abi"
)

// At is when every vector's request is received.
var At = time.Date(2022, 4, 11, 1, 10, 0, 0, time.UTC)

// RemoteIP is every vector's client address.
const RemoteIP = "203.0.113.7"

// Config returns the default configuration (no settings).
func Config() *abi.Config { return &abi.Config{Rule: "eye"} }

// ConfigWith returns a configuration with the given settings, as key, value
// pairs.
func ConfigWith(kv ...string) *abi.Config {
	c := Config()
	for i := 0; i+1 < len(kv); i += 2 {
		c.Settings = append(c.Settings, abi.Setting{Key: kv[i], Values: []string{kv[i+1]}})
	}
	return c
}

// Request returns a POST /events of body received at At.
func Request(body string) *abi.Request {
	return &abi.Request{
		Method: "POST", Path: "/events", Body: []byte(body), RemoteIP: RemoteIP, ReceivedAt: At.UnixNano(),
		Headers: []abi.Header{{Name: "content-type", Value: "application/json"}},
	}
}

// ContentID is the id the rule must give an event without event_id: "eye:"
// and the hex of the first 16 bytes of SHA-256 over
// "eye/v1\n<session>\n<category>\n<name>\n<unix ns>\n<compact data>".
func ContentID(session, category, name string, ts time.Time, compactData string) string {
	sum := sha256.Sum256([]byte("eye/v1\n" + session + "\n" + category + "\n" + name + "\n" +
		strconv.FormatInt(ts.UnixNano(), 10) + "\n" + compactData))
	return "eye:" + hex.EncodeToString(sum[:16])
}

// RepeatID is the id of the k-th repeat in a batch of the content id id.
func RepeatID(id string, k int) string {
	sum := sha256.Sum256([]byte(id + "#" + strconv.Itoa(k)))
	return "eye:" + hex.EncodeToString(sum[:16])
}

// Event returns one event as JSON; ts and extra (",\"key\":value" pairs or
// "") are spliced in as given.
func Event(session, category, name, data, ts, extra string) string {
	return `{"session_id":` + quote(session) + `,"category":"` + category + `","name":"` + name +
		`","data":` + data + `,"timestamp":"` + ts + `"` + extra + `}`
}

// Sample events, their data, timestamp and ids.
const (
	Session   = "abc123"
	TS        = "2022-04-11T01:08:01.407119"
	ViewData  = `{"host":"www.consumeraffairs.com","path":"/"}`
	ClickData = `{"host":"www.consumeraffairs.com","path":"/reviews","element":"chat bubble"}`
	FormData  = `{"host":"www.consumeraffairs.com","path":"/signup","form":{"first_name":"John","last_name":"Doe","age":42,"tags":["a","b"],"opt_in":true,"ref":null}}`
)

// TSTime is TS as a time.
var TSTime = time.Date(2022, 4, 11, 1, 8, 1, 407119000, time.UTC)

var (
	View  = Event(Session, "page_interaction", "page_view", ViewData, TS, "")
	Click = Event(Session, "page_interaction", "cta_click", ClickData, TS, "")
	Form  = Event(Session, "form_interaction", "submit", FormData, TS, "")

	ViewID  = ContentID(Session, "page_interaction", "page_view", TSTime, ViewData)
	ClickID = ContentID(Session, "page_interaction", "cta_click", TSTime, ClickData)
	FormID  = ContentID(Session, "form_interaction", "submit", TSTime, FormData)
)

// Problem is one entry the answer's problems must contain: same index and
// field, and a reason containing Reason.
type Problem struct {
	Index  int
	Field  string
	Reason string
}

// Vector is one request and what the rule must answer.
type Vector struct {
	Name    string
	Config  *abi.Config
	Request *abi.Request
	Status  uint32
	// Error is a substring of the answer's "error" (and of its message)
	// when Status is not 201.
	Error    string
	Problems []Problem // each must be in the answer (others may be too)
	// NProblems, when not 0, is exactly how many problems the answer lists.
	NProblems int
	Events    []string // event ids, in order, when Status is 201
	Sessions  []string // event sessions, in order, when checked
}

func view(host, path string) string {
	return Event(Session, "page_interaction", "page_view", `{"host":`+quote(host)+`,"path":`+quote(path)+`}`, TS, "")
}

// quote returns s as a JSON string.
func quote(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func at(ts string) string { return Event(Session, "page_interaction", "page_view", ViewData, ts, "") }

func viewID(ts time.Time) string {
	return ContentID(Session, "page_interaction", "page_view", ts, ViewData)
}

func nested(depth int) string {
	return strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
}

// Vectors returns the eye rule's test vectors.
func Vectors() []Vector {
	cfg := Config()
	v := func(name, body string, status uint32, errSub string, ids []string, problems ...Problem) Vector {
		return Vector{Name: name, Config: cfg, Request: Request(body), Status: status, Error: errSub, Events: ids, Problems: problems}
	}
	ok := func(name, body string, ids ...string) Vector { return v(name, body, 201, "", ids) }
	bad := func(name, body string, problems ...Problem) Vector {
		return v(name, body, 400, "validation failed", nil, problems...)
	}
	badHost := func(host string) Vector {
		return bad("bad host "+strconv.Quote(host), view(host, "/"), Problem{0, "data.host", "is not a valid host name"})
	}
	okHost := func(host string) Vector {
		d := `{"host":` + quote(host) + `,"path":"/"}`
		return ok("good host "+strconv.Quote(host), view(host, "/"), ContentID(Session, "page_interaction", "page_view", TSTime, d))
	}
	exact := func(vec Vector, n int) Vector { vec.NProblems = n; return vec }
	withCfg := func(vec Vector, c *abi.Config) Vector { vec.Config = c; return vec }
	future := func(d time.Duration) string { return At.Add(d).Format("2006-01-02T15:04:05.000000") }

	brackets := `{"host":"a.com","path":"/","element":"` + strings.Repeat(`[{\"`, 100) + `"}`

	// data nested to depth 48 with the batch array, event and data around it
	// (45 levels of form), and one level deeper.
	deepData := `{"host":"a.com","path":"/","form":{"x":` + strings.Repeat(`[{"a":`, 22) + "1" + strings.Repeat(`}]`, 22) + `}}`
	deeperData := `{"host":"a.com","path":"/","form":{"x":` + strings.Repeat(`[{"a":`, 22) + "[]" + strings.Repeat(`}]`, 22) + `}}`
	sessions := Event("s0", "page_interaction", "page_view", ViewData, TS, "") + "," +
		Event("s1", "page_interaction", "page_view", ViewData, TS, `,"event_id":"e1"`) + "," +
		strings.Replace(Event("s2", "page_interaction", "page_view", ViewData, TS, ""), `"s2"`, `"s\u0032"`, 1)

	vs := []Vector{
		// Each kind.
		ok("page_view", View, ViewID),
		ok("cta_click", Click, ClickID),
		ok("submit with nested form", Form, FormID),
		ok("submit with empty form", Event(Session, "form_interaction", "submit", `{"host":"a.com","path":"/f","form":{}}`, TS, ""),
			ContentID(Session, "form_interaction", "submit", TSTime, `{"host":"a.com","path":"/f","form":{}}`)),
		ok("batch of each kind", "["+View+","+Click+","+Form+"]", ViewID, ClickID, FormID),
		ok("batch of one", "["+View+"]", ViewID),
		ok("whitespace around and inside", " \n[ "+View+" ,\n\t"+Click+" ]\r\n", ViewID, ClickID),

		// Ids.
		ok("event_id used", Event(Session, "page_interaction", "page_view", ViewData, TS, `,"event_id":"evt-0001"`), "eye:evt-0001"),
		ok("event_id null means none", Event(Session, "page_interaction", "page_view", ViewData, TS, `,"event_id":null`), ViewID),
		{Name: "sessions kept apart in a batch", Config: cfg, Request: Request("[" + sessions + "]"), Status: 201,
			Events: []string{ContentID("s0", "page_interaction", "page_view", TSTime, ViewData), "eye:e1",
				ContentID("s2", "page_interaction", "page_view", TSTime, ViewData)},
			Sessions: []string{"s0", "s1", "s2"}},
		ok("same content twice in a batch: two events", "["+View+","+View+"]", ViewID, RepeatID(ViewID, 1)),
		ok("same content three times, between others", "["+View+","+Click+","+View+","+View+"]",
			ViewID, ClickID, RepeatID(ViewID, 1), RepeatID(ViewID, 2)),
		ok("the same event_id twice is one event", "["+Event(Session, "page_interaction", "page_view", ViewData, TS, `,"event_id":"e1"`)+","+
			Event(Session, "page_interaction", "page_view", ViewData, TS, `,"event_id":"e1"`)+"]", "eye:e1", "eye:e1"),
		ok("mixed event_id and content ids", "["+View+","+Event(Session, "page_interaction", "cta_click", ClickData, TS, `,"event_id":"x y~"`)+"]",
			ViewID, "eye:x y~"),
		ok("formatting does not change the id", `{ "category" : "page_interaction", "name":"page_view", "timestamp":"2022-04-11 01:08:01.407119",`+
			` "data" : { "host" : "www.consumeraffairs.com" , "path" : "/" }, "session_id":"abc123" }`, ViewID),
		ok("escapes are normalised", Event(Session, "page_interaction", "cta_click",
			`{"host":"www.consumeraffairs.com","path":"\/reviews","element":"chat \u0062ubble"}`, TS, ""), ClickID),
		ok("other session other id", Event("other", "page_interaction", "page_view", ViewData, TS, ""),
			ContentID("other", "page_interaction", "page_view", TSTime, ViewData)),
		ok("line separator in data escaped", Event(Session, "page_interaction", "cta_click",
			"{\"host\":\"a.com\",\"path\":\"/\",\"element\":\"a\u2028b\"}", TS, ""),
			ContentID(Session, "page_interaction", "cta_click", TSTime, `{"host":"a.com","path":"/","element":"a\u2028b"}`)),
		ok("non-ASCII data kept", Event(Session, "page_interaction", "cta_click", `{"host":"a.com","path":"/caf\u00e9","element":"ünïcödé 😀"}`, TS, ""),
			ContentID(Session, "page_interaction", "cta_click", TSTime, `{"host":"a.com","path":"/café","element":"ünïcödé 😀"}`)),
		ok("escaped surrogate pair", Event(Session, "page_interaction", "cta_click", `{"host":"a.com","path":"/","element":"\ud83d\ude00"}`, TS, ""),
			ContentID(Session, "page_interaction", "cta_click", TSTime, `{"host":"a.com","path":"/","element":"😀"}`)),
		ok("control characters in data escaped", Event(Session, "page_interaction", "cta_click",
			`{"host":"a.com","path":"/","element":"tab\there\u0001\b"}`, TS, ""),
			ContentID(Session, "page_interaction", "cta_click", TSTime, `{"host":"a.com","path":"/","element":"tab\there\u0001\u0008"}`)),

		// Timestamps.
		ok("space instead of T", at("2022-04-11 01:08:01.407119"), ViewID),
		ok("Z suffix", at("2022-04-11T01:08:01.407119Z"), ViewID),
		ok("offset", at("2022-04-11T03:08:01.407119+02:00"), ViewID),
		ok("negative offset", at("2022-04-10T21:38:01.407119-03:30"), ViewID),
		ok("no fraction", at("2022-04-11T01:08:01"), viewID(time.Date(2022, 4, 11, 1, 8, 1, 0, time.UTC))),
		ok("nine-digit fraction", at("2022-04-11T01:08:01.123456789"), viewID(time.Date(2022, 4, 11, 1, 8, 1, 123456789, time.UTC))),
		ok("one-digit fraction", at("2022-04-11 01:08:01.5"), viewID(time.Date(2022, 4, 11, 1, 8, 1, 500000000, time.UTC))),
		ok("leap day", at("2020-02-29T12:00:00"), viewID(time.Date(2020, 2, 29, 12, 0, 0, 0, time.UTC))),
		ok("year 2000", at("2000-01-01T00:00:00"), viewID(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))),
		ok("future within skew", at(future(4*time.Minute)), viewID(At.Add(4*time.Minute))),
		bad("future beyond skew", at(future(6*time.Minute)), Problem{0, "timestamp", "is more than 5m0s in the future"}),
		bad("far future", at("9999-12-31T23:59:59.999999999"), Problem{0, "timestamp", "in the future"}),
		withCfg(ok("skew setting widens", at(future(30*time.Minute)), viewID(At.Add(30*time.Minute))), ConfigWith("max_clock_skew", "1h")),
		withCfg(bad("skew setting narrows", at(future(2*time.Second)), Problem{0, "timestamp", "is more than 1s in the future"}),
			ConfigWith("max_clock_skew", "1s")),
		bad("garbage timestamp", at("yesterday"), Problem{0, "timestamp", "is not an ISO 8601 timestamp"}),
		bad("date only", at("2022-04-11"), Problem{0, "timestamp", "ISO 8601"}),
		bad("february 30", at("2022-02-30T00:00:00"), Problem{0, "timestamp", "ISO 8601"}),
		bad("hour 24", at("2022-04-11T24:00:00"), Problem{0, "timestamp", "ISO 8601"}),
		bad("ten-digit fraction", at("2022-04-11T01:08:01.1234567891"), Problem{0, "timestamp", "ISO 8601"}),
		bad("empty fraction", at("2022-04-11T01:08:01."), Problem{0, "timestamp", "ISO 8601"}),
		bad("offset without colon", at("2022-04-11T01:08:01+0200"), Problem{0, "timestamp", "ISO 8601"}),
		bad("trailing text", at("2022-04-11T01:08:01Zjunk"), Problem{0, "timestamp", "ISO 8601"}),
		bad("year 1999", at("1999-12-31T23:59:59"), Problem{0, "timestamp", "before the year 2000"}),
		bad("year 0001", at("0001-01-01T00:00:00"), Problem{0, "timestamp", "before the year 2000"}),
		bad("timestamp as number", strings.Replace(View, `"`+TS+`"`, "1649639281", 1), Problem{0, "timestamp", "must be a string"}),

		// Kinds.
		bad("unknown category", Event(Session, "page", "page_view", ViewData, TS, ""),
			Problem{0, "category", `must be "page_interaction" or "form_interaction"`}),
		exact(bad("name of the other category", Event(Session, "page_interaction", "submit", ViewData, TS, ""),
			Problem{0, "name", `must be "page_view" or "cta_click" for category "page_interaction"`}), 1),
		bad("page_view under form_interaction", Event(Session, "form_interaction", "page_view", ViewData, TS, ""),
			Problem{0, "name", `must be "submit" for category "form_interaction"`}),
		exact(bad("unknown category and name", Event(Session, "x", "y", ViewData, TS, ""),
			Problem{0, "category", "must be"}, Problem{0, "name", `must be "page_view", "cta_click" or "submit"`}), 2),
		bad("category case matters", Event(Session, "Page_Interaction", "page_view", ViewData, TS, ""), Problem{0, "category", "must be"}),

		// Missing, extra and wrong-typed fields.
		exact(bad("empty object", `{}`,
			Problem{0, "session_id", "is required"}, Problem{0, "category", "is required"}, Problem{0, "name", "is required"},
			Problem{0, "timestamp", "is required"}, Problem{0, "data", "is required"}), 5),
		bad("missing host", Event(Session, "page_interaction", "page_view", `{"path":"/"}`, TS, ""), Problem{0, "data.host", "is required"}),
		bad("missing path", Event(Session, "page_interaction", "page_view", `{"host":"a.com"}`, TS, ""), Problem{0, "data.path", "is required"}),
		bad("missing element", Event(Session, "page_interaction", "cta_click", ViewData, TS, ""), Problem{0, "data.element", "is required"}),
		bad("missing form", Event(Session, "form_interaction", "submit", ViewData, TS, ""), Problem{0, "data.form", "is required"}),
		exact(bad("unknown top-level key", Event(Session, "page_interaction", "page_view", ViewData, TS, `,"user":"bob"`),
			Problem{0, "user", "unexpected field"}), 1),
		exact(bad("unknown data key", Event(Session, "page_interaction", "page_view", `{"host":"a.com","path":"/","referrer":"x"}`, TS, ""),
			Problem{0, "data.referrer", "unexpected field"}), 1),
		exact(bad("element on page_view", Event(Session, "page_interaction", "page_view", ClickData, TS, ""),
			Problem{0, "data.element", "unexpected field"}), 1),
		bad("form on cta_click", Event(Session, "page_interaction", "cta_click",
			`{"host":"a.com","path":"/","element":"e","form":{}}`, TS, ""), Problem{0, "data.form", "unexpected field"}),
		bad("duplicate key", Event(Session, "page_interaction", "page_view", `{"host":"a.com","path":"/","host":"b.com"}`, TS, ""),
			Problem{0, "data.host", "is given more than once"}),
		bad("duplicate top-level key", Event(Session, "page_interaction", "page_view", ViewData, TS, `,"session_id":"other"`),
			Problem{0, "session_id", "is given more than once"}),
		bad("session_id number", strings.Replace(View, `"abc123"`, "123", 1), Problem{0, "session_id", "must be a string"}),
		bad("session_id null", strings.Replace(View, `"abc123"`, "null", 1), Problem{0, "session_id", "must be a string"}),
		bad("empty session_id", Event("", "page_interaction", "page_view", ViewData, TS, ""), Problem{0, "session_id", "must not be empty"}),
		bad("long session_id", Event(strings.Repeat("s", 257), "page_interaction", "page_view", ViewData, TS, ""),
			Problem{0, "session_id", "longer than 256 bytes"}),
		ok("256-byte session_id", Event(strings.Repeat("s", 256), "page_interaction", "page_view", ViewData, TS, ""),
			ContentID(strings.Repeat("s", 256), "page_interaction", "page_view", TSTime, ViewData)),
		bad("control character in session_id", Event("a\nb", "page_interaction", "page_view", ViewData, TS, ""),
			Problem{0, "session_id", "control characters"}),
		bad("C1 control in session_id", Event("a\u0085b", "page_interaction", "page_view", ViewData, TS, ""),
			Problem{0, "session_id", "control characters"}),
		bad("data array", Event(Session, "page_interaction", "page_view", `[]`, TS, ""), Problem{0, "data", "must be a JSON object"}),
		bad("data string", Event(Session, "page_interaction", "page_view", `"{}"`, TS, ""), Problem{0, "data", "must be a JSON object"}),
		bad("host number", Event(Session, "page_interaction", "page_view", `{"host":1,"path":"/"}`, TS, ""),
			Problem{0, "data.host", "must be a string"}),
		bad("form string", Event(Session, "form_interaction", "submit", `{"host":"a.com","path":"/","form":"a=1"}`, TS, ""),
			Problem{0, "data.form", "must be a JSON object"}),
		bad("form array", Event(Session, "form_interaction", "submit", `{"host":"a.com","path":"/","form":[]}`, TS, ""),
			Problem{0, "data.form", "must be a JSON object"}),
		bad("empty element", Event(Session, "page_interaction", "cta_click", `{"host":"a.com","path":"/","element":""}`, TS, ""),
			Problem{0, "data.element", "must not be empty"}),
		bad("element number", Event(Session, "page_interaction", "cta_click", `{"host":"a.com","path":"/","element":5}`, TS, ""),
			Problem{0, "data.element", "must be a string"}),
		bad("path without slash", view("a.com", "index.html"), Problem{0, "data.path", `must start with "/"`}),
		bad("empty path", view("a.com", ""), Problem{0, "data.path", `must start with "/"`}),
		bad("control character in path", view("a.com", "/a\x00b"), Problem{0, "data.path", "control characters"}),
		bad("empty event_id", Event(Session, "page_interaction", "page_view", ViewData, TS, `,"event_id":""`),
			Problem{0, "event_id", "must not be empty"}),
		bad("long event_id", Event(Session, "page_interaction", "page_view", ViewData, TS, `,"event_id":"`+strings.Repeat("e", 129)+`"`),
			Problem{0, "event_id", "longer than 128 bytes"}),
		ok("128-byte event_id", Event(Session, "page_interaction", "page_view", ViewData, TS, `,"event_id":"`+strings.Repeat("e", 128)+`"`),
			"eye:"+strings.Repeat("e", 128)),
		bad("non-ASCII event_id", Event(Session, "page_interaction", "page_view", ViewData, TS, `,"event_id":"é"`),
			Problem{0, "event_id", "printable ASCII"}),
		bad("event_id number", Event(Session, "page_interaction", "page_view", ViewData, TS, `,"event_id":7`),
			Problem{0, "event_id", "must be a string"}),
		exact(bad("every problem listed", `{"session_id":"","category":"page_interaction","name":"cta_click","timestamp":"1999-01-01T00:00:00",`+
			`"data":{"host":"evil..com","path":"x","element":"","extra":1},"more":2}`,
			Problem{0, "more", "unexpected field"}, Problem{0, "session_id", "must not be empty"}, Problem{0, "timestamp", "before the year 2000"},
			Problem{0, "data.extra", "unexpected field"}, Problem{0, "data.host", "is not a valid host name"},
			Problem{0, "data.path", "must start with"}, Problem{0, "data.element", "must not be empty"}), 7),

		// Hosts.
		badHost("evil..com"),
		badHost("-a.com"),
		badHost("a-.com"),
		badHost("a b.com"),
		badHost("http://user@host"),
		badHost("user@host.com"),
		badHost("host/path"),
		badHost("https://a.com/"),
		badHost("ftp://a.com"),
		badHost("a.com:99999"),
		badHost("a.com:"),
		badHost("a.com:0"),
		badHost(""),
		badHost("."),
		badHost("a_b.com"),
		badHost("[::1]"),
		badHost("é.com"),
		badHost(strings.Repeat("a", 64) + ".com"),
		badHost(strings.Repeat("abcdefghi.", 25) + "abcd"), // 254
		okHost("www.consumeraffairs.com"),
		okHost("localhost"),
		okHost("example.com."),
		okHost("http://example.com"),
		okHost("HTTPS://Example.com:8443"),
		okHost("127.0.0.1:8080"),
		okHost("xn--bcher-kva.example"),
		okHost(strings.Repeat("a", 63) + ".com"),
		okHost(strings.Repeat("abcdefghi.", 25) + "abc"), // 253

		// Body and limits.
		v("not JSON", "session_id=abc", 400, "body is not valid JSON", nil),
		v("empty body", "", 400, "body is not valid JSON", nil),
		v("truncated JSON", View[:len(View)-1], 400, "body is not valid JSON", nil),
		v("trailing garbage", View+"x", 400, "body is not valid JSON", nil),
		v("two objects", View+View, 400, "body is not valid JSON", nil),
		v("invalid UTF-8", strings.Replace(View, "abc123", "abc\xff", 1), 400, "invalid UTF-8", nil),
		v("UTF-16 surrogate encoded in UTF-8", strings.Replace(View, "abc123", "abc\xed\xa0\x80", 1), 400, "invalid UTF-8", nil),
		v("byte order mark", "\ufeff"+View, 400, "body is not valid JSON", nil),
		v("single quotes", strings.ReplaceAll(View, `"`, "'"), 400, "body is not valid JSON", nil),
		v("trailing comma", "["+View+",]", 400, "body is not valid JSON", nil),
		v("leading zero", `{"a":01}`, 400, "body is not valid JSON", nil),
		v("lone surrogate escape", Event(Session, "page_interaction", "cta_click", `{"host":"a.com","path":"/","element":"\ud800"}`, TS, ""),
			400, "unpaired UTF-16 surrogate", nil),
		v("surrogate escape before another escape", Event(Session, "page_interaction", "cta_click", `{"host":"a.com","path":"/","element":"\ud800\u0041"}`, TS, ""),
			400, "unpaired UTF-16 surrogate", nil),
		v("unterminated string", `{"a":"b`, 400, "unterminated string", nil),
		v("bad escape", strings.Replace(View, "abc123", `abc\x41`, 1), 400, "body is not valid JSON", nil),
		v("raw control character in string", strings.Replace(View, "abc123", "abc\x01", 1), 400, "body is not valid JSON", nil),
		v("NaN", `{"a":NaN}`, 400, "body is not valid JSON", nil),
		v("string body", `"event"`, 400, "must be a JSON object or an array of objects", nil),
		v("number body", `42`, 400, "must be a JSON object or an array of objects", nil),
		v("empty array", `[]`, 400, "no events", nil),
		v("empty array with spaces", ` [ ] `, 400, "no events", nil),
		exact(bad("array of non-objects", `[1,"x",[],null]`, Problem{0, "", "must be a JSON object"}, Problem{1, "", "must be a JSON object"},
			Problem{2, "", "must be a JSON object"}, Problem{3, "", "must be a JSON object"}), 4),
		exact(bad("batch with one bad element", "["+View+","+view("evil..com", "/")+","+Click+"]",
			Problem{1, "data.host", "is not a valid host name"}), 1),
		bad("batch with two bad elements", "["+strings.Replace(View, TS, "soon", 1)+","+Click+","+`{"x":1}`+"]",
			Problem{0, "timestamp", "ISO 8601"}, Problem{2, "x", "unexpected field"}, Problem{2, "session_id", "is required"}),
		withCfg(v("too many events", "["+View+","+View+","+View+"]", 413, "batch has 3 events; send at most 2", nil), ConfigWith("max_events", "2")),
		withCfg(ok("max events exactly", "["+View+","+Click+"]", ViewID, ClickID), ConfigWith("max_events", "2")),
		v("default max events", "["+strings.Repeat(View+",", 500)+View+"]", 413, "batch has 501 events; send at most 500", nil),
		withCfg(Vector{Name: "element too big", Request: Request("[" + View + "," + Form + "]"), Status: 413, Error: "validation failed",
			Problems: []Problem{{1, "", "bytes of JSON; at most 200"}}, NProblems: 1}, ConfigWith("max_event_bytes", "200")),
		withCfg(Vector{Name: "single object too big", Request: Request(Form), Status: 413, Error: "validation failed",
			Problems: []Problem{{0, "", "is " + strconv.Itoa(len(Form)) + " bytes"}}}, ConfigWith("max_event_bytes", "200")),
		withCfg(ok("element size exactly the limit", "[ "+View+" ]", ViewID), ConfigWith("max_event_bytes", strconv.Itoa(len(View)))),
		v("default max event bytes", Event(Session, "form_interaction", "submit",
			`{"host":"a.com","path":"/","form":{"blob":"`+strings.Repeat("x", 64<<10)+`"}}`, TS, ""), 413, "validation failed", nil),
		withCfg(v("more keys than max_keys", Event(Session, "form_interaction", "submit", `{"host":"a.com","path":"/","form":`+keys(9)+`}`, TS, ""),
			413, "a JSON object has more than 8 keys", nil), ConfigWith("max_keys", "8")),
		withCfg(ok("max_keys exactly", Event(Session, "form_interaction", "submit", `{"host":"a.com","path":"/","form":`+keys(8)+`}`, TS, ""),
			ContentID(Session, "form_interaction", "submit", TSTime, `{"host":"a.com","path":"/","form":`+keys(8)+`}`)), ConfigWith("max_keys", "8")),
		v("default max_keys", Event(Session, "form_interaction", "submit", `{"host":"a.com","path":"/","form":`+keys(257)+`}`, TS, ""),
			413, "more than 256 keys", nil),
		withCfg(v("deeper than max_depth", Event(Session, "form_interaction", "submit", `{"host":"a.com","path":"/","form":{"a":{"b":{}}}}`, TS, ""),
			400, "JSON nesting is deeper than 4 levels", nil), ConfigWith("max_depth", "4")),
		withCfg(ok("batch at max_depth", "["+Event(Session, "form_interaction", "submit", `{"host":"a.com","path":"/","form":{"a":1}}`, TS, "")+"]",
			ContentID(Session, "form_interaction", "submit", TSTime, `{"host":"a.com","path":"/","form":{"a":1}}`)), ConfigWith("max_depth", "4")),
		v("default max_depth", Event(Session, "form_interaction", "submit", `{"host":"a.com","path":"/","form":`+nested(31)+`}`, TS, ""),
			400, "deeper than 32 levels", nil),
		ok("default max_depth exactly", Event(Session, "form_interaction", "submit", `{"host":"a.com","path":"/","form":`+nested(30)+`}`, TS, ""),
			ContentID(Session, "form_interaction", "submit", TSTime, `{"host":"a.com","path":"/","form":`+nested(30)+`}`)),
		withCfg(ok("deepest allowed nesting", "["+Event(Session, "form_interaction", "submit", deepData, TS, "")+"]",
			ContentID(Session, "form_interaction", "submit", TSTime, deepData)), ConfigWith("max_depth", "48")),
		withCfg(ok("deepest allowed nesting, single object", Event(Session, "form_interaction", "submit", deeperData, TS, ""),
			ContentID(Session, "form_interaction", "submit", TSTime, deeperData)), ConfigWith("max_depth", "48")),
		withCfg(v("one level deeper than allowed", "["+Event(Session, "form_interaction", "submit", deeperData, TS, "")+"]",
			400, "deeper than 48 levels", nil), ConfigWith("max_depth", "48")),
		v("deep nesting refused before parsing", strings.Repeat("[", 100000), 400, "deeper than 32 levels", nil),
		ok("brackets in strings do not count", Event(Session, "page_interaction", "cta_click", brackets, TS, ""),
			ContentID(Session, "page_interaction", "cta_click", TSTime, brackets)),
	}
	return vs
}

// Diff describes how got differs from what v expects, or returns "".
func Diff(v Vector, got abi.Verdict) string {
	var b strings.Builder
	if got.Status != v.Status {
		fmt.Fprintf(&b, "status %d, want %d (message %q, body %s); ", got.Status, v.Status, got.Message, got.Body)
	}
	if ct := header(got.Headers, "content-type"); ct != "application/json" {
		fmt.Fprintf(&b, "content-type %q, want application/json; ", ct)
	}
	if v.Status == 201 {
		diffAccepted(&b, v, got)
	} else {
		diffRefused(&b, v, got)
	}
	return b.String()
}

func header(hs []abi.Header, name string) string {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

// Answer is the JSON body of a 201.
type Answer struct {
	Accepted int      `json:"accepted"`
	EventIDs []string `json:"event_ids"`
}

// Refusal is the JSON body of a 4xx.
type Refusal struct {
	Error    string    `json:"error"`
	Problems []Problem `json:"problems"`
	More     int       `json:"more"`
}

// UnmarshalJSON reads {"index", "field", "reason"}.
func (p *Problem) UnmarshalJSON(b []byte) error {
	var w struct {
		Index  *int    `json:"index"`
		Field  *string `json:"field"`
		Reason *string `json:"reason"`
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&w); err != nil {
		return err
	}
	if w.Index == nil || w.Field == nil || w.Reason == nil {
		return fmt.Errorf("problem %s lacks index, field or reason", b)
	}
	*p = Problem{*w.Index, *w.Field, *w.Reason}
	return nil
}

func diffAccepted(b *strings.Builder, v Vector, got abi.Verdict) {
	var a Answer
	if err := json.Unmarshal(got.Body, &a); err != nil {
		fmt.Fprintf(b, "body %q is not the answer JSON: %v; ", got.Body, err)
	}
	if a.Accepted != len(v.Events) || len(a.EventIDs) != len(v.Events) {
		fmt.Fprintf(b, "body %s, want %d events; ", got.Body, len(v.Events))
	}
	if len(got.Events) != len(v.Events) {
		fmt.Fprintf(b, "%d events, want %d; ", len(got.Events), len(v.Events))
		return
	}
	for i, e := range got.Events {
		if e.ID != v.Events[i] {
			fmt.Fprintf(b, "event %d id %q, want %q; ", i, e.ID, v.Events[i])
		}
		if v.Sessions != nil && e.Session != v.Sessions[i] {
			fmt.Fprintf(b, "event %d session %q, want %q; ", i, e.Session, v.Sessions[i])
		}
		if i < len(a.EventIDs) && a.EventIDs[i] != e.ID {
			fmt.Fprintf(b, "body event_ids[%d] = %q, event id %q; ", i, a.EventIDs[i], e.ID)
		}
		var data map[string]any
		if err := json.Unmarshal(e.Data, &data); err != nil {
			fmt.Fprintf(b, "event %d data %q is not a JSON object: %v; ", i, e.Data, err)
		}
		var compact bytes.Buffer
		if json.Compact(&compact, e.Data) == nil && !bytes.Equal(compact.Bytes(), e.Data) {
			fmt.Fprintf(b, "event %d data %s is not compact; ", i, e.Data)
		}
		if e.Source != abi.SourceEye || e.Session == "" || e.Category == "" || e.Name == "" || e.ClientTime <= 0 || e.IP != RemoteIP {
			fmt.Fprintf(b, "event %d incomplete: %+v; ", i, e)
		}
	}
}

func diffRefused(b *strings.Builder, v Vector, got abi.Verdict) {
	if len(got.Events) != 0 {
		fmt.Fprintf(b, "%d events on a refusal; ", len(got.Events))
	}
	if strings.TrimSpace(got.Message) == "" || strings.ContainsAny(got.Message, "\r\n") {
		fmt.Fprintf(b, "message %q is not one line; ", got.Message)
	}
	var r Refusal
	d := json.NewDecoder(bytes.NewReader(got.Body))
	d.DisallowUnknownFields()
	if err := d.Decode(&r); err != nil {
		fmt.Fprintf(b, "body %q is not the refusal JSON: %v; ", got.Body, err)
		return
	}
	if r.Problems == nil {
		fmt.Fprintf(b, "body %s has no problems list; ", got.Body)
	}
	if !strings.Contains(r.Error, v.Error) {
		fmt.Fprintf(b, "error %q does not contain %q; ", r.Error, v.Error)
	}
	if r.Error != "validation failed" && !strings.Contains(got.Message, r.Error) {
		fmt.Fprintf(b, "message %q does not carry error %q; ", got.Message, r.Error)
	}
	if r.Error == "validation failed" && len(r.Problems) == 0 {
		fmt.Fprintf(b, "validation failed without problems; ")
	}
	if v.NProblems != 0 && len(r.Problems) != v.NProblems {
		fmt.Fprintf(b, "%d problems, want %d: %s; ", len(r.Problems), v.NProblems, got.Body)
	}
	for _, want := range v.Problems {
		found := false
		for _, p := range r.Problems {
			if p.Index == want.Index && p.Field == want.Field && strings.Contains(p.Reason, want.Reason) {
				found = true
				break
			}
		}
		if !found {
			fmt.Fprintf(b, "no problem %+v in %s; ", want, got.Body)
		}
	}
}

// keys is a JSON object of n keys.
func keys(n int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"k` + strconv.Itoa(i) + `":1`)
	}
	return b.String() + "}"
}
