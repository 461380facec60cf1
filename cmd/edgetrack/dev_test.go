package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/edgetrack/edgetrack/internal/config"
)

// TestDevListensOnLoopback checks that dev keeps its public listeners off
// the network unless the configuration names another address.
func TestDevListensOnLoopback(t *testing.T) {
	cfg := config.Default()
	if err := devDefaults(cfg, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if cfg.Edge.Listen != "127.0.0.1:8080" || cfg.Aggregator.Listen != "127.0.0.1:9090" {
		t.Fatalf("dev listens on %s and %s, want 127.0.0.1:8080 and 127.0.0.1:9090", cfg.Edge.Listen, cfg.Aggregator.Listen)
	}
	cfg = config.Default()
	cfg.Edge.Listen, cfg.Aggregator.Listen = "0.0.0.0:8080", "[::]:9999"
	if err := devDefaults(cfg, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if cfg.Edge.Listen != "0.0.0.0:8080" || cfg.Aggregator.Listen != "[::]:9999" {
		t.Fatalf("configured addresses changed to %s and %s", cfg.Edge.Listen, cfg.Aggregator.Listen)
	}
}

// TestJSONLogsHaveNoDuplicateKeys runs an aggregator and an edge as dev
// wires them, with JSON logs, through start-up and shutdown: no log line
// may name a key twice (JSON readers keep only one of them).
func TestJSONLogsHaveNoDuplicateKeys(t *testing.T) {
	var logs lockedBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// A subtest, so that its cleanup stops both services before the logs
	// are read.
	t.Run("run", func(t *testing.T) {
		_, _, e := devServices(t, log, "log-edge")
		resp, err := http.Get("http://" + e.Addr() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	})

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) < 5 {
		t.Fatalf("only %d log lines:\n%s", len(lines), logs.String())
	}
	for _, line := range lines {
		if key := duplicateKey(t, line); key != "" {
			t.Errorf("key %q twice in %s", key, line)
		}
	}
}

// duplicateKey returns a key that a JSON object names twice at its top
// level, or "".
func duplicateKey(t *testing.T, line string) string {
	dec := json.NewDecoder(strings.NewReader(line))
	if _, err := dec.Token(); err != nil { // {
		t.Fatalf("not JSON: %s", line)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("%v in %s", err, line)
		}
		key := tok.(string)
		if seen[key] {
			return key
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("%v in %s", err, line)
		}
	}
	return ""
}
