package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// writeFile writes content to name in dir and returns its path.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func loadYAML(t testing.TB, content string, environ ...string) (*Config, error) {
	t.Helper()
	return Load(writeFile(t, t.TempDir(), "edgetrack.yaml", content), environ)
}

func mustLoadYAML(t testing.TB, content string, environ ...string) *Config {
	t.Helper()
	cfg, err := loadYAML(t, content, environ...)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg
}

// wantErr fails unless err is non-nil and contains every one of wants.
func wantErr(t testing.TB, err error, wants ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", wants)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not contain %q:\n%v", w, err)
		}
	}
}

func TestDefault(t *testing.T) {
	d := Default()
	if d.Log.Level != "info" || d.Edge.Listen != ":8080" || d.Edge.AdminListen != "127.0.0.1:8081" ||
		d.Edge.MaxBodyBytes != MiB || d.Edge.ReadTimeout.Duration() != 10*time.Second ||
		d.Edge.Rules.CallTimeout.Duration() != 500*time.Millisecond || d.Edge.Spool.QuotaBytes != GiB ||
		d.Aggregator.MaxBatchBytes != 64*MiB || d.Aggregator.Query.MaxPageSize != 1000 {
		t.Errorf("unexpected defaults: %+v", d)
	}
	if d.Edge.RulesCacheDir() != filepath.Join("data/edge", "wasm-cache") {
		t.Errorf("RulesCacheDir = %q", d.Edge.RulesCacheDir())
	}
	if got := d.Edge.Rules.PoolSizeFor(4); got != 8 {
		t.Errorf("PoolSizeFor(4) = %d, want 8", got)
	}

	// Each call returns a fresh value.
	d.Edge.TrustedProxies = append(d.Edge.TrustedProxies, "10.0.0.1")
	d.Log.Level = "debug"
	if e := Default(); len(e.Edge.TrustedProxies) != 0 || e.Log.Level != "info" {
		t.Error("Default shares state between calls")
	}

	cfg, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Errorf("Load(\"\", nil) = %+v, want Default()", cfg)
	}
}

func TestLoadYAML(t *testing.T) {
	cfg := mustLoadYAML(t, `
log:
  format: json
edge:
  listen: "0.0.0.0:80"
  max_body_bytes: 2097152
  max_header_bytes: 16KiB
  trusted_proxies: [10.0.0.0/8, "192.168.1.1"]
  rules:
    pool_size: 3
    call_timeout: 250ms
  hamustro:
    secrets: [s1, s2]
    mask_ip: true
aggregator:
  tokens:
    edge: [e1]
`)
	want := Default()
	want.Log.Format = "json"
	want.Edge.Listen = "0.0.0.0:80"
	want.Edge.MaxBodyBytes = 2 * MiB
	want.Edge.MaxHeaderBytes = 16 * KiB
	want.Edge.TrustedProxies = []string{"10.0.0.0/8", "192.168.1.1"}
	want.Edge.Rules.PoolSize = 3
	want.Edge.Rules.CallTimeout = Duration(250 * time.Millisecond)
	want.Edge.Hamustro.Secrets = []string{"s1", "s2"}
	want.Edge.Hamustro.MaskIP = true
	want.Aggregator.Tokens.Edge = []string{"e1"}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}
}

func TestLoadEmptyYAML(t *testing.T) {
	for _, content := range []string{"", "# only a comment\n", "~\n", "---\n"} {
		cfg, err := loadYAML(t, content)
		if err != nil {
			t.Errorf("Load(%q): %v", content, err)
		} else if !reflect.DeepEqual(cfg, Default()) {
			t.Errorf("Load(%q) differs from Default()", content)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil)
	wantErr(t, err, "nope.yaml")
}

func TestEnvOverrides(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   string
		check func(*Config) bool
	}{
		{"string", "EDGETRACK_EDGE_AGGREGATOR_URL=https://agg.example:443",
			func(c *Config) bool { return c.Edge.AggregatorURL == "https://agg.example:443" }},
		{"string kept verbatim", "EDGETRACK_EDGE_TOKEN= a=b ",
			func(c *Config) bool { return c.Edge.Token == " a=b " }},
		{"list", "EDGETRACK_EDGE_HAMUSTRO_SECRETS= s1, s2 ,,s3,",
			func(c *Config) bool { return slices.Equal(c.Edge.Hamustro.Secrets, []string{"s1", "s2", "s3"}) }},
		{"empty list", "EDGETRACK_AGGREGATOR_TOKENS_EDGE=",
			func(c *Config) bool { return c.Aggregator.Tokens.Edge != nil && len(c.Aggregator.Tokens.Edge) == 0 }},
		{"duration", "EDGETRACK_EDGE_READ_TIMEOUT=1m30s",
			func(c *Config) bool { return c.Edge.ReadTimeout.Duration() == 90*time.Second }},
		{"size with unit", "EDGETRACK_EDGE_SPOOL_QUOTA_BYTES=2GiB",
			func(c *Config) bool { return c.Edge.Spool.QuotaBytes == 2*GiB }},
		{"size as integer", "EDGETRACK_AGGREGATOR_MAX_BATCH_BYTES=1000",
			func(c *Config) bool { return c.Aggregator.MaxBatchBytes == 1000 }},
		{"bool", "EDGETRACK_EDGE_HAMUSTRO_MASK_IP=true",
			func(c *Config) bool { return c.Edge.Hamustro.MaskIP }},
		{"int", "EDGETRACK_EDGE_RULES_POOL_SIZE=7",
			func(c *Config) bool { return c.Edge.Rules.PoolSize == 7 }},
		{"nested path with underscores", "EDGETRACK_EDGE_HAMUSTRO_MAX_CLOCK_SKEW=5m",
			func(c *Config) bool { return c.Edge.Hamustro.MaxClockSkew.Duration() == 5*time.Minute }},
		{"later entry wins", "EDGETRACK_LOG_LEVEL=debug\x00EDGETRACK_LOG_LEVEL=warn",
			func(c *Config) bool { return c.Log.Level == "warn" }},
		{"other variables ignored", "PATH=/bin\x00EDGETRACKER=1\x00edgetrack_log_level=debug",
			func(c *Config) bool { return reflect.DeepEqual(c, Default()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Load("", strings.Split(tc.env, "\x00"))
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(cfg) {
				t.Errorf("%q not applied: %+v", tc.env, cfg)
			}
		})
	}
}

// TestEveryPathFromEnv sets each setting from its variable, so a new field of
// a type the environment cannot express fails here.
func TestEveryPathFromEnv(t *testing.T) {
	sample := map[reflect.Kind]string{reflect.String: "x", reflect.Bool: "true", reflect.Int: "3", reflect.Slice: "a,b"}
	for _, s := range settings().list {
		v := reflect.ValueOf(Default()).Elem().FieldByIndex(s.index)
		val, ok := sample[v.Kind()]
		switch x := v.Interface().(type) {
		case bool:
			val = strconv.FormatBool(!x) // the opposite of the default
		case Duration:
			val, ok = "3s", true
		case ByteSize:
			val, ok = "3KiB", true
		case Rate:
			val, ok = "3/s", true
		case CategoryDurations:
			val, ok = "view=3h", true
		}
		if !ok {
			t.Errorf("%s: no sample for %s", s.path, v.Type())
			continue
		}
		cfg, err := Load("", []string{EnvName(s.path) + "=" + val})
		if err != nil {
			t.Errorf("%s: %v", s.path, err)
			continue
		}
		if reflect.DeepEqual(cfg, Default()) {
			t.Errorf("%s=%s changed nothing", EnvName(s.path), val)
		}
	}
}

func TestEnvNamesUnique(t *testing.T) {
	paths := Paths()
	seen := map[string]string{}
	for _, p := range paths {
		name := EnvName(p)
		if other, dup := seen[name]; dup {
			t.Errorf("%s and %s both map to %s", other, p, name)
		}
		seen[name] = p
	}
	if got := EnvName("edge.hamustro.max_clock_skew"); got != "EDGETRACK_EDGE_HAMUSTRO_MAX_CLOCK_SKEW" {
		t.Errorf("EnvName = %q", got)
	}
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "edgetrack.yaml", `
edge:
  id: from-yaml
  token: from-yaml
  data_dir: from-yaml
aggregator:
  data_dir: from-yaml
`)
	writeFile(t, dir, ".env", `
EDGETRACK_EDGE_ID=from-dotenv
EDGETRACK_EDGE_TOKEN=from-dotenv
EDGETRACK_AGGREGATOR_DATA_DIR=from-dotenv
`)
	writeFile(t, dir, ".env.local", `
EDGETRACK_EDGE_ID=from-dotenv-local
EDGETRACK_EDGE_TOKEN=from-dotenv-local
`)
	environ, err := Environ(dir, []string{"EDGETRACK_EDGE_ID=from-process", "HOME=/root"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, environ)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, got, want string }{
		{"log.format", cfg.Log.Format, "text"},                         // default
		{"edge.data_dir", cfg.Edge.DataDir, "from-yaml"},               // yaml > default
		{"aggregator.data_dir", cfg.Aggregator.DataDir, "from-dotenv"}, // .env > yaml
		{"edge.token", cfg.Edge.Token, "from-dotenv-local"},            // .env.local > .env
		{"edge.id", cfg.Edge.ID, "from-process"},                       // process > .env.local
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.path, tc.got, tc.want)
		}
	}
	if !slices.Contains(environ, "HOME=/root") {
		t.Errorf("Environ dropped an unrelated variable: %q", environ)
	}
}

func TestLoadDotEnv(t *testing.T) {
	dir := t.TempDir()
	got, err := LoadDotEnv(dir)
	if err != nil || len(got) != 0 {
		t.Fatalf("no files: got %v, %v", got, err)
	}
	writeFile(t, dir, ".env.local", "A=local\n")
	got, err = LoadDotEnv(dir)
	if err != nil || !reflect.DeepEqual(got, map[string]string{"A": "local"}) {
		t.Fatalf(".env.local only: got %v, %v", got, err)
	}
	writeFile(t, dir, ".env", "A=base\nB=base\n")
	got, err = LoadDotEnv(dir)
	if err != nil || !reflect.DeepEqual(got, map[string]string{"A": "local", "B": "base"}) {
		t.Fatalf("both: got %v, %v", got, err)
	}
}

func TestLoadDoesNotReadProcessEnv(t *testing.T) {
	t.Setenv("EDGETRACK_LOG_LEVEL", "debug")
	cfg, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Log.Level != "info" {
		t.Errorf("Load read the process environment: log.level = %q", cfg.Log.Level)
	}
}

func TestEnvironDoesNotWriteProcessEnv(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, ".env", "EDGETRACK_TEST_ONLY_VARIABLE=1\n")
	if _, err := Environ(dir, nil); err != nil {
		t.Fatal(err)
	}
	if _, set := os.LookupEnv("EDGETRACK_TEST_ONLY_VARIABLE"); set {
		t.Error("Environ changed the process environment")
	}
}

func TestUnknownYAMLKey(t *testing.T) {
	_, err := loadYAML(t, `
edge:
  listen: ":80"
  aggregator_ur: "http://x"
  hamustro:
    secret: [a]
loglevel: debug
`)
	wantErr(t, err,
		`edgetrack.yaml: line 4: unknown setting "edge.aggregator_ur" (did you mean edge.aggregator_url?)`,
		`line 6: unknown setting "edge.hamustro.secret" (did you mean edge.hamustro.secrets?)`,
		`line 7: unknown setting "loglevel"`,
	)
}

func TestEmptySectionIsAnError(t *testing.T) {
	// yaml.v3 would reset a null section to zero values, silently dropping
	// every default in it.
	_, err := loadYAML(t, "aggregator:\n  # listen: \":9090\"\n")
	wantErr(t, err, "line 1: aggregator: empty section")
}

func TestUnknownEnvVariable(t *testing.T) {
	_, err := Load("", []string{
		"EDGETRACK_EDGE_AGGREGATOR_UR=http://x",
		"EDGETRACK_NONSENSE=1",
		"EDGETRACK_LOG_LEVEL=debug",
	})
	wantErr(t, err,
		"EDGETRACK_EDGE_AGGREGATOR_UR: no such setting (did you mean EDGETRACK_EDGE_AGGREGATOR_URL?)",
		"EDGETRACK_NONSENSE: no such setting",
	)
}

func TestBadValues(t *testing.T) {
	t.Run("env", func(t *testing.T) {
		_, err := Load("", []string{
			"EDGETRACK_EDGE_READ_TIMEOUT=10",
			"EDGETRACK_EDGE_SPOOL_QUOTA_BYTES=lots",
			"EDGETRACK_EDGE_HAMUSTRO_MASK_IP=yes please",
			"EDGETRACK_EDGE_FORWARD_BATCH_MAX_EVENTS=1e3",
		})
		wantErr(t, err,
			`EDGETRACK_EDGE_READ_TIMEOUT (edge.read_timeout): "10" is not a duration`,
			`EDGETRACK_EDGE_SPOOL_QUOTA_BYTES (edge.spool.quota_bytes): "lots" is not a byte size`,
			`EDGETRACK_EDGE_HAMUSTRO_MASK_IP (edge.hamustro.mask_ip): "yes please" is not a boolean`,
			`EDGETRACK_EDGE_FORWARD_BATCH_MAX_EVENTS (edge.forward.batch_max_events): "1e3" is not an integer`,
		)
	})
	t.Run("yaml", func(t *testing.T) {
		_, err := loadYAML(t, `
edge:
  read_timeout: 10
  max_body_bytes: 1.5MiB
  rules:
    pool_size: many
  hamustro:
    secrets: abc
`)
		wantErr(t, err,
			`line 3: edge.read_timeout: "10" is not a duration`,
			`line 4: edge.max_body_bytes: "1.5MiB" is not a byte size`,
			"line 6: edge.rules.pool_size: cannot unmarshal !!str `many` into int",
			"line 8: edge.hamustro.secrets: cannot unmarshal !!str `abc` into []string",
		)
	})
	t.Run("yaml flow mapping", func(t *testing.T) {
		// Two settings on one line: the line is named, the setting cannot be.
		_, err := loadYAML(t, "edge: {read_timeout: 10, write_timeout: 5s}\n")
		wantErr(t, err, `edgetrack.yaml: line 1: "10" is not a duration`)
	})
	t.Run("yaml syntax", func(t *testing.T) {
		_, err := loadYAML(t, "edge:\n  listen: [\n")
		wantErr(t, err, "edgetrack.yaml: yaml: line")
	})
	t.Run("top level not a mapping", func(t *testing.T) {
		_, err := loadYAML(t, "- edge\n")
		wantErr(t, err, "line 1: expected a mapping of settings")
	})
	t.Run("two documents", func(t *testing.T) {
		_, err := loadYAML(t, "log:\n  level: debug\n---\nlog:\n  level: warn\n")
		wantErr(t, err, "more than one YAML document")
	})
}

// TestExampleFile keeps edgetrack.example.yaml in step with the code: it must
// load to exactly Default(), and list every setting with a comment.
func TestExampleFile(t *testing.T) {
	const path = "../../edgetrack.example.yaml"
	cfg, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		got, _ := yaml.Marshal(cfg)
		want, _ := yaml.Marshal(Default())
		t.Errorf("%s does not load to Default()\nexample:\n%s\ndefault:\n%s", path, got, want)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			path := joinPath(prefix, k.Value)
			if v.Kind == yaml.MappingNode && !slices.Contains(Paths(), path) { // a section, not a setting written as a mapping
				walk(v, path)
				continue
			}
			listed[path] = true
			if k.HeadComment == "" && k.LineComment == "" && v.LineComment == "" {
				t.Errorf("%s: line %d: %s has no comment explaining it", path, k.Line, path)
			}
		}
	}
	walk(doc.Content[0], "")
	for _, p := range Paths() {
		if !listed[p] {
			t.Errorf("%s does not list %s", path, p)
		}
	}
}

func TestCommandVariablesAreNotSettings(t *testing.T) {
	env := []string{"EDGETRACK_SEND_URL=http://x", "EDGETRACK_SEND_SECRET=s", "EDGETRACK_RULES_TOKEN=t", "EDGETRACK_TEST_REQUIRE_SERVERS=1"}
	if _, err := Load("", env); err != nil {
		t.Fatalf("command and test variables were taken for settings: %v", err)
	}
}
