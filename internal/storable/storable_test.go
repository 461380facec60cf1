package storable_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/internal/storable"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

func TestProblem(t *testing.T) {
	long := strings.Repeat("x", 257)
	full := strings.Repeat("é", 128) // 256 bytes
	ok := func() storable.Fields {
		return storable.Fields{ID: "h:1", Session: "s", Category: "c", Name: "n", IP: "203.0.113.7", Edge: "e", Rule: "r@1"}
	}
	for _, tc := range []struct {
		name   string
		change func(*storable.Fields)
		want   string
	}{
		{"storable", func(*storable.Fields) {}, ""},
		{"only an id", func(f *storable.Fields) { *f = storable.Fields{ID: "x"} }, ""},
		{"256 bytes each", func(f *storable.Fields) { f.ID, f.Session, f.Category, f.Name = full, full, full, full }, ""},
		{"empty id", func(f *storable.Fields) { f.ID = "" }, storable.ReasonEmptyID},
		{"long id", func(f *storable.Fields) { f.ID = long }, storable.ReasonIDTooLong},
		{"NUL in id", func(f *storable.Fields) { f.ID = "a\x00" }, storable.ReasonIDNUL},
		{"long session", func(f *storable.Fields) { f.Session = long }, storable.ReasonSessionTooLong},
		{"NUL in session", func(f *storable.Fields) { f.Session = "\x00" }, storable.ReasonSessionNUL},
		{"long category", func(f *storable.Fields) { f.Category = long }, storable.ReasonCategoryTooLong},
		{"NUL in category", func(f *storable.Fields) { f.Category = "c\x00" }, storable.ReasonCategoryNUL},
		{"long name", func(f *storable.Fields) { f.Name = long }, storable.ReasonNameTooLong},
		{"NUL in name", func(f *storable.Fields) { f.Name = "\x00n" }, storable.ReasonNameNUL},
		{"id not UTF-8", func(f *storable.Fields) { f.ID = "h:\xff" }, storable.ReasonIDUTF8},
		{"session not UTF-8", func(f *storable.Fields) { f.Session = "\xc3" }, storable.ReasonSessionUTF8},
		{"category not UTF-8", func(f *storable.Fields) { f.Category = "\xed\xa0\x80" }, storable.ReasonCategoryUTF8}, // a surrogate
		{"name not UTF-8", func(f *storable.Fields) { f.Name = "screen_\xe9" }, storable.ReasonNameUTF8},
		{"ip not UTF-8", func(f *storable.Fields) { f.IP = "\x80" }, storable.ReasonIPUTF8},
		{"edge not UTF-8", func(f *storable.Fields) { f.Edge = "\xfe" }, storable.ReasonEdgeUTF8},
		{"rule not UTF-8", func(f *storable.Fields) { f.Rule = "r@\xc0\xaf" }, storable.ReasonRuleUTF8}, // overlong
		{"NUL in ip is fine", func(f *storable.Fields) { f.IP = "\x00" }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := ok()
			tc.change(&f)
			if got := storable.Problem(&f); got != tc.want {
				t.Fatalf("Problem = %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzProblem checks Problem against protobuf: an event Problem accepts
// marshals and unmarshals to itself, and one protobuf cannot marshal is
// refused.
func FuzzProblem(f *testing.F) {
	f.Add("h:s:1:0011", "s", "c", "n", "203.0.113.7", "edge", "hamustro@0123")
	f.Add("id", "\xff", "", "", "", "", "")
	f.Add("", "s", "c", "n", "", "", "")
	f.Add("id", "", "", "", "\xed\xa0\x80", "", "")
	f.Fuzz(func(t *testing.T, id, session, category, name, ip, edge, rule string) {
		fs := storable.Fields{ID: id, Session: session, Category: category, Name: name, IP: ip, Edge: edge, Rule: rule}
		problem := storable.Problem(&fs)
		ev := &eventpb.Event{Id: id, Session: session, Category: category, Name: name, Ip: ip, Edge: edge, Rule: rule}
		b, err := proto.Marshal(ev)
		if err != nil {
			if problem == "" {
				t.Fatalf("Problem accepts an event protobuf cannot marshal: %v", err)
			}
			return
		}
		if problem != "" {
			return
		}
		var back eventpb.Event
		if err := proto.Unmarshal(b, &back); err != nil {
			t.Fatalf("Problem accepts an event that does not unmarshal: %v", err)
		}
		if !proto.Equal(ev, &back) {
			t.Fatalf("round trip changed the event: %v, want %v", &back, ev)
		}
	})
}
