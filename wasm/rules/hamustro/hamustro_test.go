package hamustro_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

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
		case 400:
			if strings.TrimSpace(v.Message) == "" {
				t.Fatal("400 without a reason")
			}
		default:
			t.Fatalf("status %d for a signed body", v.Status)
		}
	})
}
