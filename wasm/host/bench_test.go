package host_test

import (
	"context"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/guest"
	"github.com/edgetrack/edgetrack/wasm/host"
	"github.com/edgetrack/edgetrack/wasm/rules/hamustro"
	"github.com/edgetrack/edgetrack/wasm/rules/hamustro/hamustrotest"
)

// BenchmarkHamustro measures one request through the hamustro rule, side by
// side: the logic compiled natively (with the host's encode/decode of the
// verdict, so both sides do the same work), the committed .wasm whose
// hashing runs in host functions, and the same rule built to hash inside
// the guest. Sub-benchmarks by payloads per collection.
func BenchmarkHamustro(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		body := mustMarshal(b, hamustrotest.Collection(n))
		req := hamustrotest.SignedRequest(body, time.Unix(1700000000, 0))
		b.Run(name("native", n), func(b *testing.B) {
			r, err := hamustro.New(hamustrotest.Config(), guest.Native{})
			if err != nil {
				b.Fatal(err)
			}
			var enc []byte
			b.ReportAllocs()
			for b.Loop() {
				v := r.Handle(req)
				enc = abi.AppendVerdict(enc[:0], &v)
				var out abi.Verdict
				if err := abi.DecodeVerdict(enc, &out); err != nil || out.Status != 200 {
					b.Fatal(err, out.Status)
				}
			}
		})
		for _, w := range []struct {
			name string
			wasm []byte
		}{{"wasm-hostcrypto", hamustroWasm(b)}, {"wasm-guestcrypto", hamustroGuestWasm}} {
			b.Run(name(w.name, n), func(b *testing.B) {
				rt := newRuntime(b, host.Options{PoolSize: 1, CallTimeout: time.Minute})
				m := load(b, rt, "hamustro", w.wasm, hamustrotest.Config())
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					v, err := m.Call(ctx, req)
					if err != nil || v.Status != 200 {
						b.Fatal(err, v.Status)
					}
				}
			})
		}
	}
}

func name(s string, n int) string {
	return s + "/payloads=" + map[int]string{1: "1", 10: "10", 100: "100"}[n]
}
