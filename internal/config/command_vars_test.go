package config

import "testing"

func TestRulesCommandVariablesAreNotSettings(t *testing.T) {
	if _, err := Load("", []string{"EDGETRACK_RULES_URL=http://127.0.0.1:9091", "EDGETRACK_RULES_TOKEN=t", "EDGETRACK_ADMIN_URL=http://127.0.0.1:9091", "EDGETRACK_ADMIN_TOKEN=t"}); err != nil {
		t.Fatalf("the rules and erase commands' variables were taken for settings: %v", err)
	}
	// Only the prefix is exempt: a misspelt setting is still reported.
	if _, err := Load("", []string{"EDGETRACK_RULE_TOKEN=t"}); err == nil {
		t.Fatal("EDGETRACK_RULE_TOKEN was accepted")
	}
}
