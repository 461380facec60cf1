package config

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// validConfig returns Default() completed with the secrets and tokens that
// have no defaults.
func validConfig() *Config {
	c := Default()
	c.Edge.Token = "edge-token-1"
	c.Edge.Hamustro.Secrets = []string{"hamustro-secret"}
	c.Aggregator.Tokens.Edge = []string{"edge-token-1"}
	c.Aggregator.Tokens.Query = []string{"query-token-1"}
	return c
}

// fieldErrors unpacks a validation error, checking that every part is a
// *FieldError about a real setting and that the text is one line per part.
func fieldErrors(t testing.TB, err error) []*FieldError {
	t.Helper()
	if err == nil {
		return nil
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %T is not a joined error", err)
	}
	var out []*FieldError
	for _, e := range joined.Unwrap() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("%v is not a *FieldError", e)
		}
		if !slices.Contains(Paths(), fe.Path) {
			t.Errorf("%q: path %q is not a setting", fe, fe.Path)
		}
		out = append(out, fe)
	}
	if n := len(strings.Split(err.Error(), "\n")); n != len(out) {
		t.Errorf("%d problems printed on %d lines:\n%v", len(out), n, err)
	}
	return out
}

func TestValidateValid(t *testing.T) {
	c := validConfig()
	for name, validate := range map[string]func() error{
		"Validate": c.Validate, "ValidateEdge": c.ValidateEdge, "ValidateAggregator": c.ValidateAggregator,
	} {
		if err := validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := validConfig()
	c.Log.Level = "verbose"
	c.Edge.Listen = "abc"
	c.Edge.AggregatorURL = "ftp://agg"
	c.Edge.ReadTimeout = 0
	c.Edge.TrustedProxies = []string{"10.0.0.0/8", "10.0.0.300"}
	c.Edge.Rules.MemoryLimit = 100 * KiB
	c.Edge.Hamustro.Secrets = []string{"ok", ""}
	c.Edge.Forward.BackoffMin = Duration(time.Minute)
	c.Aggregator.AdminListen = "127.0.0.1:99999"
	c.Aggregator.Tokens.Admin = []string{"query-token-1"}
	c.Aggregator.Query.MaxPageSize = 0

	err := c.Validate()
	wants := []string{
		`log.level: "verbose" is not one of debug, info, warn, error`,
		`edge.listen: "abc" is not host:port`,
		`edge.aggregator_url: "ftp://agg" is not an absolute http(s) URL`,
		`edge.read_timeout: must be positive, got 0s`,
		`edge.trusted_proxies: "10.0.0.300" is not an IP address or CIDR prefix`,
		`edge.rules.memory_limit: 100KiB is not a multiple of 64KiB`,
		`edge.hamustro.secrets: entry 2 is empty`,
		`edge.forward.backoff_min: 1m0s exceeds edge.forward.backoff_max (30s)`,
		`aggregator.admin_listen: "127.0.0.1:99999" is not host:port: port "99999" is not a number from 0 to 65535`,
		`aggregator.tokens.admin: entry 1 is also in aggregator.tokens.query; a token has one kind`,
		`aggregator.query.max_page_size: must be at least 1, got 0`,
	}
	wantErr(t, err, wants...)
	if got := fieldErrors(t, err); len(got) != len(wants) {
		t.Errorf("got %d problems, want %d:\n%v", len(got), len(wants), err)
	}
	if strings.Contains(err.Error(), "query-token-1") {
		t.Errorf("a token was printed:\n%v", err)
	}
}

func TestValidateDefaultsNeedSecrets(t *testing.T) {
	err := Default().Validate()
	wantErr(t, err,
		"edge.token: is required",
		"edge.hamustro.secrets: at least one secret is required",
		"aggregator.tokens.edge: at least one token is required",
		"aggregator.tokens.query: at least one token is required",
	)
	if got := fieldErrors(t, err); len(got) != 4 {
		t.Errorf("got %d problems, want 4:\n%v", len(got), err)
	}
}

// TestValidateScope checks that each subcommand validates only what it runs.
func TestValidateScope(t *testing.T) {
	c := validConfig()
	c.Edge.Listen = "nope"
	c.Aggregator.Listen = "nope"
	c.Edge.Forward.BatchMaxBytes = 128 * MiB // larger than aggregator.max_batch_bytes

	edgeErr := c.ValidateEdge()
	wantErr(t, edgeErr, "edge.listen:")
	if strings.Contains(edgeErr.Error(), "aggregator.") {
		t.Errorf("ValidateEdge reports aggregator problems:\n%v", edgeErr)
	}

	aggErr := c.ValidateAggregator()
	wantErr(t, aggErr, "aggregator.listen:")
	if strings.Contains(aggErr.Error(), "edge.") {
		t.Errorf("ValidateAggregator reports edge problems:\n%v", aggErr)
	}

	wantErr(t, c.Validate(), "edge.listen:", "aggregator.listen:",
		"edge.forward.batch_max_bytes: 128MiB exceeds aggregator.max_batch_bytes (64MiB)")
}

func TestValidateChecks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		want   string // "" = valid
	}{
		{"listen on any port", func(c *Config) { c.Edge.Listen = ":0" }, ""},
		{"listen on IPv6", func(c *Config) { c.Edge.Listen = "[::1]:8080" }, ""},
		{"listen on a name", func(c *Config) { c.Edge.Listen = "localhost:8080" }, ""},
		{"listen without port", func(c *Config) { c.Edge.Listen = "127.0.0.1" }, `edge.listen: "127.0.0.1" is not host:port`},
		{"listen on a named port", func(c *Config) { c.Edge.Listen = ":http" }, `port "http" is not a number`},
		{"admin on the public listener", func(c *Config) { c.Edge.AdminListen = "0.0.0.0:8080" },
			`edge.admin_listen: "0.0.0.0:8080" is the same address as edge.listen`},
		{"aggregator on an edge port", func(c *Config) { c.Aggregator.Listen = "127.0.0.1:8081" },
			`aggregator.listen: "127.0.0.1:8081" collides with edge.admin_listen`},
		{"https URL", func(c *Config) { c.Edge.AggregatorURL = "https://agg.example/base" }, ""},
		{"relative URL", func(c *Config) { c.Edge.AggregatorURL = "/ingest" }, "edge.aggregator_url:"},
		{"several aggregator URLs", func(c *Config) { c.Edge.AggregatorURL = "http://127.0.0.1:9090, http://127.0.0.2:9090" }, ""},
		{"several aggregator URLs, one bad", func(c *Config) { c.Edge.AggregatorURL = "http://127.0.0.1:9090,agg:9090" }, `edge.aggregator_url: "agg:9090" is not an absolute http(s) URL`},
		{"aggregator URL twice", func(c *Config) { c.Edge.AggregatorURL = "http://127.0.0.1:9090,http://127.0.0.1:9090" }, `edge.aggregator_url: "http://127.0.0.1:9090" is listed twice`},
		{"CA file for one plain URL of two", func(c *Config) {
			c.Edge.AggregatorURL = "https://a.example,http://b.example"
			c.Edge.AggregatorCAFile = "ca.pem"
		}, `edge.aggregator_ca_file: is set, but edge.aggregator_url "http://b.example" is plain http`},
		{"URL without host", func(c *Config) { c.Edge.AggregatorURL = "http://" }, "edge.aggregator_url:"},
		{"URL with credentials", func(c *Config) { c.Edge.AggregatorURL = "http://u:p@agg" }, "edge.aggregator_url: must not contain credentials"},
		{"certificate without key", func(c *Config) { c.Edge.TLS.CertFile = "cert.pem" }, "edge.tls.key_file: is empty, but edge.tls.cert_file is set"},
		{"key without certificate", func(c *Config) { c.Aggregator.AdminTLS.KeyFile = "key.pem" }, "aggregator.admin_tls.cert_file: is empty, but aggregator.admin_tls.key_file is set"},
		{"CA file for a plain URL", func(c *Config) { c.Edge.AggregatorCAFile = "ca.pem" }, "edge.aggregator_ca_file: is set, but edge.aggregator_url \"http://127.0.0.1:9090\" is plain http"},
		{"trusted proxies", func(c *Config) { c.Edge.TrustedProxies = []string{"10.0.0.1", "fd00::/8", "::1"} }, ""},
		{"trusted proxy bad prefix", func(c *Config) { c.Edge.TrustedProxies = []string{"10.0.0.0/33"} }, `edge.trusted_proxies: "10.0.0.0/33"`},
		{"trusted proxy name", func(c *Config) { c.Edge.TrustedProxies = []string{"proxy.local"} }, `edge.trusted_proxies: "proxy.local"`},
		{"memory 4GiB", func(c *Config) { c.Edge.Rules.MemoryLimit = 4 * GiB }, ""},
		{"memory over 4GiB", func(c *Config) { c.Edge.Rules.MemoryLimit = 4*GiB + 64*KiB }, "edge.rules.memory_limit: 4194368KiB exceeds 4GiB"},
		{"memory zero", func(c *Config) { c.Edge.Rules.MemoryLimit = 0 }, "edge.rules.memory_limit: must be positive"},
		{"pool size auto", func(c *Config) { c.Edge.Rules.PoolSize = 0 }, ""},
		{"pool size negative", func(c *Config) { c.Edge.Rules.PoolSize = -1 }, "edge.rules.pool_size: -1 is negative"},
		{"no clock skew check", func(c *Config) { c.Edge.Hamustro.MaxClockSkew = 0 }, ""},
		{"negative clock skew", func(c *Config) { c.Edge.Hamustro.MaxClockSkew = Duration(-time.Second) }, "edge.hamustro.max_clock_skew: -1s is negative"},
		{"min free off", func(c *Config) { c.Edge.Spool.MinFreeBytes = 0 }, ""},
		{"zero quota", func(c *Config) { c.Edge.Spool.QuotaBytes = 0 }, "edge.spool.quota_bytes: must be positive"},
		{"zero batch events", func(c *Config) { c.Edge.Forward.BatchMaxEvents = 0 }, "edge.forward.batch_max_events: must be at least 1"},
		{"equal backoffs", func(c *Config) { c.Edge.Forward.BackoffMax = c.Edge.Forward.BackoffMin }, ""},
		{"secret with space", func(c *Config) { c.Edge.Hamustro.Secrets = []string{"a b"} }, "edge.hamustro.secrets: entry 1 contains whitespace"},
		{"repeated secret", func(c *Config) { c.Edge.Hamustro.Secrets = []string{"a", "b", "a"} }, "edge.hamustro.secrets: entry 3 repeats entry 1"},
		{"rotating secrets", func(c *Config) { c.Edge.Hamustro.Secrets = []string{"old", "new"} }, ""},
		{"edge token unknown", func(c *Config) { c.Edge.Token = "other" }, "edge.token: is not one of aggregator.tokens.edge"},
		{"edge token also admin", func(c *Config) { c.Aggregator.Tokens.Admin = []string{"edge-token-1"} },
			"aggregator.tokens.edge: entry 1 is also in aggregator.tokens.admin"},
		{"same data dir", func(c *Config) { c.Aggregator.DataDir = "data/edge/" }, "aggregator.data_dir: \"data/edge/\" overlaps edge.data_dir"},
		{"nested data dir", func(c *Config) { c.Aggregator.DataDir = "data" }, "aggregator.data_dir: \"data\" overlaps"},
		{"sibling data dirs", func(c *Config) { c.Aggregator.DataDir = "data/edge2" }, ""},
		{"empty data dir", func(c *Config) { c.Edge.DataDir = "" }, "edge.data_dir: must not be empty"},
		{"log format", func(c *Config) { c.Log.Format = "logfmt" }, `log.format: "logfmt" is not one of text, json`},
		{"edge id with space", func(c *Config) { c.Edge.ID = "edge 1" }, "edge.id:"},
		{"store backend unknown", func(c *Config) { c.Aggregator.Store.Backend = "postgres" },
			`aggregator.store.backend: "postgres" is not one of pebble, clickhouse`},
		{"clickhouse backend", func(c *Config) {
			c.Aggregator.Store.Backend = "clickhouse"
			c.Aggregator.Store.ClickHouse.DSN = "clickhouse://127.0.0.1:9000/edgetrack"
		}, ""},
		{"retention with clickhouse", func(c *Config) {
			c.Aggregator.Store.Backend = "clickhouse"
			c.Aggregator.Store.ClickHouse.DSN = "clickhouse://127.0.0.1:9000/edgetrack"
			c.Aggregator.Retention.Default = Duration(time.Hour)
		}, ""},
		{"clickhouse DSN unused with pebble", func(c *Config) { c.Aggregator.Store.ClickHouse.DSN = "nonsense" }, ""},
		{"clickhouse without DSN", func(c *Config) { c.Aggregator.Store.Backend = "clickhouse" },
			"aggregator.store.clickhouse.dsn: is required with aggregator.store.backend clickhouse"},
		{"clickhouse DSN over HTTP", func(c *Config) {
			c.Aggregator.Store.Backend = "clickhouse"
			c.Aggregator.Store.ClickHouse.DSN = "http://127.0.0.1:8123/edgetrack"
		}, `aggregator.store.clickhouse.dsn: scheme "http": want clickhouse://`},
		{"clickhouse DSN without port", func(c *Config) {
			c.Aggregator.Store.Backend = "clickhouse"
			c.Aggregator.Store.ClickHouse.DSN = "clickhouse://db.example/edgetrack"
		}, `aggregator.store.clickhouse.dsn: host "db.example": want host:port`},
		{"clickhouse DSN bad database", func(c *Config) {
			c.Aggregator.Store.Backend = "clickhouse"
			c.Aggregator.Store.ClickHouse.DSN = "clickhouse://127.0.0.1:9000/my-events"
		}, `aggregator.store.clickhouse.dsn: database "my-events": want letters`},
		{"clickhouse cluster", clickHouseCluster("events_2x2", 2), ""},
		{"clickhouse cluster bad name", clickHouseCluster("events-2x2", 1), `aggregator.store.clickhouse.cluster: "events-2x2": want letters`},
		{"clickhouse ack replicas without cluster", clickHouseCluster("", 2),
			"aggregator.store.clickhouse.ack_replicas: is 2, but aggregator.store.clickhouse.cluster is not set"},
		{"clickhouse ack replicas zero", clickHouseCluster("events", 0), "aggregator.store.clickhouse.ack_replicas: must be at least 1"},
		{"clickhouse writer timeout too short", func(c *Config) {
			clickHouseCluster("", 1)(c)
			c.Aggregator.Store.ClickHouse.WriterTimeout = Duration(time.Second)
		}, "aggregator.store.clickhouse.writer_timeout: is 1s, want at least 5s"},
		{"clickhouse cluster unused with pebble", func(c *Config) { c.Aggregator.Store.ClickHouse.AckReplicas = 0 }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.modify(c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want valid, got:\n%v", err)
				}
				return
			}
			wantErr(t, err, tc.want)
			fieldErrors(t, err)
		})
	}
}

func TestTrustedPrefixes(t *testing.T) {
	e := validConfig().Edge
	e.TrustedProxies = []string{"10.1.2.3", "10.1.2.3/8", "::ffff:192.168.0.1", "fd00::1"}
	got, err := e.TrustedPrefixes()
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, p := range got {
		s = append(s, p.String())
	}
	if want := []string{"10.1.2.3/32", "10.0.0.0/8", "192.168.0.1/32", "fd00::1/128"}; !slices.Equal(s, want) {
		t.Errorf("TrustedPrefixes = %q, want %q", s, want)
	}
	e.TrustedProxies = []string{"nope"}
	if _, err := e.TrustedPrefixes(); err == nil {
		t.Error("want an error")
	}
}

func TestValidateLimits(t *testing.T) {
	c := validConfig()
	c.Edge.Limits.MaxInFlight = -1
	c.Edge.Limits.MaxClients = 0
	c.Edge.Limits.Hamustro = RouteLimit{Rate: 10, Burst: 0}
	c.Edge.Limits.Eye = RouteLimit{Rate: 0, Burst: 5}
	c.Edge.Limits.CookieSyncInit = RouteLimit{Rate: 1, Burst: -2}
	c.Edge.Limits.CookieSyncDone = RouteLimit{Rate: -1, Burst: 1}
	c.Edge.Limits.CookieSyncSync = RouteLimit{Rate: 5, Burst: 20} // valid
	got := map[string]string{}
	for _, fe := range fieldErrors(t, c.ValidateEdge()) {
		got[fe.Path] = fe.Problem
	}
	want := map[string]string{
		"edge.limits.max_in_flight":         "-1 is negative (0 means 256 × edge.rules.pool_size)",
		"edge.limits.max_clients":           "must be at least 1, got 0",
		"edge.limits.hamustro.burst":        "must be at least 1 when edge.limits.hamustro.rate is set (how many requests a client may send at once)",
		"edge.limits.eye.burst":             "is 5, but edge.limits.eye.rate is 0 (no limit); set a rate or remove the burst",
		"edge.limits.cookiesync_init.burst": "-2 is negative",
		"edge.limits.cookiesync_done.rate":  "-1/s is negative (0 means no limit)",
	}
	for path, problem := range want {
		if got[path] != problem {
			t.Errorf("%s: got %q, want %q", path, got[path], problem)
		}
	}
	if len(got) != len(want) {
		t.Errorf("problems %v, want exactly %v", got, want)
	}
}

func TestLimitsFromYAMLAndEnv(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/c.yaml"
	if err := os.WriteFile(path, []byte("edge:\n  limits:\n    hamustro: {rate: 600/m, burst: 50}\n    max_in_flight: 7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, []string{"EDGETRACK_EDGE_LIMITS_EYE_RATE=2/s", "EDGETRACK_EDGE_LIMITS_EYE_BURST=4"})
	if err != nil {
		t.Fatal(err)
	}
	l := c.Edge.Limits
	if l.Hamustro != (RouteLimit{Rate: 10, Burst: 50}) || l.Eye != (RouteLimit{Rate: 2, Burst: 4}) || l.MaxInFlight != 7 {
		t.Fatalf("limits not loaded: %+v", l)
	}
	if l.CookieSyncInit.Enabled() || !l.Hamustro.Enabled() {
		t.Fatalf("Enabled wrong: %+v", l)
	}
	if n := l.MaxInFlightFor(4); n != 7 {
		t.Fatalf("MaxInFlightFor = %d, want the setting 7", n)
	}
	l.MaxInFlight = 0
	if n := l.MaxInFlightFor(4); n != 1024 {
		t.Fatalf("MaxInFlightFor(4) = %d, want 256 × 4", n)
	}
	if _, err := Load("", []string{"EDGETRACK_EDGE_LIMITS_EYE_RATE=fast"}); err == nil || !strings.Contains(err.Error(), "is not a rate") {
		t.Fatalf("a bad rate loaded: %v", err)
	}
}

func TestRetentionConfig(t *testing.T) {
	path := t.TempDir() + "/c.yaml"
	if err := os.WriteFile(path, []byte("aggregator:\n  retention:\n    default: 2160h\n    categories: {page_interaction: 720h, audit: 0s}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Aggregator.Retention
	if r.Default.Duration() != 2160*time.Hour || len(r.Categories) != 2 ||
		r.Categories["page_interaction"].Duration() != 720*time.Hour || r.Categories["audit"] != 0 || !r.Enabled() {
		t.Fatalf("retention not loaded: %+v", r)
	}
	c, err = Load(path, []string{"EDGETRACK_AGGREGATOR_RETENTION_CATEGORIES=form_interaction=24h, page_interaction=1h"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Aggregator.Retention.Categories.String(); got != "form_interaction=24h0m0s,page_interaction=1h0m0s" {
		t.Fatalf("the environment's categories: %s", got)
	}
	if Default().Aggregator.Retention.Enabled() {
		t.Fatal("retention is on by default")
	}
	for _, bad := range []struct{ env, want string }{
		{"EDGETRACK_AGGREGATOR_RETENTION_CATEGORIES=view", `"view" is not category=duration`},
		{"EDGETRACK_AGGREGATOR_RETENTION_CATEGORIES=view=1h,view=2h", `category "view" is listed twice`},
		{"EDGETRACK_AGGREGATOR_RETENTION_CATEGORIES=view=soon", `category "view": "soon" is not a duration`},
	} {
		if _, err := Load("", []string{bad.env}); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want an error with %q", bad.env, err, bad.want)
		}
	}
	if err := os.WriteFile(path, []byte("aggregator:\n  retention:\n    categories: [a, b]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, nil); err == nil || !strings.Contains(err.Error(), "expected a mapping of category to duration") {
		t.Fatalf("a list for categories: %v", err)
	}

	v := validConfig()
	v.Aggregator.Retention = Retention{
		Default:    Duration(-time.Hour),
		Categories: CategoryDurations{"": Duration(time.Hour), "short": Duration(time.Second), "neg": Duration(-1), "nul\x00": Duration(time.Hour), "ok": Duration(time.Hour)},
		Interval:   0,
	}
	got := map[string]bool{}
	for _, fe := range fieldErrors(t, v.ValidateAggregator()) {
		got[fe.Path+": "+fe.Problem] = true
	}
	for _, want := range []string{
		"aggregator.retention.default: -1h0m0s is negative (0 keeps events forever)",
		"aggregator.retention.categories: an empty category name; events without a category follow aggregator.retention.default",
		`aggregator.retention.categories: category "short": 1s is shorter than 1m0s (0 keeps events forever)`,
		`aggregator.retention.categories: category "neg": -1ns is negative (0 keeps events forever)`,
		`aggregator.retention.categories: "nul\x00" cannot be the category of a stored event (at most 256 bytes of UTF-8 without NUL)`,
		"aggregator.retention.interval: must be at least 1s, got 0s",
	} {
		if !got[want] {
			t.Errorf("missing problem %q in %v", want, got)
		}
	}
	if len(got) != 6 {
		t.Errorf("%d problems, want 6: %v", len(got), got)
	}
}

// clickHouseCluster sets the ClickHouse backend on cluster, acknowledging
// on ack replicas.
func clickHouseCluster(cluster string, ack int) func(*Config) {
	return func(c *Config) {
		c.Aggregator.Store.Backend = "clickhouse"
		c.Aggregator.Store.ClickHouse.DSN = "clickhouse://127.0.0.1:9000/edgetrack"
		c.Aggregator.Store.ClickHouse.Cluster = cluster
		c.Aggregator.Store.ClickHouse.AckReplicas = ack
	}
}
