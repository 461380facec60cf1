package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/proto/hamustropb"
)

const testSecret = "ultrasafesecret"

// fakeClock is an injected Config.Clock that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// testConfig is a complete Config whose triggers do not fire unless a test
// lowers QueueSize or moves the clock.
func testConfig(tb testing.TB, url string) Config {
	cfg := baseConfig(url)
	cfg.Dir = tb.TempDir()
	return cfg
}

// baseConfig is testConfig without a directory.
func baseConfig(url string) Config {
	return Config{
		CollectorURL:   url,
		SharedSecret:   testSecret,
		DeviceID:       "device-1",
		ClientID:       "client-1",
		SystemVersion:  "17.4",
		ProductVersion: "2.3.0",
		System:         "ios",
		ProductGitHash: "abc123",
		QueueSize:      1 << 20,
		HTTPClient:     &http.Client{Timeout: 30 * time.Second},
		Clock:          newFakeClock().Now,
	}
}

// newTracker opens a Tracker that is closed at cleanup.
func newTracker(tb testing.TB, cfg Config) *Tracker {
	tb.Helper()
	tr, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() {
		if err := tr.Close(); err != nil && !errors.Is(err, ErrClosed) {
			tb.Errorf("Close: %v", err)
		}
	})
	return tr
}

// trackN tracks n events named ev-1, ev-2, ... and fails on any error.
func trackN(tb testing.TB, tr *Tracker, n int) {
	tb.Helper()
	for i := 1; i <= n; i++ {
		if err := tr.TrackEvent(context.Background(), fmt.Sprintf("ev-%d", i), 7, `{"i":1}`, false); err != nil {
			tb.Fatalf("TrackEvent %d: %v", i, err)
		}
	}
}

// quiesce returns once the background sender has handled every trigger
// that TrackEvent calls which already returned could have fired: such a
// trigger is either sitting in the kick buffer, which the sender drains
// before answering, or already being handled, which the sender finishes
// before it reads the request.
func quiesce(tb testing.TB, tr *Tracker) {
	tb.Helper()
	reply := make(chan struct{})
	select {
	case tr.quiesce <- reply:
	case <-time.After(30 * time.Second):
		tb.Fatal("background sender did not take the quiesce request")
	}
	select {
	case <-reply:
	case <-time.After(30 * time.Second):
		tb.Fatal("background sender did not quiesce")
	}
}

// seq returns 1..n.
func seq(n int) []uint32 {
	out := make([]uint32, n)
	for i := range out {
		out[i] = uint32(i + 1)
	}
	return out
}

// wantAcceptedOnce checks that the collector accepted nrs 1..n of session,
// each exactly once, and nothing of other sessions.
func wantAcceptedOnce(tb testing.TB, c *collector, session string, n int) {
	tb.Helper()
	got := c.acceptedNrs()
	nrs := slices.Clone(got[session])
	slices.Sort(nrs)
	if !slices.Equal(nrs, seq(n)) {
		tb.Errorf("collector accepted nrs %v of session %s, want 1..%d once each", got[session], session, n)
	}
	for s, nrs := range got {
		if s != session {
			tb.Errorf("collector accepted nrs %v of unexpected session %s", nrs, s)
		}
	}
}

func payloadNrs(ps []*hamustropb.Payload) []uint32 {
	out := make([]uint32, len(ps))
	for i, p := range ps {
		out[i] = p.GetNr()
	}
	return out
}

func wantPending(tb testing.TB, tr *Tracker, n int) {
	tb.Helper()
	if got := tr.Stats().Pending; got != n {
		tb.Errorf("Stats().Pending = %d, want %d", got, n)
	}
	colls, err := tr.LoadCollections()
	if err != nil {
		tb.Fatalf("LoadCollections: %v", err)
	}
	stored := 0
	for _, c := range colls {
		stored += len(c.GetPayloads())
	}
	if stored != n {
		tb.Errorf("LoadCollections holds %d events, want %d", stored, n)
	}
}
