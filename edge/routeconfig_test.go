package edge

import (
	"slices"
	"testing"

	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/wasm/dist"
)

// TestEveryBuiltinRuleIsConfigured: each row of wasm/dist's table has the
// edge's settings for it and a rate limit under edge.limits for each of its
// paths, and there are none for rules or paths not in the table.
func TestEveryBuiltinRuleIsConfigured(t *testing.T) {
	cfg := config.Default().Edge
	for _, name := range dist.Names() {
		rc, ok := routeConfigs[name]
		if !ok || rc.settings == nil {
			t.Errorf("built-in rule %s has no settings in routeConfigs", name)
			continue
		}
		for _, s := range rc.settings(&cfg) {
			if s.Key == "" {
				t.Errorf("%s: a setting without a key", name)
			}
		}
		b, _ := dist.Lookup(name)
		for _, path := range b.Paths {
			if _, ok := cfg.Limits.Routes()[rc.limitFor(name, path)]; !ok {
				t.Errorf("%s %s: no setting edge.limits.%s", name, path, rc.limitFor(name, path))
			}
		}
		for path := range rc.limits {
			if !slices.Contains(b.Paths, path) {
				t.Errorf("%s: a limit for %s, which the rule does not decide", name, path)
			}
		}
	}
	for name := range routeConfigs {
		if _, ok := dist.Lookup(name); !ok {
			t.Errorf("routeConfigs has %s, which is no built-in rule", name)
		}
	}
}
