package abi_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/proto/eventpb"
	"github.com/edgetrack/edgetrack/proto/rulepb"
	"github.com/edgetrack/edgetrack/wasm/abi"
)

func sampleVerdict() *abi.Verdict {
	return &abi.Verdict{
		Status: 302, Message: "see other", Location: "https://partner.example/sync?id=1",
		Headers: []abi.Header{{Name: "x-a", Value: "1"}, {Name: "x-b", Value: strings.Repeat("v", 300)}},
		Body:    []byte{0, 1, 2},
		Cookies: []abi.Cookie{{Name: "uid", Value: "abc", MaxAge: 3600, Path: "/", Domain: "example.com", Secure: true, HTTPOnly: true, SameSite: "none"}},
		Events: []abi.Event{
			{ID: "h:s:1", Source: abi.SourceHamustro, ReceivedAt: 1700000000123456789, ClientTime: -5, Session: "s", Category: "c", Name: "n",
				Data: []byte(`{"k":"` + strings.Repeat("x", 200) + `"}`), IP: "203.0.113.1", Edge: "e", Rule: "r@abc"},
			{ID: "h:s:2"},
		},
	}
}

// TestVerdictMatchesGeneratedCode encodes with the hand-written codec and
// decodes with the generated code, and back, comparing every field.
func TestVerdictMatchesGeneratedCode(t *testing.T) {
	v := sampleVerdict()
	b := abi.AppendVerdict(nil, v)
	if len(b) > abi.SizeHint(v) {
		t.Fatalf("encoding is %d bytes, SizeHint said at most %d", len(b), abi.SizeHint(v))
	}
	var pb rulepb.Verdict
	if err := proto.Unmarshal(b, &pb); err != nil {
		t.Fatal(err)
	}
	if pb.Status != 302 || pb.Message != v.Message || pb.Location != v.Location || len(pb.Headers) != 2 ||
		pb.Headers[1].Value != v.Headers[1].Value || string(pb.Body) != string(v.Body) || len(pb.Cookies) != 1 ||
		pb.Cookies[0].MaxAge != 3600 || !pb.Cookies[0].HttpOnly || pb.Cookies[0].SameSite != "none" || len(pb.Events) != 2 {
		t.Fatalf("generated decode differs: %v", &pb)
	}
	e := pb.Events[0]
	if e.Id != "h:s:1" || e.Source != eventpb.Source_SOURCE_HAMUSTRO || e.ReceivedAt != 1700000000123456789 || e.ClientTime != -5 ||
		e.Session != "s" || e.Category != "c" || e.Name != "n" || string(e.Data) != string(v.Events[0].Data) || e.Ip != "203.0.113.1" ||
		e.Edge != "e" || e.Rule != "r@abc" {
		t.Fatalf("event differs: %v", e)
	}
	back, err := proto.Marshal(&pb)
	if err != nil {
		t.Fatal(err)
	}
	var got abi.Verdict
	if err := abi.DecodeVerdict(back, &got); err != nil {
		t.Fatal(err)
	}
	if string(abi.AppendVerdict(nil, &got)) != string(b) {
		t.Fatal("hand codec does not round-trip the generated encoding")
	}
}

// TestVerdictOutlivesItsBytes decodes a verdict, overwrites the bytes it
// came from (a guest's memory, reused by its next call) and checks that
// every field still holds, and that appending to a byte slice of the
// result does not write over its neighbours.
func TestVerdictOutlivesItsBytes(t *testing.T) {
	want := abi.AppendVerdict(nil, sampleVerdict())
	b := append([]byte(nil), want...)
	var got abi.Verdict
	if err := abi.DecodeVerdict(b, &got); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0xff
	}
	if string(abi.AppendVerdict(nil, &got)) != string(want) {
		t.Fatal("the verdict changed when the bytes it was decoded from were overwritten")
	}
	_ = append(got.Events[0].Data, "tail"...)
	_ = append(got.Body, "tail"...)
	if string(abi.AppendVerdict(nil, &got)) != string(want) {
		t.Fatal("appending to a byte slice of the verdict changed another field")
	}
}

func TestRequestAndConfigMatchGeneratedCode(t *testing.T) {
	req := &abi.Request{Method: "POST", Path: "/p", Query: "a=1", Headers: []abi.Header{{Name: "h", Value: "v"}},
		Body: []byte("body"), RemoteIP: "::1", ReceivedAt: 42}
	var pb rulepb.Request
	if err := proto.Unmarshal(abi.AppendRequest(nil, req), &pb); err != nil {
		t.Fatal(err)
	}
	if pb.Method != "POST" || pb.Path != "/p" || pb.Query != "a=1" || pb.Headers[0].Name != "h" || string(pb.Body) != "body" ||
		pb.RemoteIp != "::1" || pb.ReceivedAt != 42 {
		t.Fatalf("request differs: %v", &pb)
	}
	b, _ := proto.Marshal(&pb)
	var got abi.Request
	if err := abi.DecodeRequest(b, &got); err != nil || got.Path != "/p" || got.RemoteIP != "::1" || string(got.Body) != "body" {
		t.Fatalf("decode: %v %+v", err, got)
	}

	cfg := &abi.Config{ABIVersion: 1, Rule: "r", Settings: []abi.Setting{{Key: "secrets", Values: []string{"a", "", "b"}}}}
	var pc rulepb.Config
	if err := proto.Unmarshal(abi.AppendConfig(nil, cfg), &pc); err != nil {
		t.Fatal(err)
	}
	if pc.AbiVersion != 1 || pc.Rule != "r" || len(pc.Settings[0].Values) != 3 || pc.Settings[0].Values[1] != "" {
		t.Fatalf("config differs: %v", &pc)
	}
	cb, _ := proto.Marshal(&pc)
	gc, err := abi.DecodeConfig(cb)
	if err != nil || len(gc.Values("secrets")) != 3 || gc.Value("secrets") != "a" {
		t.Fatalf("config decode: %v %+v", err, gc)
	}
}

func FuzzDecodeVerdict(f *testing.F) {
	f.Add(abi.AppendVerdict(nil, sampleVerdict()))
	f.Add([]byte{0x3a, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var v abi.Verdict
		if abi.DecodeVerdict(b, &v) != nil {
			return
		}
		// Whatever decodes re-encodes and decodes to the same thing.
		var again abi.Verdict
		if err := abi.DecodeVerdict(abi.AppendVerdict(nil, &v), &again); err != nil {
			t.Fatal(err)
		}
	})
}
