package host_test

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/dist"
	"github.com/edgetrack/edgetrack/wasm/guest"
	"github.com/edgetrack/edgetrack/wasm/host"
	"github.com/edgetrack/edgetrack/wasm/rules/hamustro"
	"github.com/edgetrack/edgetrack/wasm/rules/hamustro/hamustrotest"
)

//go:embed testdata/misbehave.wasm
var misbehaveWasm []byte

//go:embed testdata/hamustroguest.wasm
var hamustroGuestWasm []byte

func newRuntime(t testing.TB, opts host.Options) *host.Runtime {
	t.Helper()
	rt, err := host.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
	return rt
}

func load(t testing.TB, rt *host.Runtime, name string, wasm []byte, cfg *abi.Config) *host.Module {
	t.Helper()
	m, err := rt.Load(context.Background(), name, wasm, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

func hamustroWasm(t testing.TB) []byte {
	b, ok := dist.Rule("hamustro")
	if !ok {
		t.Fatal("no built-in hamustro rule")
	}
	return b
}

// TestHamustroWasmMatchesNative runs every vector through the committed .wasm
// and through the same logic compiled natively: verdicts must be identical.
func TestHamustroWasmMatchesNative(t *testing.T) {
	rt := newRuntime(t, host.Options{CacheDir: t.TempDir()})
	for _, v := range hamustrotest.Vectors() {
		t.Run(v.Name, func(t *testing.T) {
			m := load(t, rt, "hamustro", hamustroWasm(t), v.Config)
			got, err := m.Call(context.Background(), v.Request)
			if err != nil {
				t.Fatal(err)
			}
			if diff := hamustrotest.Diff(v, got); diff != "" {
				t.Fatal("wasm: " + diff)
			}
			r, err := hamustro.New(v.Config, guest.Native{})
			if err != nil {
				t.Fatal(err)
			}
			native := r.Handle(v.Request)
			if !reflect.DeepEqual(normalize(native), normalize(got)) {
				t.Fatalf("wasm and native differ:\nwasm   %+v\nnative %+v", got, native)
			}
		})
	}
}

// normalize maps empty slices to nil: the codec does not tell them apart.
func normalize(v abi.Verdict) abi.Verdict {
	if len(v.Events) == 0 {
		v.Events = nil
	}
	for i := range v.Events {
		if len(v.Events[i].Data) == 0 {
			v.Events[i].Data = nil
		}
	}
	if len(v.Body) == 0 {
		v.Body = nil
	}
	return v
}

func TestConfigRefused(t *testing.T) {
	rt := newRuntime(t, host.Options{})
	_, err := rt.Load(context.Background(), "hamustro", hamustroWasm(t), &abi.Config{})
	if !errors.Is(err, host.ErrConfig) || !strings.Contains(err.Error(), "no secrets") {
		t.Fatalf("err = %v, want ErrConfig naming the missing secrets", err)
	}
}

func TestInvalidModules(t *testing.T) {
	rt := newRuntime(t, host.Options{})
	for name, wasm := range map[string][]byte{
		"not wasm":     []byte("hello"),
		"empty module": {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00},
	} {
		_, err := rt.Load(context.Background(), name, wasm, hamustrotest.Config())
		if !errors.Is(err, host.ErrInvalidModule) {
			t.Errorf("%s: err = %v, want ErrInvalidModule", name, err)
		}
	}
	_, err := rt.Load(context.Background(), "empty", []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}, hamustrotest.Config())
	for _, want := range []string{"does not export edgetrack_handle", "does not export its memory"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to say %q", err, want)
		}
	}
}

func TestDeadlineStopsLoop(t *testing.T) {
	rt := newRuntime(t, host.Options{CallTimeout: 50 * time.Millisecond})
	m := load(t, rt, "misbehave", misbehaveWasm, &abi.Config{})
	if _, err := m.Call(context.Background(), &abi.Request{Path: "/loop"}); !errors.Is(err, host.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if v, err := m.Call(context.Background(), &abi.Request{Path: "/ok"}); err != nil || v.Status != 200 {
		t.Fatalf("after the loop: %v %+v", err, v)
	}
}

func TestMemoryCapStopsGrowth(t *testing.T) {
	// A generous deadline, so that the cap and not the clock stops the guest.
	rt := newRuntime(t, host.Options{CallTimeout: time.Minute, MemoryLimit: 4 << 20})
	m := load(t, rt, "misbehave", misbehaveWasm, &abi.Config{})
	_, err := m.Call(context.Background(), &abi.Request{Path: "/grow"})
	if !errors.Is(err, host.ErrTrap) {
		t.Fatalf("err = %v, want ErrTrap", err)
	}
	if v, err := m.Call(context.Background(), &abi.Request{Path: "/ok"}); err != nil || v.Status != 200 {
		t.Fatalf("after the growth: %v %+v", err, v)
	}
}

func TestPanicTraps(t *testing.T) {
	rt := newRuntime(t, host.Options{})
	m := load(t, rt, "misbehave", misbehaveWasm, &abi.Config{})
	if _, err := m.Call(context.Background(), &abi.Request{Path: "/panic"}); !errors.Is(err, host.ErrTrap) {
		t.Fatalf("err = %v, want ErrTrap", err)
	}
}

// TestMisbehavingGuestsAreContained runs guests that loop forever, grow
// memory without bound and panic, concurrently with well-behaved requests
// to the same module: every bad call fails (trap or timeout), every good one
// succeeds.
func TestMisbehavingGuestsAreContained(t *testing.T) {
	rt := newRuntime(t, host.Options{CallTimeout: 100 * time.Millisecond, MemoryLimit: 4 << 20, PoolSize: 4})
	m := load(t, rt, "misbehave", misbehaveWasm, &abi.Config{})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				path := "/ok"
				if g < 2 && i%5 == 0 {
					path = [...]string{"/loop", "/grow", "/panic"}[i%3]
				}
				v, err := m.Call(ctx, &abi.Request{Path: path})
				if path != "/ok" {
					if !errors.Is(err, host.ErrTrap) && !errors.Is(err, host.ErrTimeout) {
						errs <- fmt.Errorf("%s: err = %v, want a trap or timeout", path, err)
					}
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("/ok: %v", err)
				} else if v.Status != 200 || len(v.Events) != 1 || v.Events[0].ID != "ok:/ok" {
					errs <- fmt.Errorf("/ok: verdict %+v", v)
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestPoolBusy(t *testing.T) {
	rt := newRuntime(t, host.Options{CallTimeout: 5 * time.Second, PoolSize: 1})
	m := load(t, rt, "misbehave", misbehaveWasm, &abi.Config{})
	loopCtx, stopLoop := context.WithCancel(context.Background())
	loopDone := make(chan error, 1)
	go func() {
		_, err := m.Call(loopCtx, &abi.Request{Path: "/loop"})
		loopDone <- err
	}()
	// Until the looping call holds the only instance, a call may still get
	// it; once it does, every other call is busy. The loop ends at the
	// latest at its deadline, so this cannot wait forever.
	busy := false
	for !busy {
		select {
		case err := <-loopDone:
			t.Fatalf("the looping call ended (%v) before another call found the pool busy", err)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		_, err := m.Call(ctx, &abi.Request{Path: "/ok"})
		cancel()
		switch {
		case errors.Is(err, host.ErrBusy):
			busy = true
		case err != nil:
			t.Fatalf("call while the pool is held: %v, want ErrBusy or success", err)
		}
	}
	stopLoop()
	if err := <-loopDone; !errors.Is(err, host.ErrTimeout) && !errors.Is(err, host.ErrTrap) {
		t.Fatalf("the stopped loop returned %v, want it interrupted", err)
	}
	// The interrupted instance was discarded; the pool makes a new one.
	if v, err := m.Call(context.Background(), &abi.Request{Path: "/ok"}); err != nil || v.Status == 0 {
		t.Fatalf("after the loop: %+v, %v", v, err)
	}
}

func TestCloseDrains(t *testing.T) {
	rt := newRuntime(t, host.Options{})
	m, err := rt.Load(context.Background(), "hamustro", hamustroWasm(t), hamustrotest.Config())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Call(context.Background(), &abi.Request{}); !errors.Is(err, host.ErrClosed) {
		t.Fatalf("call after close: %v", err)
	}
	// The same content loads again after its last user closed.
	load(t, rt, "hamustro", hamustroWasm(t), hamustrotest.Config())
}

func TestLargeRequestGrowsInput(t *testing.T) {
	rt := newRuntime(t, host.Options{CallTimeout: time.Minute})
	m := load(t, rt, "hamustro", hamustroWasm(t), hamustrotest.Config())
	c := hamustrotest.Collection(5000) // well over the initial 64 KiB buffer
	body := mustMarshal(t, c)
	v, err := m.Call(context.Background(), hamustrotest.SignedRequest(body, time.Unix(1700000000, 0)))
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != 200 || len(v.Events) != 5000 {
		t.Fatalf("status %d, %d events", v.Status, len(v.Events))
	}
}
