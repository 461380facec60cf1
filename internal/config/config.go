package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"
)

// Config is the whole edgetrack configuration. The edge and aggregator
// subcommands read only their own section (and Log); dev reads all of it.
//
// Every field has a yaml tag; the tags define the setting paths, the YAML
// keys, and the environment variable names (see [Paths] and [EnvName]).
type Config struct {
	Log        Log        `yaml:"log"`
	Edge       Edge       `yaml:"edge"`
	Aggregator Aggregator `yaml:"aggregator"`
}

// Log configures the process logger.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn or error
	Format string `yaml:"format"` // text or json
}

// Edge configures an edge server: it accepts tracking events from apps and
// browsers, spools them, runs rules on them and forwards batches to the
// aggregator.
type Edge struct {
	// ID is written into forwarded batches; empty means the host name.
	ID string `yaml:"id"`
	// Listen is the public listener (apps and browsers).
	Listen string `yaml:"listen"`
	// TLS makes the public listener HTTPS.
	TLS TLS `yaml:"tls"`
	// AdminListen serves metrics and the state-changing endpoints; keep it
	// private.
	AdminListen string `yaml:"admin_listen"`
	// AdminTLS makes the admin listener HTTPS.
	AdminTLS TLS `yaml:"admin_tls"`
	// DataDir holds the spool and the compiled-rule cache.
	DataDir string `yaml:"data_dir"`
	// AggregatorURL is where batches are sent (and rules pulled from).
	AggregatorURL string `yaml:"aggregator_url"`
	// AggregatorCAFile, when set, is the only certificate authority the
	// edge trusts for an https:// aggregator_url (PEM); empty means the
	// system's roots.
	AggregatorCAFile string `yaml:"aggregator_ca_file"`
	// Token is presented to the aggregator; it must be one of
	// aggregator.tokens.edge there.
	Token string `yaml:"token"`
	// AdminTokens are bearer tokens accepted on the admin listener (dead
	// letters, rules); empty disables the admin endpoints that need one.
	AdminTokens []string `yaml:"admin_tokens"`

	MaxBodyBytes    ByteSize `yaml:"max_body_bytes"`   // larger bodies get 413
	MaxHeaderBytes  ByteSize `yaml:"max_header_bytes"` // larger headers get 431
	ReadTimeout     Duration `yaml:"read_timeout"`
	WriteTimeout    Duration `yaml:"write_timeout"`
	IdleTimeout     Duration `yaml:"idle_timeout"`
	ShutdownTimeout Duration `yaml:"shutdown_timeout"` // bound on draining at SIGTERM

	// TrustedProxies lists peers (IP addresses or CIDR prefixes) whose
	// X-Forwarded-For header is believed. See [Edge.TrustedPrefixes].
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Limits protect the edge from abuse: token buckets per client address
	// and route, and a cap on requests handled at once.
	Limits Limits `yaml:"limits"`

	Spool    Spool    `yaml:"spool"`
	Rules    Rules    `yaml:"rules"`
	Hamustro Hamustro `yaml:"hamustro"`
	Eye      Eye      `yaml:"eye"`
	// CookieSync configures the cookie-sync pixels (/cookiesync/*, /cs/*).
	CookieSync CookieSync `yaml:"cookiesync"`
	Forward    Forward    `yaml:"forward"`
}

// TLS is a listener's certificate. With both files set the listener speaks
// HTTPS only; with both empty, plain HTTP. The files are read again on
// SIGHUP (a renewed certificate), keeping the old one if they do not load.
type TLS struct {
	// CertFile is the PEM certificate chain, the server's certificate first.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of the certificate.
	KeyFile string `yaml:"key_file"`
}

// Enabled reports whether the listener speaks TLS.
func (t TLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// CookieSync configures partner cookie sync, decided by the cookiesync rule.
type CookieSync struct {
	// Partners, one per entry: name|sync_url|done_url|allowed hosts. The
	// URLs are templates with {uid} (our id) and {pi} (the partner's id);
	// allowed hosts are separated by commas or spaces (in the environment,
	// where commas separate entries, use spaces). Empty disables cookie sync.
	Partners []string `yaml:"partners"`
	// GDPRDefault is what a request without a gdpr parameter means:
	// "applies" (a consent string is needed) or "not_applies". Required
	// when partners are configured.
	GDPRDefault string `yaml:"gdpr_default"`
	// VendorID is our IAB TCF vendor id, needed to read consent strings.
	VendorID int `yaml:"vendor_id"`
	// CookieMaxAge is the uid cookie's lifetime.
	CookieMaxAge Duration `yaml:"cookie_max_age"`
	// CookieDomain is the uid cookie's Domain; empty = this host only.
	CookieDomain string `yaml:"cookie_domain"`
	// AllowHTTP allows http:// partner URLs (https only otherwise).
	AllowHTTP bool `yaml:"allow_http"`
	// MaxIDBytes is the longest partner or user id accepted.
	MaxIDBytes int `yaml:"max_id_bytes"`
}

// Eye configures the JSON interaction-event endpoint (POST /events), whose
// validation runs in the eye rule.
type Eye struct {
	// AllowedOrigins are the browser origins (scheme://host[:port]) that may
	// post events; "*" allows any.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// MaxClockSkew is how far in the future an event's timestamp may lie.
	MaxClockSkew Duration `yaml:"max_clock_skew"`
	// MaxEvents is the most events in one batch (413 above).
	MaxEvents int `yaml:"max_events"`
	// MaxEventBytes is the largest single event's JSON (413 above).
	MaxEventBytes ByteSize `yaml:"max_event_bytes"`
	// MaxDepth is the deepest JSON nesting accepted (400 above).
	MaxDepth int `yaml:"max_depth"`
	// MaxKeys is the most keys of one JSON object anywhere in a body (413
	// above): checked while the body is first read, so a body of many keys
	// costs the rule no parsing.
	MaxKeys int `yaml:"max_keys"`
}

// Spool bounds the edge's on-disk queue. When either bound is hit the edge
// answers 503 rather than accept events it might lose.
type Spool struct {
	QuotaBytes   ByteSize `yaml:"quota_bytes"`    // spool size above which the edge answers 503
	MinFreeBytes ByteSize `yaml:"min_free_bytes"` // 503 when the disk has less free space; 0 = off
}

// Limits configure the edge's abuse protection. The client of a request is
// its peer address, or with edge.trusted_proxies the address
// X-Forwarded-For names (see [Edge.TrustedPrefixes]); IPv6 clients are
// counted by /64.
type Limits struct {
	// MaxInFlight is how many requests to the rule routes the edge handles
	// at once (running a rule or waiting for the spool); a request beyond it
	// gets 503 with Retry-After at once instead of queueing. 0 means 32 ×
	// edge.rules.pool_size (see [Limits.MaxInFlightFor]).
	MaxInFlight int `yaml:"max_in_flight"`
	// MaxClients bounds the client addresses each limited route remembers
	// (twice this at most, counting the previous generation); beyond it the
	// least recently seen are forgotten and start again with a full bucket.
	MaxClients int `yaml:"max_clients"`

	// Per-client token buckets, one setting per route.
	Hamustro       RouteLimit `yaml:"hamustro"`        // POST /api/v1/track
	Eye            RouteLimit `yaml:"eye"`             // POST /events
	CookieSyncInit RouteLimit `yaml:"cookiesync_init"` // /cookiesync/i, /cs/i
	CookieSyncSync RouteLimit `yaml:"cookiesync_sync"` // /cookiesync/sync, /cs/s
	CookieSyncDone RouteLimit `yaml:"cookiesync_done"` // /cookiesync/done, /cs/d
}

// RouteLimit is one route's token bucket per client: Rate tokens refill
// per unit of time up to Burst, and each request takes one; a request that
// finds none gets 429 with Retry-After.
type RouteLimit struct {
	// Rate is the sustained request rate per client, e.g. "20/s"; 0 = no
	// limit on this route.
	Rate Rate `yaml:"rate"`
	// Burst is the bucket's size: requests a client may send at once
	// after being idle. Required (at least 1) when Rate is set.
	Burst int `yaml:"burst"`
}

// Enabled reports whether the route is limited.
func (r RouteLimit) Enabled() bool { return r.Rate > 0 }

// MaxInFlightFor returns edge.limits.max_in_flight, or 256 × poolSize when
// it is 0. The caller passes edge.rules.pool_size resolved
// ([Rules.PoolSizeFor]).
//
// Why 256 × the pool: a request holds a rule instance only while its rule
// runs (tens of microseconds), then waits for the spool's shared fsync, so
// most requests in flight are waiting for a sync that many of them share,
// and cost memory (their body) rather than CPU. The cap sheds a flood
// before the queue in front of the rule pool grows without bound; it must
// not shed the connections one edge is meant to serve (BenchmarkShippedEdge
// runs 256 on one core; 32 × the pool shed there). fasthttp reads a request
// whole before the handler runs, so slow clients never hold a slot.
func (l *Limits) MaxInFlightFor(poolSize int) int {
	if l.MaxInFlight > 0 {
		return l.MaxInFlight
	}
	return 256 * max(poolSize, 1)
}

// Routes returns the per-route limits by the name the edge's metrics use
// (edgetrack_rate_limited_total's limit label): the YAML key of each.
func (l *Limits) Routes() map[string]RouteLimit {
	return map[string]RouteLimit{
		"hamustro":        l.Hamustro,
		"eye":             l.Eye,
		"cookiesync_init": l.CookieSyncInit,
		"cookiesync_sync": l.CookieSyncSync,
		"cookiesync_done": l.CookieSyncDone,
	}
}

// Rules configures the wasm rule runtime.
type Rules struct {
	// PoolSize is the number of wasm instances per rule; 0 means
	// 2 × GOMAXPROCS (see [Rules.PoolSizeFor]).
	PoolSize int `yaml:"pool_size"`
	// CallTimeout is the per-call deadline for a rule.
	CallTimeout Duration `yaml:"call_timeout"`
	// MemoryLimit caps an instance's linear memory; a multiple of 64KiB
	// (the wasm page size), at most 4GiB.
	MemoryLimit ByteSize `yaml:"memory_limit"`
	// CacheDir is the compiled-module cache; empty means
	// <edge.data_dir>/wasm-cache (see [Edge.RulesCacheDir]).
	CacheDir string `yaml:"cache_dir"`
	// Pull makes the edge follow the aggregator's active rule versions.
	Pull bool `yaml:"pull"`
	// PollWait is how long one long-poll of the rule manifest waits for a
	// change; a new version reaches the edge within about this after
	// activation at worst, usually at once.
	PollWait Duration `yaml:"poll_wait"`
}

// Hamustro configures the Hamustro-compatible ingest endpoint.
type Hamustro struct {
	// Secrets are the shared secrets accepted for X-Hamustro-Signature;
	// list several while rotating.
	Secrets []string `yaml:"secrets"`
	// MaxClockSkew rejects X-Hamustro-Time further than this from the edge
	// clock; 0 turns the check off.
	MaxClockSkew Duration `yaml:"max_clock_skew"`
	// MaskIP zeroes the last octet of IPv4 client addresses.
	MaskIP bool `yaml:"mask_ip"`
}

// Forward configures batching and retries towards the aggregator.
type Forward struct {
	BatchMaxEvents int      `yaml:"batch_max_events"`
	BatchMaxBytes  ByteSize `yaml:"batch_max_bytes"`
	BatchMaxAge    Duration `yaml:"batch_max_age"` // a partial batch is sent after this
	RequestTimeout Duration `yaml:"request_timeout"`
	BackoffMin     Duration `yaml:"backoff_min"`
	BackoffMax     Duration `yaml:"backoff_max"`
}

// Aggregator configures the central aggregator.
type Aggregator struct {
	// Listen serves ingest (edges) and the query API (analysts).
	Listen string `yaml:"listen"`
	// TLS makes the public listener HTTPS.
	TLS TLS `yaml:"tls"`
	// AdminListen serves metrics, the rule registry and the dead letters.
	AdminListen string `yaml:"admin_listen"`
	// AdminTLS makes the admin listener HTTPS.
	AdminTLS TLS    `yaml:"admin_tls"`
	DataDir  string `yaml:"data_dir"`
	Tokens   Tokens `yaml:"tokens"`
	// MaxBatchBytes is the decompressed size limit of one ingest batch.
	MaxBatchBytes ByteSize `yaml:"max_batch_bytes"`
	Query         Query    `yaml:"query"`
	Store         Store    `yaml:"store"`
	Erasure       Erasure  `yaml:"erasure"`
	// Retention removes events older than their category's retention.
	Retention Retention `yaml:"retention"`
}

// Erasure configures erasure requests (DELETE /v1/subjects).
type Erasure struct {
	// TombstoneRetention is how long the ids of erased events are kept for
	// sync clients to delete them from their targets (GET
	// /v1/export/erasures). A sync client that falls further behind is told
	// to rebuild its target.
	TombstoneRetention Duration `yaml:"tombstone_retention"`
}

// Retention says how long the aggregator keeps events, by category, judged
// by event time (client_time, else received_at). A pass removes the
// expired ones every Interval, with their index entries; the counts of
// /stats are decremented with them, so they always count what is stored.
type Retention struct {
	// Default applies to every category not in Categories, and to events
	// without a category; 0 keeps them forever.
	Default Duration `yaml:"default"`
	// Categories overrides Default per category; 0 keeps that category
	// forever.
	Categories CategoryDurations `yaml:"categories"`
	// Interval is the time between two passes (the first runs at start).
	Interval Duration `yaml:"interval"`
}

// Enabled reports whether any event can expire.
func (r *Retention) Enabled() bool {
	if r.Default > 0 {
		return true
	}
	for _, d := range r.Categories {
		if d > 0 {
			return true
		}
	}
	return false
}

// Store configures the event store.
type Store struct {
	// Backend is where events are stored: "pebble" (embedded, in
	// data_dir) or "clickhouse" (the database ClickHouse.DSN names, which
	// then holds the rule registry too).
	Backend string `yaml:"backend"`
	// CacheSize is the embedded store's block cache (backend pebble).
	CacheSize  ByteSize        `yaml:"cache_size"`
	ClickHouse StoreClickHouse `yaml:"clickhouse"`
}

// Store backends.
const (
	BackendPebble     = "pebble"
	BackendClickHouse = "clickhouse"
)

// StoreClickHouse configures the ClickHouse backend.
type StoreClickHouse struct {
	// DSN is clickhouse://[user[:password]@]host:port/database, the
	// native protocol (port 9000); the database is created when missing.
	DSN string `yaml:"dsn"`
	// Cluster names a cluster of the server's remote_servers; the tables
	// are then created on it, replicated, and read through Distributed
	// tables. "" keeps them on the DSN's server.
	Cluster string `yaml:"cluster"`
	// AckReplicas is, with a Cluster, how many servers of its shard hold
	// an event before the aggregator acknowledges it.
	AckReplicas int `yaml:"ack_replicas"`
	// WriterTimeout is how long the export feed of every aggregator on the
	// database waits for one that stopped without closing its store
	// (killed, or cut off from the server) before it passes the events
	// stored after that aggregator's last mark.
	WriterTimeout Duration `yaml:"writer_timeout"`
}

// Tokens are the bearer tokens the aggregator accepts, by kind. A token has
// exactly one kind: it may not appear in two lists.
type Tokens struct {
	Query []string `yaml:"query"` // query API
	Admin []string `yaml:"admin"` // admin endpoints
	Edge  []string `yaml:"edge"`  // edges at ingest
}

// Query configures the query API.
type Query struct {
	MaxPageSize int `yaml:"max_page_size"`
}

// Default returns the built-in configuration, the bottom layer under the
// YAML file and the environment. It is not valid on its own: secrets and
// tokens have no defaults. Lists are empty, not nil.
func Default() *Config {
	return &Config{
		Log: Log{Level: "info", Format: "text"},
		Edge: Edge{
			ID:              "",
			Listen:          ":8080",
			AdminListen:     "127.0.0.1:8081",
			DataDir:         "data/edge",
			AggregatorURL:   "http://127.0.0.1:9090",
			Token:           "",
			AdminTokens:     []string{},
			MaxBodyBytes:    1 * MiB,
			MaxHeaderBytes:  8 * KiB,
			ReadTimeout:     Duration(10 * time.Second),
			WriteTimeout:    Duration(10 * time.Second),
			IdleTimeout:     Duration(60 * time.Second),
			ShutdownTimeout: Duration(15 * time.Second),
			TrustedProxies:  []string{},
			Limits: Limits{
				MaxInFlight: 0,
				MaxClients:  50000,
				// Off: see edgetrack.example.yaml for why, and values to
				// start from.
			},
			Spool: Spool{
				QuotaBytes:   1 * GiB,
				MinFreeBytes: 64 * MiB,
			},
			Rules: Rules{
				PoolSize:    0,
				CallTimeout: Duration(500 * time.Millisecond),
				MemoryLimit: 16 * MiB,
				CacheDir:    "",
				Pull:        true,
				PollWait:    Duration(30 * time.Second),
			},
			Hamustro: Hamustro{
				Secrets:      []string{},
				MaxClockSkew: 0,
				MaskIP:       false,
			},
			CookieSync: CookieSync{
				Partners:     []string{},
				GDPRDefault:  "",
				VendorID:     0,
				CookieMaxAge: Duration(365 * 24 * time.Hour),
				CookieDomain: "",
				AllowHTTP:    false,
				MaxIDBytes:   128,
			},
			Eye: Eye{
				AllowedOrigins: []string{"*"},
				MaxClockSkew:   Duration(5 * time.Minute),
				MaxEvents:      500,
				MaxEventBytes:  64 * KiB,
				MaxDepth:       32,
				MaxKeys:        256,
			},
			Forward: Forward{
				BatchMaxEvents: 10000,
				BatchMaxBytes:  4 * MiB,
				BatchMaxAge:    Duration(200 * time.Millisecond),
				RequestTimeout: Duration(10 * time.Second),
				BackoffMin:     Duration(100 * time.Millisecond),
				BackoffMax:     Duration(30 * time.Second),
			},
		},
		Aggregator: Aggregator{
			Listen:      ":9090",
			AdminListen: "127.0.0.1:9091",
			DataDir:     "data/aggregator",
			Tokens: Tokens{
				Query: []string{},
				Admin: []string{},
				Edge:  []string{},
			},
			MaxBatchBytes: 64 * MiB,
			Query:         Query{MaxPageSize: 1000},
			Store:         Store{Backend: BackendPebble, CacheSize: 256 * MiB, ClickHouse: StoreClickHouse{AckReplicas: 1, WriterTimeout: Duration(30 * time.Second)}},
			Erasure:       Erasure{TombstoneRetention: Duration(30 * 24 * time.Hour)},
			Retention: Retention{
				Default:    0,
				Categories: CategoryDurations{},
				Interval:   Duration(time.Hour),
			},
		},
	}
}

// AggregatorURLs returns the URLs of edge.aggregator_url, which holds one
// or several (aggregators on one store), separated by commas. Batches fail
// over from one to the next; rules are pulled from the first.
func (e *Edge) AggregatorURLs() []string {
	parts := strings.Split(e.AggregatorURL, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// RulesCacheDir returns edge.rules.cache_dir, or <edge.data_dir>/wasm-cache
// when it is empty.
func (e *Edge) RulesCacheDir() string {
	if e.Rules.CacheDir != "" {
		return e.Rules.CacheDir
	}
	return filepath.Join(e.DataDir, "wasm-cache")
}

// PoolSizeFor returns edge.rules.pool_size, or 2 × gomaxprocs when it is 0.
// The caller passes runtime.GOMAXPROCS(0).
func (r *Rules) PoolSizeFor(gomaxprocs int) int {
	if r.PoolSize > 0 {
		return r.PoolSize
	}
	return 2 * max(gomaxprocs, 1)
}

// TrustedPrefixes parses edge.trusted_proxies. A single address becomes a
// prefix of its full length (/32 or /128); prefixes are masked.
func (e *Edge) TrustedPrefixes() ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(e.TrustedProxies))
	for _, s := range e.TrustedProxies {
		p, err := parseProxy(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func parseProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
