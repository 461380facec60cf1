package edge

import (
	"testing"

	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/wasm/dist"
)

// TestEveryBuiltinRuleIsConfigured: each row of wasm/dist's table has the
// edge's settings for it, and there are none for rules not in the table.
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
	}
	for name := range routeConfigs {
		if _, ok := dist.Lookup(name); !ok {
			t.Errorf("routeConfigs has %s, which is no built-in rule", name)
		}
	}
}
