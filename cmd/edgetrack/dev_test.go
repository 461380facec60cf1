package main

import (
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
