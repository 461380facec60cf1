package packaging

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/internal/freeport"
)

// The paths `make install`, the systemd units and the Dockerfile agree on.
const (
	binPath    = "/usr/local/bin/edgetrack"
	configPath = "/etc/edgetrack/edgetrack.yaml"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestInstall runs `make install` into a staging tree, checks what it put
// there (the units were verified by systemd-analyze on the way, where it
// exists), and runs the installed aggregator with the installed config.
func TestInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	dest := t.TempDir()
	cmd := exec.Command("make", "install", "DESTDIR="+dest)
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	for _, f := range []string{binPath, configPath, "/usr/local/share/edgetrack/edgetrack.example.yaml",
		"/lib/systemd/system/edgetrack-edge.service", "/lib/systemd/system/edgetrack-aggregator.service"} {
		if _, err := os.Stat(filepath.Join(dest, f)); err != nil {
			t.Errorf("make install left no %s: %v", f, err)
		}
	}
	for _, role := range []string{"edge", "aggregator"} {
		unit, err := os.ReadFile(filepath.Join(dest, "lib/systemd/system/edgetrack-"+role+".service"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"ExecStart=" + binPath + " " + role + " --config " + configPath,
			"DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes",
			"StateDirectory=edgetrack-" + role,
			"Environment=EDGETRACK_" + strings.ToUpper(role) + "_DATA_DIR=/var/lib/edgetrack-" + role,
		} {
			if !strings.Contains(string(unit), want+"\n") {
				t.Errorf("edgetrack-%s.service has no line %q", role, want)
			}
		}
	}

	out, err := exec.Command(filepath.Join(dest, binPath), "version").Output()
	if err != nil || !regexp.MustCompile(`^edgetrack \S+ \(commit \S+, go1\.\d+`).Match(out) {
		t.Errorf("edgetrack version: %q, %v; want the version, commit and Go version", out, err)
	}

	// The installed config, as the aggregator's unit runs it; listeners and
	// data in the test's own places.
	addr := freeport.Addr(t)
	agg := exec.Command(filepath.Join(dest, binPath), "aggregator", "--config", filepath.Join(dest, configPath))
	agg.Env = append(os.Environ(),
		"EDGETRACK_AGGREGATOR_LISTEN="+addr, "EDGETRACK_AGGREGATOR_ADMIN_LISTEN="+freeport.Addr(t),
		"EDGETRACK_AGGREGATOR_DATA_DIR="+t.TempDir(),
		"EDGETRACK_AGGREGATOR_TOKENS_QUERY=q-token-for-the-test", "EDGETRACK_AGGREGATOR_TOKENS_EDGE=e-token-for-the-test")
	var log strings.Builder
	agg.Stdout, agg.Stderr = &log, &log
	if err := agg.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { agg.Process.Kill(); agg.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("the installed aggregator never became ready:\n%s", log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDockerfileUsesTheInstalledPaths: no container engine runs here, so the
// image is not built; its entrypoint and config are the binary and config
// path that TestInstall runs.
func TestDockerfileUsesTheInstalledPaths(t *testing.T) {
	f, err := os.Open(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		lines = append(lines, sc.Text())
	}
	text := strings.Join(lines, "\n") + "\n"
	for _, want := range []string{
		fmt.Sprintf("COPY --from=build /src/bin/edgetrack %s\n", binPath),
		fmt.Sprintf("COPY edgetrack.example.yaml %s\n", configPath),
		fmt.Sprintf("ENTRYPOINT [%q]\n", binPath),
		fmt.Sprintf("CMD [\"edge\", \"--config\", %q]\n", configPath),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("Dockerfile has no line %q", strings.TrimSpace(want))
		}
	}
}

// TestComposeSettingsLoad: the EDGETRACK_* variables compose.yaml gives each
// service are settings the configuration accepts, with the example file the
// image carries (the secrets .env would add are given here).
func TestComposeSettingsLoad(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatal(err)
	}
	secrets := []string{"EDGETRACK_AGGREGATOR_TOKENS_EDGE=e", "EDGETRACK_AGGREGATOR_TOKENS_QUERY=q",
		"EDGETRACK_EDGE_TOKEN=e", "EDGETRACK_EDGE_HAMUSTRO_SECRETS=s"}
	for _, name := range []string{"aggregator", "edge"} {
		svc, ok := compose.Services[name]
		if !ok || len(svc.Command) < 3 || svc.Command[0] != name || svc.Command[2] != configPath {
			t.Fatalf("service %s: command %q, want %s --config %s", name, svc.Command, name, configPath)
		}
		env := slices.Clone(secrets)
		for k, v := range svc.Environment {
			env = append(env, k+"="+v)
		}
		cfg, err := config.Load(filepath.Join(repoRoot(t), "edgetrack.example.yaml"), env)
		if err != nil {
			t.Fatalf("service %s: %v", name, err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("service %s: %v", name, err)
		}
		if name == "aggregator" && cfg.Aggregator.Store.Backend != config.BackendClickHouse {
			t.Errorf("the compose aggregator stores into %s, want clickhouse", cfg.Aggregator.Store.Backend)
		}
	}
}
