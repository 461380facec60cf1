package native_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/dist"
	"github.com/edgetrack/edgetrack/wasm/host"
	"github.com/edgetrack/edgetrack/wasm/native"
)

// TestNativeMatchesWasm runs every built-in vector through the native twin
// of each rule, which every ratio in bench/ is measured against: it passes
// them all, and for the rules whose verdicts are deterministic (cookie sync
// draws random user ids) its verdict is byte for byte the committed .wasm's.
func TestNativeMatchesWasm(t *testing.T) {
	ctx := context.Background()
	rt, err := host.New(ctx, host.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	for _, name := range dist.Names() {
		wasm, ok := dist.Rule(name)
		if !ok {
			t.Fatalf("no built-in module %s", name)
		}
		for _, s := range dist.Vectors(name) {
			nm, err := native.New(name, s.Config)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			wm, err := rt.Load(ctx, name, wasm, s.Config)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			for _, c := range s.Cases {
				nv, err := nm.Call(ctx, c.Request)
				if err != nil {
					t.Fatalf("%s/%s: %v", name, c.Name, err)
				}
				if why := c.Check(nv); why != "" {
					t.Errorf("%s/%s natively: %s", name, c.Name, why)
				}
				if name == "cookiesync" {
					continue
				}
				wv, err := wm.Call(ctx, c.Request)
				if err != nil {
					t.Fatalf("%s/%s as wasm: %v", name, c.Name, err)
				}
				if n, w := abi.AppendVerdict(nil, &nv), abi.AppendVerdict(nil, &wv); !bytes.Equal(n, w) {
					t.Errorf("%s/%s: native and wasm verdicts differ:\n native %+v\n wasm   %+v", name, c.Name, nv, wv)
				}
			}
			wm.Close(ctx)
			nm.Close(ctx)
		}
	}
}

// TestNativeModule checks the module's own contract: an unknown rule is an
// invalid module, a refused configuration an error, verdicts of concurrent
// calls do not share memory, and a closed module refuses calls.
func TestNativeModule(t *testing.T) {
	if _, err := native.New("nosuchrule", &abi.Config{}); !errors.Is(err, host.ErrInvalidModule) {
		t.Fatalf("unknown rule: %v, want ErrInvalidModule", err)
	}
	if _, err := native.New("hamustro", &abi.Config{}); err == nil {
		t.Fatal("hamustro without secrets was accepted")
	}
	s := dist.Vectors("eye")[0]
	m, err := native.New("eye", s.Config)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	verdicts := make([]abi.Verdict, 8)
	for i := range verdicts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := m.Call(context.Background(), s.Cases[i%len(s.Cases)].Request)
			if err != nil {
				t.Error(err)
			}
			verdicts[i] = v
		}()
	}
	wg.Wait()
	for i, v := range verdicts {
		if why := s.Cases[i%len(s.Cases)].Check(v); why != "" {
			t.Errorf("concurrent call %d: %s", i, why)
		}
	}
	m.Close(context.Background())
	if _, err := m.Call(context.Background(), s.Cases[0].Request); !errors.Is(err, host.ErrClosed) {
		t.Fatalf("call after Close: %v, want ErrClosed", err)
	}
}
