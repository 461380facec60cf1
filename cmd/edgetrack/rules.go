package main

import (
	"os"

	"github.com/spf13/cobra"
)

// Environment variables of `edgetrack rules`. The configuration loader
// leaves EDGETRACK_RULES_* alone (internal/config commandVarPrefixes).
const (
	envRulesURL   = "EDGETRACK_RULES_URL"
	envRulesToken = "EDGETRACK_RULES_TOKEN"
	envTinyGo     = "TINYGO"
)

const defaultAdminURL = "http://127.0.0.1:9091"

// newRulesCmd is `edgetrack rules`: write, build, check and ship rule
// modules to the aggregator's registry. Its subcommands are in files of
// their own: new in rules_scaffold.go, build in rules_build.go, test in
// rules_check.go, and push, list, activate and rollback in rules_push.go,
// rules_list.go and rules_activate.go, which talk to the registry through
// rules_client.go.
func newRulesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Write, build, test and ship rule modules to the aggregator's rule registry",
		Long: `rules takes a rule from a scaffold to the edges; docs/RULES.md walks through it.

  new       scaffold a rule package (inside this repository)
  build     compile it with TinyGo into a .wasm module
  test      run the registry's checks on a module locally
  push      upload a module to the registry (it is not active yet)
  list      show versions, the active one and what each edge runs
  activate  make a version active; edges pick it up within seconds
  rollback  go back to the version active before

push, list, activate and rollback talk to the aggregator's admin listener:
--admin-url (or ` + envRulesURL + `, default ` + defaultAdminURL + `) with an admin token,
--token (or ` + envRulesToken + `).`,
	}
	cmd.AddCommand(newRulesNewCmd(), newRulesBuildCmd(), newRulesTestCmd(), newRulesPushCmd(),
		newRulesListCmd(), newRulesActivateCmd(), newRulesRollbackCmd())
	return cmd
}

// readRuleModule reads a module and, when path is not "", a vectors file.
func readRuleModule(wasmPath, vectorsPath string) (wasm, vecs []byte, err error) {
	if wasm, err = os.ReadFile(wasmPath); err != nil {
		return nil, nil, err
	}
	if vectorsPath != "" {
		if vecs, err = os.ReadFile(vectorsPath); err != nil {
			return nil, nil, err
		}
	}
	return wasm, vecs, nil
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
