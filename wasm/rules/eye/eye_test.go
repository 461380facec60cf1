package eye_test

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/guest"
	"github.com/edgetrack/edgetrack/wasm/rules/eye"
	"github.com/edgetrack/edgetrack/wasm/rules/eye/eyetest"
)

func newRule(tb testing.TB, cfg *abi.Config) abi.Rule {
	tb.Helper()
	r, err := eye.New(cfg, guest.Native{})
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func TestVectorsNative(t *testing.T) {
	for _, v := range eyetest.Vectors() {
		t.Run(v.Name, func(t *testing.T) {
			got := newRule(t, v.Config).Handle(v.Request)
			if diff := eyetest.Diff(v, got); diff != "" {
				t.Fatal(diff)
			}
		})
	}
}

// TestVectorsOneInstance runs every vector through one rule per
// configuration, as a pooled wasm instance would: scratch space reused from
// one call must not leak into the next.
func TestVectorsOneInstance(t *testing.T) {
	rules := map[*abi.Config]abi.Rule{}
	vs := eyetest.Vectors()
	for round := 0; round < 2; round++ {
		for _, v := range vs {
			key := v.Config
			for c := range rules { // vectors share configurations by pointer or by value
				if configEqual(c, v.Config) {
					key = c
				}
			}
			r, ok := rules[key]
			if !ok {
				r = newRule(t, v.Config)
				rules[key] = r
			}
			if diff := eyetest.Diff(v, r.Handle(v.Request)); diff != "" {
				t.Fatalf("round %d, %s: %s", round, v.Name, diff)
			}
		}
	}
}

func configEqual(a, b *abi.Config) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// TestEventFields checks every field of an event.
func TestEventFields(t *testing.T) {
	r := newRule(t, eyetest.Config())
	got := r.Handle(eyetest.Request(eyetest.Form))
	if got.Status != 201 || len(got.Events) != 1 {
		t.Fatalf("status %d, %d events: %s", got.Status, len(got.Events), got.Body)
	}
	e := got.Events[0]
	want := abi.Event{
		ID: eyetest.FormID, Source: abi.SourceEye, ClientTime: eyetest.TSTime.UnixNano(),
		Session: eyetest.Session, Category: "form_interaction", Name: "submit", Data: []byte(eyetest.FormData), IP: eyetest.RemoteIP,
	}
	if e.ID != want.ID || e.Source != want.Source || e.ClientTime != want.ClientTime || e.Session != want.Session ||
		e.Category != want.Category || e.Name != want.Name || !bytes.Equal(e.Data, want.Data) || e.IP != want.IP {
		t.Fatalf("event\n%+v\nwant\n%+v", e, want)
	}
	if got := eye.ContentID(guest.Native{}, eyetest.Session, "form_interaction", "submit", eyetest.TSTime.UnixNano(), []byte(eyetest.FormData)); got != eyetest.FormID {
		t.Fatalf("ContentID = %s, want %s", got, eyetest.FormID)
	}
}

func TestRefusalShape(t *testing.T) {
	r := newRule(t, eyetest.Config())
	body := `[` + eyetest.View + `,{"session_id":"s","category":"page_interaction","name":"page_view","timestamp":"` + eyetest.TS +
		`","data":{"host":"evil..com","path":"/"}}]`
	got := r.Handle(eyetest.Request(body))
	want := `{"error":"validation failed","problems":[{"index":1,"field":"data.host","reason":"is not a valid host name (has an empty label)"}]}`
	if got.Status != 400 || string(got.Body) != want {
		t.Fatalf("status %d body\n%s\nwant\n%s", got.Status, got.Body, want)
	}
	if wantMsg := "validation failed: 1 problem in 1 of 2 events; first: [1] data.host is not a valid host name (has an empty label)"; got.Message != wantMsg {
		t.Fatalf("message %q, want %q", got.Message, wantMsg)
	}

	got = r.Handle(eyetest.Request(`{`))
	if got.Status != 400 || !strings.HasPrefix(string(got.Body), `{"error":"body is not valid JSON: `) || !strings.HasSuffix(string(got.Body), `","problems":[]}`) {
		t.Fatalf("status %d body %s", got.Status, got.Body)
	}

	got = r.Handle(eyetest.Request(`[` + eyetest.View + `]`))
	if want := `{"accepted":1,"event_ids":["` + eyetest.ViewID + `"]}`; got.Status != 201 || string(got.Body) != want {
		t.Fatalf("status %d body %s, want %s", got.Status, got.Body, want)
	}
}

// TestProblemsCapped sends an event with more unknown keys than MaxProblems.
func TestProblemsCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"data":{`)
	for i := 0; i < eye.MaxProblems+500; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"k` + strconv.Itoa(i) + `":1`)
	}
	b.WriteString(`}}`)
	r := newRule(t, eyetest.ConfigWith("max_event_bytes", "1000000", "max_keys", "2000"))
	got := r.Handle(eyetest.Request(b.String()))
	var ref eyetest.Refusal
	if err := json.Unmarshal(got.Body, &ref); err != nil {
		t.Fatal(err)
	}
	// 4 required top-level fields, 2 required data fields, 1500 unknown keys.
	if got.Status != 400 || len(ref.Problems) != eye.MaxProblems || ref.More != 4+2+1500-eye.MaxProblems {
		t.Fatalf("status %d, %d problems listed, %d more; message %q", got.Status, len(ref.Problems), ref.More, got.Message)
	}
	if !strings.HasPrefix(got.Message, "validation failed: 1506 problems; first: [0] session_id is required") {
		t.Fatalf("message %q", got.Message)
	}
}

func TestLongUnknownKeyClipped(t *testing.T) {
	key := strings.Repeat("é", 100)
	got := newRule(t, eyetest.Config()).Handle(eyetest.Request(`{"` + key + `":1}`))
	var ref eyetest.Refusal
	if err := json.Unmarshal(got.Body, &ref); err != nil {
		t.Fatal(err)
	}
	f := ref.Problems[0].Field
	if !strings.HasPrefix(key, strings.TrimSuffix(f, "…")) || len(f) > 64+len("…") {
		t.Fatalf("field %q", f)
	}
}

func TestConfig(t *testing.T) {
	for name, kv := range map[string][]string{
		"skew not a duration": {"max_clock_skew", "soon"},
		"negative skew":       {"max_clock_skew", "-1m"},
		"max_events zero":     {"max_events", "0"},
		"max_events word":     {"max_events", "many"},
		"max_event_bytes":     {"max_event_bytes", "64KiB"},
		"max_depth too small": {"max_depth", "3"},
		"max_depth too large": {"max_depth", "49"},
	} {
		_, err := eye.New(eyetest.ConfigWith(kv...), guest.Native{})
		if err == nil || !strings.Contains(err.Error(), kv[0]) {
			t.Errorf("%s: New error %v, want one naming %s", name, err, kv[0])
		}
	}
	for _, kv := range [][]string{
		{"max_clock_skew", "0s"}, {"max_clock_skew", "1h30m"}, {"max_events", "1"}, {"max_event_bytes", "1048576"},
		{"max_depth", "4"}, {"max_depth", "48"},
	} {
		if _, err := eye.New(eyetest.ConfigWith(kv...), guest.Native{}); err != nil {
			t.Errorf("%v: %v", kv, err)
		}
	}
	_, err := eye.New(eyetest.ConfigWith("max_clock_skew", "x", "max_events", "x", "max_event_bytes", "x", "max_depth", "x"), guest.Native{})
	for _, key := range []string{"max_clock_skew", "max_events", "max_event_bytes", "max_depth"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error %v does not name %s", err, key)
		}
	}
}

func TestZeroSkewRefusesAnyFuture(t *testing.T) {
	r := newRule(t, eyetest.ConfigWith("max_clock_skew", "0s"))
	req := eyetest.Request(eyetest.View)
	req.ReceivedAt = eyetest.TSTime.UnixNano()
	if got := r.Handle(req); got.Status != 201 {
		t.Fatalf("timestamp equal to the edge clock: %d %s", got.Status, got.Body)
	}
	req.ReceivedAt--
	if got := r.Handle(req); got.Status != 400 {
		t.Fatalf("timestamp 1ns ahead: %d %s", got.Status, got.Body)
	}
}

func TestNoAllocationsPerEvent(t *testing.T) {
	r := newRule(t, eyetest.Config())
	small := eyetest.Request("[" + eyetest.View + "," + eyetest.Click + "," + eyetest.Form + "]")
	large := eyetest.Request("[" + strings.Repeat(eyetest.View+","+eyetest.Click+","+eyetest.Form+",", 99) +
		eyetest.View + "," + eyetest.Click + "," + eyetest.Form + "]")
	for _, req := range []*abi.Request{small, large, small, large} { // warm up: buffers grow to the largest
		if got := r.Handle(req); got.Status != 201 {
			t.Fatalf("%d %s", got.Status, got.Body)
		}
	}
	a1 := testing.AllocsPerRun(20, func() { r.Handle(small) })
	a300 := testing.AllocsPerRun(20, func() { r.Handle(large) })
	if a300 > a1 {
		t.Fatalf("%v allocations for 3 events, %v for 300", a1, a300)
	}
}

func BenchmarkHandle(b *testing.B) {
	for _, n := range []int{1, 100} {
		events := make([]string, n)
		for i := range events {
			events[i] = eyetest.Event("session-"+strconv.Itoa(i), "form_interaction", "submit", eyetest.FormData, eyetest.TS, "")
		}
		req := eyetest.Request("[" + strings.Join(events, ",") + "]")
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			r := newRule(b, eyetest.Config())
			b.SetBytes(int64(len(req.Body)))
			b.ReportAllocs()
			for b.Loop() {
				if v := r.Handle(req); v.Status != 201 {
					b.Fatal(v.Status, string(v.Body))
				}
			}
		})
	}
}

func FuzzHandle(f *testing.F) {
	for _, v := range eyetest.Vectors() {
		if len(v.Request.Body) < 4096 {
			f.Add(v.Request.Body)
		}
	}
	f.Add([]byte(`[` + eyetest.View + `,` + eyetest.Click + `]`))
	f.Add([]byte(`{"a":"\u0000\ud800\udc00"}`))
	r := newRule(f, eyetest.ConfigWith("max_events", "20", "max_event_bytes", "2048", "max_depth", "8"))
	f.Fuzz(func(t *testing.T, body []byte) {
		req := eyetest.Request(string(body))
		v := r.Handle(req)
		switch v.Status {
		case 201:
			if !json.Valid(body) {
				t.Fatal("accepted a body encoding/json refuses")
			}
			n := 1
			if a, ok := decode(t, body).([]any); ok {
				n = len(a)
			}
			var ans eyetest.Answer
			if err := json.Unmarshal(v.Body, &ans); err != nil || ans.Accepted != n || len(v.Events) != n {
				t.Fatalf("%d events, answer %s, for %d elements (%v)", len(v.Events), v.Body, n, err)
			}
			for i, e := range v.Events {
				var d map[string]any
				if err := json.Unmarshal(e.Data, &d); err != nil {
					t.Fatalf("event %d data %q: %v", i, e.Data, err)
				}
				if !strings.HasPrefix(e.ID, eye.IDPrefix) || e.Session == "" || ans.EventIDs[i] != e.ID {
					t.Fatalf("event %d: %+v", i, e)
				}
			}
			// The same body again gets the same ids.
			again := r.Handle(eyetest.Request(string(body)))
			for i := range again.Events {
				if again.Events[i].ID != ans.EventIDs[i] {
					t.Fatalf("event %d id %s, then %s", i, ans.EventIDs[i], again.Events[i].ID)
				}
			}
		case 400, 413:
			if diff := eyetest.Diff(eyetest.Vector{Status: v.Status}, v); diff != "" {
				t.Fatalf("malformed refusal: %s", diff)
			}
		default:
			t.Fatalf("status %d: %s", v.Status, v.Body)
		}
	})
}

// FuzzScan checks scan against encoding/json: it accepts exactly the bodies
// that are valid JSON in valid UTF-8 (within the depth limit), and counts a
// top-level array's elements as encoding/json does.
func FuzzScan(f *testing.F) {
	for _, v := range eyetest.Vectors() {
		if len(v.Request.Body) < 4096 {
			f.Add(v.Request.Body)
		}
	}
	for _, s := range []string{`[]`, `[1,[2,{}],"x"]`, `{"a":[]}`, `-0.5e+10`, `"\u00e9\n"`, `[1,]`, `{"a" 1}`, `[01]`, `1.`, `"\ud800"`, `"\ud83d\ude00"`, `"\ude00"`, `"\ud83dx"`, "\"\xc3\x28\""} {
		f.Add([]byte(s))
	}
	const depth = 8
	r, err := eye.New(eyetest.ConfigWith("max_depth", strconv.Itoa(depth), "max_events", "1000"), guest.Native{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		elems, why, tooDeep := eye.Scan(r.(*eye.Rule), body)
		if tooDeep {
			return
		}
		valid := json.Valid(body) && utf8.Valid(body)
		if valid && strings.Contains(why, "surrogate") {
			return // stricter than encoding/json on purpose
		}
		if valid != (why == "") {
			t.Fatalf("scan says %q, encoding/json valid=%v", why, valid)
		}
		if !valid {
			return
		}
		arr, isArray := decode(t, body).([]any)
		if !isArray {
			if elems != 1 {
				t.Fatalf("%d elements in a non-array", elems)
			}
			return
		}
		if elems != len(arr) {
			t.Fatalf("%d elements, encoding/json %d", elems, len(arr))
		}
	})
}

// decode decodes valid JSON, keeping numbers as text.
func decode(t *testing.T, b []byte) any {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}
