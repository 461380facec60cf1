// Package ratelimit keeps a token bucket (golang.org/x/time/rate) per client
// address for one route of the edge, in a table whose size is bounded
// however many distinct addresses arrive.
//
// Invariants, enforced by [PerClient]:
//
//  1. A client is an IPv4 address or an IPv6 /64 (one subscriber's usual
//     allocation: a client that owns a /64 cannot escape its bucket by
//     changing the low bits).
//  2. The table holds at most MaxClients clients seen in the current
//     generation plus at most MaxClients from the generation before; each
//     costs about [EntryBytes]. Memory never grows past that.
//  3. A generation ends when the current one is full or after [PerClient.Period],
//     the time a drained bucket takes to refill completely (at least a
//     minute). A client seen in the previous generation moves to the
//     current one with its bucket; one seen in neither is forgotten. A
//     client forgotten for being idle loses nothing: its bucket would be
//     full again by then. A client forgotten because the table filled up
//     (a flood of distinct addresses) starts again with a full bucket —
//     the bound is kept by being lenient to the least recently seen
//     clients, never by refusing new ones.
//  4. Looking up a known client allocates nothing; a new one allocates its
//     bucket.
package ratelimit

import (
	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// EntryBytes is about what one remembered client costs: its bucket (80
// bytes) and its slot in the table (key, pointer and the map's overhead).
const EntryBytes = 128

// maxShards splits the table so that concurrent requests rarely share a
// lock.
const maxShards = 64

// minPerShard keeps small tables in one shard, so that their bound is
// shared by all their clients rather than split into tiny parts.
const minPerShard = 64

// minPeriod is the shortest generation: a limit that refills in a second
// still remembers its clients for a minute.
const minPeriod = time.Minute

// Options configure a PerClient.
type Options struct {
	// Rate is the sustained requests per second allowed to one client.
	Rate float64
	// Burst is the bucket's size: how many requests a client may make at
	// once after being idle.
	Burst int
	// MaxClients bounds the clients remembered per generation (see the
	// package comment); at least 1.
	MaxClients int
}

// PerClient is one route's set of token buckets, one per client. It is safe
// for concurrent use.
type PerClient struct {
	limit  rate.Limit
	burst  int
	period time.Duration
	// perShard is MaxClients divided among the shards.
	perShard int
	shift    uint // 64 - log2(len(shards))
	shards   []shard

	forgotten atomic.Int64 // clients dropped because a generation filled up
}

type shard struct {
	mu sync.Mutex
	// cur and prev are the two generations. Their maps are swapped and
	// cleared rather than reallocated, so the memory of a full table is
	// kept and reused.
	cur, prev map[netip.Addr]*rate.Limiter
	started   time.Time // when cur began; zero until the first request
	_         [16]byte  // 64 bytes: shards on separate cache lines
}

// New returns the buckets for opts. Rate and Burst must be positive.
func New(opts Options) *PerClient {
	if opts.Rate <= 0 || opts.Burst < 1 {
		panic("ratelimit: Rate and Burst must be positive")
	}
	maxClients := max(opts.MaxClients, 1)
	n := 1 // shards: a power of two, each for at least minPerShard clients
	for n*2 <= maxShards && n*2*minPerShard <= maxClients {
		n *= 2
	}
	p := &PerClient{
		limit:    rate.Limit(opts.Rate),
		burst:    opts.Burst,
		period:   max(minPeriod, time.Duration(float64(opts.Burst)/opts.Rate*float64(time.Second))),
		perShard: maxClients / n,
		shift:    uint(64 - bits.TrailingZeros(uint(n))),
		shards:   make([]shard, n),
	}
	for i := range p.shards {
		p.shards[i].cur = map[netip.Addr]*rate.Limiter{}
		p.shards[i].prev = map[netip.Addr]*rate.Limiter{}
	}
	return p
}

// Rate returns the sustained requests per second per client.
func (p *PerClient) Rate() float64 { return float64(p.limit) }

// Burst returns the bucket size.
func (p *PerClient) Burst() int { return p.burst }

// Period returns how long a generation lasts at most.
func (p *PerClient) Period() time.Duration { return p.period }

// Allow takes a token from client's bucket at now. When there is none it
// returns false and how long until there is one (at least a second,
// rounded up to whole seconds: what Retry-After can say).
func (p *PerClient) Allow(client netip.Addr, now time.Time) (ok bool, retryAfter time.Duration) {
	key := Key(client)
	lim := p.bucket(key, now)
	if lim.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - lim.TokensAt(now)
	secs := math.Ceil(missing / float64(p.limit))
	if !(secs >= 1) { // also NaN
		secs = 1
	}
	return false, time.Duration(secs) * time.Second
}

// bucket finds or makes key's bucket.
func (p *PerClient) bucket(key netip.Addr, now time.Time) *rate.Limiter {
	sh := &p.shards[p.shardOf(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.started.IsZero() {
		sh.started = now
	} else if now.Sub(sh.started) >= p.period {
		sh.rotate(now)
		if now.Sub(sh.started) >= p.period { // idle for two periods: both are stale
			sh.rotate(now)
		}
	}
	if lim, ok := sh.cur[key]; ok {
		return lim
	}
	lim, ok := sh.prev[key]
	if ok {
		delete(sh.prev, key)
	} else {
		lim = rate.NewLimiter(p.limit, p.burst)
	}
	if len(sh.cur) >= p.perShard {
		p.forgotten.Add(int64(len(sh.prev)))
		sh.rotate(now)
	}
	sh.cur[key] = lim
	return lim
}

// rotate starts a new generation: prev is forgotten, cur becomes prev.
func (sh *shard) rotate(now time.Time) {
	clear(sh.prev)
	sh.prev, sh.cur = sh.cur, sh.prev
	sh.started = now
}

func (p *PerClient) shardOf(key netip.Addr) int {
	if len(p.shards) == 1 {
		return 0
	}
	a := key.As16()
	h := (binary.LittleEndian.Uint64(a[:8]) ^ binary.LittleEndian.Uint64(a[8:])) * 0x9e3779b97f4a7c15
	return int(h >> p.shift)
}

// Clients returns how many clients are remembered, in both generations.
func (p *PerClient) Clients() int {
	n := 0
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.Lock()
		n += len(sh.cur) + len(sh.prev)
		sh.mu.Unlock()
	}
	return n
}

// Forgotten returns how many clients were forgotten because the table was
// full (not counting those forgotten for being idle).
func (p *PerClient) Forgotten() int64 { return p.forgotten.Load() }

// Key returns the client a bucket belongs to: the IPv4 address (an
// IPv4-mapped IPv6 address counts as IPv4), or the IPv6 address's /64.
func Key(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if !a.Is6() {
		return a
	}
	b := a.As16()
	clear(b[8:])
	return netip.AddrFrom16(b)
}
