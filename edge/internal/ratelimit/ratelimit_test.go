package ratelimit

import (
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestBurstThenRetryAfter(t *testing.T) {
	p := New(Options{Rate: 0.5, Burst: 2, MaxClients: 100})
	a := addr("192.0.2.1")
	for i := range 2 {
		if ok, _ := p.Allow(a, t0); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := p.Allow(a, t0)
	if ok {
		t.Fatal("request beyond the burst allowed")
	}
	if wait != 2*time.Second { // one token at 0.5/s
		t.Fatalf("retry after %v, want 2s", wait)
	}
	if ok, wait := p.Allow(a, t0.Add(time.Second)); ok || wait != time.Second {
		t.Fatalf("after 1s: allowed %v, retry after %v; want refused, 1s", ok, wait)
	}
	if ok, _ := p.Allow(a, t0.Add(2*time.Second)); !ok {
		t.Fatal("refused after the bucket refilled one token")
	}
	if ok, _ := p.Allow(addr("192.0.2.2"), t0); !ok {
		t.Fatal("another client refused")
	}
}

func TestRetryAfterRoundsUp(t *testing.T) {
	p := New(Options{Rate: 3, Burst: 1, MaxClients: 100})
	a := addr("192.0.2.1")
	p.Allow(a, t0)
	if ok, wait := p.Allow(a, t0); ok || wait != time.Second {
		t.Fatalf("allowed %v, retry after %v; want refused, 1s (a third of a second rounded up)", ok, wait)
	}
	slow := New(Options{Rate: 1.0 / 90, Burst: 1, MaxClients: 100})
	slow.Allow(a, t0)
	if _, wait := slow.Allow(a, t0.Add(500*time.Millisecond)); wait != 90*time.Second {
		t.Fatalf("retry after %v, want 90s (89.5s rounded up)", wait)
	}
}

func TestKey(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::"},
		{"2001:db8:1:2::1", "2001:db8:1:2::"},
		{"fe80::1%eth0", "fe80::"},
	} {
		if got := Key(addr(c.in)); got != addr(c.want) {
			t.Errorf("Key(%s) = %s, want %s", c.in, got, c.want)
		}
	}
	p := New(Options{Rate: 1, Burst: 1, MaxClients: 100})
	p.Allow(addr("2001:db8:1:2::1"), t0)
	if ok, _ := p.Allow(addr("2001:db8:1:2::ffff"), t0); ok {
		t.Fatal("a second address of the same /64 got its own bucket")
	}
	if ok, _ := p.Allow(addr("2001:db8:1:3::1"), t0); !ok {
		t.Fatal("another /64 shares the bucket")
	}
}

// TestBoundedUnderFlood sends many more distinct clients than the table
// holds: it never remembers more than twice its bound, it counts those it
// forgot, and a client that keeps coming keeps its (empty) bucket.
func TestBoundedUnderFlood(t *testing.T) {
	const maxClients = 1000
	p := New(Options{Rate: 0.001, Burst: 1, MaxClients: maxClients})
	steady := addr("198.51.100.7")
	p.Allow(steady, t0)
	for i := range 100_000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		p.Allow(a, t0)
		if n := p.Clients(); n > 2*maxClients {
			t.Fatalf("after %d clients the table holds %d, more than 2 × %d", i+1, n, maxClients)
		}
		if i%100 == 0 {
			if ok, _ := p.Allow(steady, t0); ok {
				t.Fatalf("after %d other clients the steady client's empty bucket was forgotten", i+1)
			}
		}
	}
	if p.Forgotten() == 0 {
		t.Fatal("no client counted as forgotten")
	}
	t.Logf("%d clients remembered, %d forgotten, %d shards", p.Clients(), p.Forgotten(), len(p.shards))
}

// TestIdleClientsForgotten: a client not seen for two periods is dropped,
// and one seen within the last period is kept with its bucket.
func TestIdleClientsForgotten(t *testing.T) {
	p := New(Options{Rate: 0.01, Burst: 2, MaxClients: 100}) // one shard; refills in 200s
	if p.Period() != 200*time.Second {
		t.Fatalf("period %v, want 200s (burst / rate)", p.Period())
	}
	idle, busy := addr("192.0.2.1"), addr("192.0.2.2")
	p.Allow(idle, t0)
	for range 2 {
		p.Allow(busy, t0)
	}
	p.Allow(busy, t0.Add(250*time.Second)) // a new generation: busy moves on, idle stays behind
	if n := p.Clients(); n != 2 {
		t.Fatalf("%d clients remembered after one period, want 2", n)
	}
	p.Allow(busy, t0.Add(450*time.Second)) // and another: idle is dropped
	if n := p.Clients(); n != 1 {
		t.Fatalf("%d clients remembered, want 1 (the idle one forgotten)", n)
	}
	if p.Forgotten() != 0 {
		t.Fatalf("%d counted as forgotten at the bound; idle clients are not", p.Forgotten())
	}
	if got := New(Options{Rate: 100, Burst: 1, MaxClients: 1}).Period(); got != time.Minute {
		t.Fatalf("period %v for a limit that refills in 10ms, want the 1m minimum", got)
	}
}

// TestHammer takes tokens from one client's bucket from many goroutines at
// one instant: exactly the burst is allowed, whatever the interleaving.
// Meanwhile other goroutines take tokens of 64 other clients through the
// same shards (fewer than the table holds: at the bound the client could be
// forgotten and get a fresh bucket, which is TestBoundedUnderFlood's case).
func TestHammer(t *testing.T) {
	const burst = 50
	p := New(Options{Rate: 0.001, Burst: burst, MaxClients: 256})
	a := addr("203.0.113.9")
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 200 {
				if ok, _ := p.Allow(a, t0); ok {
					allowed.Add(1)
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := range 2000 {
				p.Allow(netip.AddrFrom4([4]byte{10, 0, byte(g), byte(i % 8)}), t0)
			}
		}()
	}
	wg.Wait()
	if n := allowed.Load(); n != burst {
		t.Fatalf("%d requests allowed, want exactly the burst of %d", n, burst)
	}
	if n := p.Clients(); n > 2*256 {
		t.Fatalf("%d clients remembered, bound is 2 × 256", n)
	}
}

func TestAllowAllocatesNothingForAKnownClient(t *testing.T) {
	p := New(Options{Rate: 1e9, Burst: 1 << 30, MaxClients: 100})
	a := addr("192.0.2.1")
	v6 := addr("2001:db8::1")
	p.Allow(a, t0)
	p.Allow(v6, t0)
	now := t0
	if n := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Microsecond)
		p.Allow(a, now)
		p.Allow(v6, now)
	}); n != 0 {
		t.Fatalf("Allow allocates %v times per run for known clients", n)
	}
}

func TestShardSize(t *testing.T) {
	if s := unsafe.Sizeof(shard{}); s != 64 {
		t.Fatalf("shard is %d bytes, want 64 (one cache line)", s)
	}
}

func BenchmarkAllowKnownClient(b *testing.B) {
	p := New(Options{Rate: 1e9, Burst: 1 << 30, MaxClients: 65536})
	b.RunParallel(func(pb *testing.PB) {
		a := addr("192.0.2.1")
		now := time.Now()
		for pb.Next() {
			p.Allow(a, now)
		}
	})
}

func BenchmarkAllowManyClients(b *testing.B) {
	p := New(Options{Rate: 1e9, Burst: 1 << 30, MaxClients: 65536})
	clients := make([]netip.Addr, 50_000)
	for i := range clients {
		clients[i] = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
	}
	now := time.Now()
	for _, c := range clients {
		p.Allow(c, now)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			p.Allow(clients[i%len(clients)], now)
			i += 7
		}
	})
}

// BenchmarkAllowFlood is every request from a new client: the table
// rotates at its bound.
func BenchmarkAllowFlood(b *testing.B) {
	p := New(Options{Rate: 1, Burst: 1, MaxClients: 65536})
	now := time.Now()
	i := uint32(0)
	for b.Loop() {
		i++
		p.Allow(netip.AddrFrom4([4]byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}), now)
	}
}

// BenchmarkTableMemory fills a table of the default bound (50,000) with
// many more distinct clients and reports the heap it holds per remembered
// client, and the most it holds: what edge.limits.max_clients costs.
func BenchmarkTableMemory(b *testing.B) {
	const maxClients = 50_000
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		p := New(Options{Rate: 1, Burst: 1, MaxClients: maxClients})
		for i := range 10 * maxClients {
			p.Allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), t0)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		held := float64(after.HeapAlloc) - float64(before.HeapAlloc)
		b.ReportMetric(held/float64(p.Clients()), "B/client")
		b.ReportMetric(held/(1<<20), "MiB-held")
		runtime.KeepAlive(p)
	}
}
