package hamustro_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/internal/storable"
	"github.com/edgetrack/edgetrack/proto/hamustropb"
	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/guest"
	"github.com/edgetrack/edgetrack/wasm/rules/hamustro"
	"github.com/edgetrack/edgetrack/wasm/rules/hamustro/hamustrotest"
)

func TestSignaturePublicVector(t *testing.T) {
	got := hamustro.Signature(guest.Native{}, "1454514088", []byte("something"), []byte("ultrasafesecret"))
	if want := "DAfTAP+9T/K/N08k+nwRTWNpfacimS8DJcQG1I4+Moo="; got != want {
		t.Fatalf("signature = %q, want %q", got, want)
	}
}

func TestVectorsNative(t *testing.T) {
	for _, v := range hamustrotest.Vectors() {
		t.Run(v.Name, func(t *testing.T) {
			r, err := hamustro.New(v.Config, guest.Native{})
			if err != nil {
				t.Fatal(err)
			}
			got := r.Handle(v.Request)
			if diff := hamustrotest.Diff(v, got); diff != "" {
				t.Fatal(diff)
			}
		})
	}
}

// TestPayloadIdentity pins what makes two payloads one event. A payload sent
// again — alone, re-encoded, or batched with other payloads — keeps its id,
// so the aggregator stores it once; a payload that differs in any field
// gets another id, also when it reuses an nr (as an app does after a
// reinstall: the session stays, numbering restarts at 1).
func TestPayloadIdentity(t *testing.T) {
	r, err := hamustro.New(hamustrotest.Config(), guest.Native{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1700000100, 0)
	ids := func(t *testing.T, body []byte) []string {
		t.Helper()
		v := r.Handle(hamustrotest.SignedRequest(body, at))
		if v.Status != 200 {
			t.Fatalf("status %d: %s", v.Status, v.Message)
		}
		var out []string
		for _, e := range v.Events {
			out = append(out, strings.Clone(e.ID)) // ids alias the rule's buffers
		}
		return out
	}
	marshal := func(c *hamustropb.Collection) []byte {
		b, err := proto.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	base := hamustrotest.Collection(1)
	p := base.Payloads[0]
	first := ids(t, marshal(base))[0]

	t.Run("format", func(t *testing.T) {
		prefix := "h:" + base.GetSession() + ":1:"
		if !strings.HasPrefix(first, prefix) || len(first) != len(prefix)+16 || strings.Trim(first[len(prefix):], "0123456789abcdef") != "" {
			t.Fatalf("id %q, want %s and 16 hex digits", first, prefix)
		}
	})
	t.Run("sent again", func(t *testing.T) {
		if got := ids(t, marshal(base))[0]; got != first {
			t.Fatalf("id %q, first time %q", got, first)
		}
	})
	t.Run("batched with new payloads", func(t *testing.T) {
		c := hamustrotest.Collection(3)
		c.Payloads = append(c.Payloads[1:], p)
		if got := ids(t, marshal(c))[2]; got != first {
			t.Fatalf("id %q, alone %q", got, first)
		}
	})
	t.Run("fields in another order", func(t *testing.T) {
		c := proto.Clone(base).(*hamustropb.Collection)
		c.Payloads = nil
		b := marshal(c)
		var pb []byte
		pb = protowire.AppendTag(pb, 6, protowire.BytesType)
		pb = protowire.AppendString(pb, p.GetParameters())
		pb = protowire.AppendTag(pb, 4, protowire.VarintType)
		pb = protowire.AppendVarint(pb, uint64(p.GetUserId()))
		pb = protowire.AppendTag(pb, 3, protowire.VarintType)
		pb = protowire.AppendVarint(pb, uint64(p.GetNr()))
		pb = protowire.AppendTag(pb, 2, protowire.BytesType)
		pb = protowire.AppendString(pb, p.GetEvent())
		pb = protowire.AppendTag(pb, 1, protowire.VarintType)
		pb = protowire.AppendVarint(pb, p.GetAt())
		b = protowire.AppendTag(b, 8, protowire.BytesType)
		b = protowire.AppendBytes(b, pb)
		if got := ids(t, b)[0]; got != first {
			t.Fatalf("id %q, in field order %q", got, first)
		}
	})

	// Each variant differs from the base payload in one way, and from every
	// other variant; the last ones move bytes between neighbouring strings,
	// which only a canonical form with lengths tells apart.
	variants := map[string]func(*hamustropb.Payload){
		"at":                  func(p *hamustropb.Payload) { p.At = proto.Uint64(p.GetAt() + 1) },
		"at in milliseconds":  func(p *hamustropb.Payload) { p.At = proto.Uint64(p.GetAt() * 1000) },
		"event":               func(p *hamustropb.Payload) { p.Event = proto.String("screen_vieW") },
		"nr":                  func(p *hamustropb.Payload) { p.Nr = proto.Uint32(2) },
		"user_id":             func(p *hamustropb.Payload) { p.UserId = proto.Uint32(43) },
		"user_id 0":           func(p *hamustropb.Payload) { p.UserId = proto.Uint32(0) },
		"no user_id":          func(p *hamustropb.Payload) { p.UserId = nil },
		"ip":                  func(p *hamustropb.Payload) { p.Ip = proto.String("198.51.100.23") },
		"parameters":          func(p *hamustropb.Payload) { p.Parameters = proto.String(`{"screen":"cart"}`) },
		"no parameters":       func(p *hamustropb.Payload) { p.Parameters = nil },
		"is_testing":          func(p *hamustropb.Payload) { p.IsTesting = proto.Bool(true) },
		"event|ip shifted":    func(p *hamustropb.Payload) { p.Event, p.Ip = proto.String("screen_vie"), proto.String("w") },
		"event|ip shifted 2":  func(p *hamustropb.Payload) { p.Event, p.Ip = proto.String("screen_vi"), proto.String("ew") },
		"ip|parameters moved": func(p *hamustropb.Payload) { p.Ip, p.Parameters = p.Parameters, nil },
	}
	seen := map[string]string{first: "the base payload"}
	for name, change := range variants {
		c := proto.Clone(base).(*hamustropb.Collection)
		change(c.Payloads[0])
		id := ids(t, marshal(c))[0]
		if other, dup := seen[id]; dup {
			t.Errorf("%s: id %q, the same as %s", name, id, other)
		}
		seen[id] = name
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]*abi.Config{
		"no secrets":   {},
		"empty secret": {Settings: []abi.Setting{{Key: "secrets", Values: []string{""}}}},
		"bad skew":     {Settings: []abi.Setting{{Key: "secrets", Values: []string{"s"}}, {Key: "max_clock_skew", Values: []string{"soon"}}}},
		"bad mask":     {Settings: []abi.Setting{{Key: "secrets", Values: []string{"s"}}, {Key: "mask_ip", Values: []string{"yes"}}}},
	} {
		if _, err := hamustro.New(cfg, guest.Native{}); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

func FuzzHandle(f *testing.F) {
	c := hamustrotest.Collection(3)
	body, _ := proto.Marshal(c)
	f.Add(body)
	f.Add([]byte("something"))
	f.Add([]byte{0x42, 0x02, 0x08})
	f.Add(append(bytes.Clone(body), hamustrotest.NestedGroups(9, 1000, true)...))
	f.Add(hamustrotest.NestedGroups(9, 70, false))
	for _, v := range hamustrotest.Vectors() {
		f.Add(v.Request.Body)
	}
	r, err := hamustro.New(hamustrotest.Config(), guest.Native{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := hamustrotest.SignedRequest(body, time.Unix(1700000000, 0))
		v := r.Handle(req)
		switch v.Status {
		case 200, 204:
			var c hamustropb.Collection
			if err := proto.Unmarshal(body, &c); err != nil {
				t.Fatalf("rule accepted a body protobuf refuses: %v", err)
			}
			if len(v.Events) != len(c.Payloads) {
				t.Fatalf("%d events for %d payloads", len(v.Events), len(c.Payloads))
			}
			for i, e := range v.Events {
				fs := storable.Fields{ID: e.ID, Session: e.Session, Category: e.Category, Name: e.Name, IP: e.IP}
				if p := storable.Problem(&fs); p != "" {
					t.Fatalf("event %d cannot be stored: %s", i, p)
				}
				if !json.Valid(e.Data) || !utf8.Valid(e.Data) {
					t.Fatalf("event %d: data %q is not JSON in UTF-8", i, e.Data)
				}
			}
		case 400:
			if strings.TrimSpace(v.Message) == "" {
				t.Fatal("400 without a reason")
			}
		default:
			t.Fatalf("status %d for a signed body", v.Status)
		}
	})
}
