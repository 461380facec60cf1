package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/edgetrack/edgetrack/internal/storable"
)

// storableMaxValueLen is the longest category a stored event can have.
const storableMaxValueLen = storable.MaxValueLen

// A FieldError is one problem with one setting. Validation returns them
// joined (errors.Join), one per line; use errors.As or the Unwrap() []error
// method of the joined error to inspect them.
type FieldError struct {
	Path    string // dotted setting path, e.g. "edge.listen"
	Problem string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Problem }

// problems collects FieldErrors so that validation reports all of them.
type problems []error

func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, &FieldError{Path: path, Problem: fmt.Sprintf(format, args...)})
}

// Validate checks the whole configuration, as run by dev: the log, edge and
// aggregator sections, and that the edge and aggregator fit together in one
// process (the edge's token is accepted, listeners and data directories do
// not collide, a full batch is accepted). It returns every problem at once.
func (c *Config) Validate() error {
	var p problems
	c.Log.validate(&p)
	c.Edge.validate(&p)
	c.Aggregator.validate(&p)
	c.validateTogether(&p)
	return errors.Join(p...)
}

// ValidateEdge checks what the edge subcommand uses: log and edge.
func (c *Config) ValidateEdge() error {
	var p problems
	c.Log.validate(&p)
	c.Edge.validate(&p)
	return errors.Join(p...)
}

// ValidateAggregator checks what the aggregator subcommand uses: log and
// aggregator.
func (c *Config) ValidateAggregator() error {
	var p problems
	c.Log.validate(&p)
	c.Aggregator.validate(&p)
	return errors.Join(p...)
}

func (l *Log) validate(p *problems) {
	oneOf(p, "log.level", l.Level, "debug", "info", "warn", "error")
	oneOf(p, "log.format", l.Format, "text", "json")
}

func (e *Edge) validate(p *problems) {
	if strings.IndexFunc(e.ID, isSpaceOrControl) >= 0 {
		p.add("edge.id", "%q contains whitespace or control characters", e.ID)
	}
	listenAddr(p, "edge.listen", e.Listen)
	listenAddr(p, "edge.admin_listen", e.AdminListen)
	if sameListener(e.Listen, e.AdminListen) {
		p.add("edge.admin_listen", "%q is the same address as edge.listen; admin endpoints need their own listener", e.AdminListen)
	}
	tlsFiles(p, "edge.tls", e.TLS)
	tlsFiles(p, "edge.admin_tls", e.AdminTLS)
	nonEmpty(p, "edge.data_dir", e.DataDir)
	urls := e.AggregatorURLs()
	for i, u := range urls {
		httpURL(p, "edge.aggregator_url", u)
		if e.AggregatorCAFile != "" && strings.HasPrefix(u, "http://") {
			p.add("edge.aggregator_ca_file", "is set, but edge.aggregator_url %q is plain http: use https:// or drop the CA file", u)
		}
		if slices.Contains(urls[:i], u) {
			p.add("edge.aggregator_url", "%q is listed twice", u)
		}
	}
	if e.Token == "" {
		p.add("edge.token", "is required: the aggregator accepts only batches with a token from aggregator.tokens.edge")
	} else if strings.IndexFunc(e.Token, isSpaceOrControl) >= 0 {
		p.add("edge.token", "contains whitespace or control characters")
	}
	secrets(p, "edge.admin_tokens", e.AdminTokens)
	if e.Token != "" && slices.Contains(e.AdminTokens, e.Token) {
		p.add("edge.admin_tokens", "contains edge.token; a token has one kind")
	}
	positiveSize(p, "edge.max_body_bytes", e.MaxBodyBytes)
	positiveSize(p, "edge.max_header_bytes", e.MaxHeaderBytes)
	positiveDuration(p, "edge.read_timeout", e.ReadTimeout)
	positiveDuration(p, "edge.write_timeout", e.WriteTimeout)
	positiveDuration(p, "edge.idle_timeout", e.IdleTimeout)
	positiveDuration(p, "edge.shutdown_timeout", e.ShutdownTimeout)
	for _, s := range e.TrustedProxies {
		if _, err := parseProxy(s); err != nil {
			p.add("edge.trusted_proxies", "%v", err)
		}
	}

	e.Limits.validate(p)

	positiveSize(p, "edge.spool.quota_bytes", e.Spool.QuotaBytes)
	if e.Spool.MinFreeBytes < 0 {
		p.add("edge.spool.min_free_bytes", "%d is negative (0 turns the check off)", e.Spool.MinFreeBytes)
	}

	if e.Rules.PoolSize < 0 {
		p.add("edge.rules.pool_size", "%d is negative (0 means 2 × GOMAXPROCS)", e.Rules.PoolSize)
	}
	positiveDuration(p, "edge.rules.call_timeout", e.Rules.CallTimeout)
	positiveDuration(p, "edge.rules.poll_wait", e.Rules.PollWait)
	const wasmPage = 64 * KiB
	switch m := e.Rules.MemoryLimit; {
	case m <= 0:
		p.add("edge.rules.memory_limit", "must be positive, got %s", m)
	case m%wasmPage != 0:
		p.add("edge.rules.memory_limit", "%s is not a multiple of 64KiB (the wasm page size)", m)
	case m > 4*GiB:
		p.add("edge.rules.memory_limit", "%s exceeds 4GiB (the 32-bit wasm address space)", m)
	}

	secrets(p, "edge.hamustro.secrets", e.Hamustro.Secrets)
	if len(e.Hamustro.Secrets) == 0 {
		p.add("edge.hamustro.secrets", "at least one secret is required to check X-Hamustro-Signature")
	}
	if e.Hamustro.MaxClockSkew < 0 {
		p.add("edge.hamustro.max_clock_skew", "%s is negative (0 turns the check off)", e.Hamustro.MaxClockSkew)
	}
	for _, o := range e.Eye.AllowedOrigins {
		if o != "*" && !validOrigin(o) {
			p.add("edge.eye.allowed_origins", "%q is not \"*\" or an origin like https://www.example.com", o)
		}
	}
	positiveDuration(p, "edge.eye.max_clock_skew", e.Eye.MaxClockSkew)
	cs := &e.CookieSync
	for i, ps := range cs.Partners {
		if strings.Count(ps, "|") != 3 {
			p.add("edge.cookiesync.partners", "entry %d is not name|sync_url|done_url|allowed hosts", i+1)
		}
	}
	if len(cs.Partners) > 0 && cs.GDPRDefault != "applies" && cs.GDPRDefault != "not_applies" {
		p.add("edge.cookiesync.gdpr_default", "%q must be \"applies\" or \"not_applies\": say what a request without a gdpr parameter means", cs.GDPRDefault)
	}
	if cs.VendorID < 0 || cs.VendorID > 65535 {
		p.add("edge.cookiesync.vendor_id", "%d is not a TCF vendor id (0-65535; 0 = none)", cs.VendorID)
	}
	if d := cs.CookieMaxAge.Duration(); d < time.Second || d > 400*24*time.Hour {
		p.add("edge.cookiesync.cookie_max_age", "%s is not between 1s and 400 days (the browsers' cap)", cs.CookieMaxAge)
	}
	if cs.MaxIDBytes < 1 || cs.MaxIDBytes > 1024 {
		p.add("edge.cookiesync.max_id_bytes", "%d is not between 1 and 1024", cs.MaxIDBytes)
	}
	if e.Eye.MaxEvents < 1 {
		p.add("edge.eye.max_events", "must be at least 1, got %d", e.Eye.MaxEvents)
	}
	positiveSize(p, "edge.eye.max_event_bytes", e.Eye.MaxEventBytes)
	if e.Eye.MaxKeys < 8 || e.Eye.MaxKeys > 65536 {
		p.add("edge.eye.max_keys", "%d is not between 8 and 65536", e.Eye.MaxKeys)
	}
	if e.Eye.MaxDepth < 4 || e.Eye.MaxDepth > 48 {
		p.add("edge.eye.max_depth", "%d is not between 4 and 48 (the batch array, the event, its data and a form object count; the rule's parser needs wasm stack per level)", e.Eye.MaxDepth)
	}

	f := &e.Forward
	if f.BatchMaxEvents < 1 {
		p.add("edge.forward.batch_max_events", "must be at least 1, got %d", f.BatchMaxEvents)
	}
	positiveSize(p, "edge.forward.batch_max_bytes", f.BatchMaxBytes)
	positiveDuration(p, "edge.forward.batch_max_age", f.BatchMaxAge)
	positiveDuration(p, "edge.forward.request_timeout", f.RequestTimeout)
	positiveDuration(p, "edge.forward.backoff_min", f.BackoffMin)
	positiveDuration(p, "edge.forward.backoff_max", f.BackoffMax)
	if f.BackoffMin > f.BackoffMax {
		p.add("edge.forward.backoff_min", "%s exceeds edge.forward.backoff_max (%s)", f.BackoffMin, f.BackoffMax)
	}
}

func (l *Limits) validate(p *problems) {
	if l.MaxInFlight < 0 {
		p.add("edge.limits.max_in_flight", "%d is negative (0 means 256 × edge.rules.pool_size)", l.MaxInFlight)
	}
	if l.MaxClients < 1 {
		p.add("edge.limits.max_clients", "must be at least 1, got %d", l.MaxClients)
	}
	routes := l.Routes()
	for _, name := range slices.Sorted(maps.Keys(routes)) {
		r, path := routes[name], "edge.limits."+name
		switch {
		case r.Rate < 0:
			p.add(path+".rate", "%s is negative (0 means no limit)", r.Rate)
		case r.Burst < 0:
			p.add(path+".burst", "%d is negative", r.Burst)
		case r.Rate > 0 && r.Burst < 1:
			p.add(path+".burst", "must be at least 1 when %s.rate is set (how many requests a client may send at once)", path)
		case r.Rate == 0 && r.Burst != 0:
			p.add(path+".burst", "is %d, but %s.rate is 0 (no limit); set a rate or remove the burst", r.Burst, path)
		}
	}
}

func (a *Aggregator) validate(p *problems) {
	listenAddr(p, "aggregator.listen", a.Listen)
	listenAddr(p, "aggregator.admin_listen", a.AdminListen)
	if sameListener(a.Listen, a.AdminListen) {
		p.add("aggregator.admin_listen", "%q is the same address as aggregator.listen; admin endpoints need their own listener", a.AdminListen)
	}
	tlsFiles(p, "aggregator.tls", a.TLS)
	tlsFiles(p, "aggregator.admin_tls", a.AdminTLS)
	nonEmpty(p, "aggregator.data_dir", a.DataDir)

	kinds := []struct {
		path   string
		tokens []string
	}{
		{"aggregator.tokens.query", a.Tokens.Query},
		{"aggregator.tokens.admin", a.Tokens.Admin},
		{"aggregator.tokens.edge", a.Tokens.Edge},
	}
	for i, k := range kinds {
		secrets(p, k.path, k.tokens)
		for n, tok := range k.tokens {
			for _, earlier := range kinds[:i] {
				if tok != "" && slices.Contains(earlier.tokens, tok) {
					// Never print the token itself.
					p.add(k.path, "entry %d is also in %s; a token has one kind", n+1, earlier.path)
				}
			}
		}
	}
	if len(a.Tokens.Edge) == 0 {
		p.add("aggregator.tokens.edge", "at least one token is required, or no edge can deliver")
	}
	if len(a.Tokens.Query) == 0 {
		p.add("aggregator.tokens.query", "at least one token is required, or nobody can query")
	}

	positiveSize(p, "aggregator.max_batch_bytes", a.MaxBatchBytes)
	positiveSize(p, "aggregator.store.cache_size", a.Store.CacheSize)
	positiveDuration(p, "aggregator.erasure.tombstone_retention", a.Erasure.TombstoneRetention)
	oneOf(p, "aggregator.store.backend", a.Store.Backend, BackendPebble, BackendClickHouse)
	if a.Store.Backend == BackendClickHouse {
		clickHouseDSN(p, "aggregator.store.clickhouse.dsn", a.Store.ClickHouse.DSN)
		a.Store.ClickHouse.validateCluster(p)
		if a.Store.ClickHouse.Cluster != "" && a.Retention.Enabled() {
			path := "aggregator.retention.categories"
			if a.Retention.Default > 0 {
				path = "aggregator.retention.default"
			}
			p.add(path, "retention is not carried out on a ClickHouse cluster yet (aggregator.store.clickhouse.cluster): keep events forever (0), or use one server")
		}
	}
	if a.Query.MaxPageSize < 1 {
		p.add("aggregator.query.max_page_size", "must be at least 1, got %d", a.Query.MaxPageSize)
	}
	a.Retention.validate(p)
}

// minRetention is the shortest retention accepted: less would remove
// events while their edges may still be re-sending them.
const minRetention = time.Minute

func (r *Retention) validate(p *problems) {
	retention := func(path, of string, d Duration) {
		switch {
		case d < 0:
			p.add(path, "%s%s is negative (0 keeps events forever)", of, d)
		case d > 0 && d.Duration() < minRetention:
			p.add(path, "%s%s is shorter than %s (0 keeps events forever)", of, d, minRetention)
		}
	}
	retention("aggregator.retention.default", "", r.Default)
	for _, c := range slices.Sorted(maps.Keys(r.Categories)) {
		switch {
		case c == "":
			p.add("aggregator.retention.categories", "an empty category name; events without a category follow aggregator.retention.default")
		case len(c) > storableMaxValueLen || strings.IndexByte(c, 0) >= 0 || !utf8.ValidString(c):
			p.add("aggregator.retention.categories", "%q cannot be the category of a stored event (at most %d bytes of UTF-8 without NUL)", c, storableMaxValueLen)
		default:
			retention("aggregator.retention.categories", fmt.Sprintf("category %q: ", c), r.Categories[c])
		}
	}
	if d := r.Interval.Duration(); d < time.Second {
		p.add("aggregator.retention.interval", "must be at least 1s, got %s", r.Interval)
	}
}

// validateTogether checks what matters when the edge and the aggregator run
// in one process against each other.
func (c *Config) validateTogether(p *problems) {
	e, a := &c.Edge, &c.Aggregator
	if e.Token != "" && len(a.Tokens.Edge) > 0 && !slices.Contains(a.Tokens.Edge, e.Token) {
		p.add("edge.token", "is not one of aggregator.tokens.edge; the aggregator would reject this edge")
	}
	listeners := []struct{ path, addr string }{
		{"edge.listen", e.Listen},
		{"edge.admin_listen", e.AdminListen},
		{"aggregator.listen", a.Listen},
		{"aggregator.admin_listen", a.AdminListen},
	}
	for i := 2; i < len(listeners); i++ { // edge-vs-edge and agg-vs-agg are checked per section
		for _, other := range listeners[:2] {
			if sameListener(listeners[i].addr, other.addr) {
				p.add(listeners[i].path, "%q collides with %s (%q)", listeners[i].addr, other.path, other.addr)
			}
		}
	}
	if nestedDirs(e.DataDir, a.DataDir) {
		p.add("aggregator.data_dir", "%q overlaps edge.data_dir (%q); they need separate directories", a.DataDir, e.DataDir)
	}
	if e.Forward.BatchMaxBytes > a.MaxBatchBytes {
		p.add("edge.forward.batch_max_bytes", "%s exceeds aggregator.max_batch_bytes (%s); the aggregator would reject full batches",
			e.Forward.BatchMaxBytes, a.MaxBatchBytes)
	}
}

// clickHouseDSN checks the shape of a ClickHouse DSN: the native protocol,
// a host and port, and a database name the store can write into its
// statements. The client's own options are checked when the store opens.
func clickHouseDSN(p *problems, path, dsn string) {
	if dsn == "" {
		p.add(path, "is required with aggregator.store.backend clickhouse (clickhouse://host:9000/database)")
		return
	}
	u, err := url.Parse(dsn)
	if err != nil {
		p.add(path, "is not a URL: %v", err)
		return
	}
	if u.Scheme != "clickhouse" {
		p.add(path, "scheme %q: want clickhouse://host:9000/database (the native protocol)", u.Scheme)
		return
	}
	for _, h := range strings.Split(u.Host, ",") {
		if _, port, err := net.SplitHostPort(h); err != nil || port == "" {
			p.add(path, "host %q: want host:port (the native protocol's port, usually 9000)", h)
		}
	}
	if db := strings.Trim(u.Path, "/"); db != "" && !clickHouseDatabase.MatchString(db) {
		p.add(path, "database %q: want letters, digits and _, not starting with a digit", db)
	}
}

// clickHouseDatabase is a database or cluster name the store can write into
// its statements unquoted.
var clickHouseDatabase = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,99}$`)

// validateCluster checks the cluster settings of the ClickHouse backend,
// and its writer timeout.
// Whether the server knows the cluster, and whether its shards have
// ack_replicas replicas, is checked when the store opens.
func (c *StoreClickHouse) validateCluster(p *problems) {
	if c.Cluster != "" && !clickHouseDatabase.MatchString(c.Cluster) {
		p.add("aggregator.store.clickhouse.cluster", "%q: want letters, digits and _, not starting with a digit (a cluster of the server's remote_servers)", c.Cluster)
	}
	if c.WriterTimeout < Duration(5*time.Second) {
		p.add("aggregator.store.clickhouse.writer_timeout", "is %s, want at least 5s: an aggregator records its mark every second, and registers again when it has not for half of it", time.Duration(c.WriterTimeout))
	}
	switch {
	case c.AckReplicas < 1:
		p.add("aggregator.store.clickhouse.ack_replicas", "must be at least 1 (the server that takes the insert), got %d", c.AckReplicas)
	case c.AckReplicas > 1 && c.Cluster == "":
		p.add("aggregator.store.clickhouse.ack_replicas", "is %d, but aggregator.store.clickhouse.cluster is not set: one server has no replicas", c.AckReplicas)
	}
}

func oneOf(p *problems, path, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		p.add(path, "%q is not one of %s", v, strings.Join(allowed, ", "))
	}
}

func nonEmpty(p *problems, path, v string) {
	if v == "" {
		p.add(path, "must not be empty")
	}
}

func positiveSize(p *problems, path string, v ByteSize) {
	if v <= 0 {
		p.add(path, "must be positive, got %s", v)
	}
}

func positiveDuration(p *problems, path string, v Duration) {
	if v <= 0 {
		p.add(path, "must be positive, got %s", v)
	}
}

// listenAddr checks a host:port to listen on. The host may be empty (all
// interfaces), an IP address or a name; the port is a number, 0 meaning any.
func listenAddr(p *problems, path, v string) {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		p.add(path, "%q is not host:port", v)
		return
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		p.add(path, "%q is not host:port: port %q is not a number from 0 to 65535", v, port)
	}
	if strings.IndexFunc(host, isSpaceOrControl) >= 0 {
		p.add(path, "%q is not host:port: the host contains whitespace", v)
	}
}

// sameListener reports whether two valid listen addresses would bind the
// same port: same port, and the same host or either one all interfaces.
// Port 0 never collides.
func sameListener(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb || pa == "0" {
		return false
	}
	wildcard := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || wildcard(ha) || wildcard(hb)
}

func httpURL(p *problems, path, v string) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.add(path, "%q is not an absolute http(s) URL", v)
		return
	}
	if u.User != nil {
		p.add(path, "must not contain credentials; the edge authenticates with edge.token")
	}
}

// tlsFiles checks that a listener's certificate and key come together.
// Whether the files load is checked when the listener starts.
func tlsFiles(p *problems, path string, t TLS) {
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		p.add(path+".key_file", "is empty, but %s.cert_file is set: TLS needs both", path)
	case t.CertFile == "" && t.KeyFile != "":
		p.add(path+".cert_file", "is empty, but %s.key_file is set: TLS needs both", path)
	}
}

// secrets checks a list of secrets or tokens without ever printing one.
func secrets(p *problems, path string, list []string) {
	for i, s := range list {
		switch {
		case s == "":
			p.add(path, "entry %d is empty", i+1)
		case strings.IndexFunc(s, isSpaceOrControl) >= 0:
			p.add(path, "entry %d contains whitespace or control characters", i+1)
		case slices.Index(list, s) < i:
			p.add(path, "entry %d repeats entry %d", i+1, slices.Index(list, s)+1)
		}
	}
}

func isSpaceOrControl(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }

// nestedDirs reports whether a and b are the same directory or one contains
// the other. Paths that cannot be related lexically count as separate.
func nestedDirs(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	inside := func(base, target string) bool {
		rel, err := filepath.Rel(base, target)
		return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
	}
	return inside(a, b) || inside(b, a)
}

// validOrigin accepts scheme://host[:port] with an http(s) scheme and nothing
// after the host.
func validOrigin(o string) bool {
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.Path == "" && u.RawQuery == "" && u.Fragment == "" && u.User == nil
}
