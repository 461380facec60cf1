package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgetrack/edgetrack/internal/ruleapi"
	"github.com/edgetrack/edgetrack/wasm/host"
)

func newRulesActivateCmd() *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "activate <rule> <hash|builtin|file.wasm>",
		Short: "Make a version the active one of a rule",
		Long: `activate makes a stored version of a rule active: edges long-poll the registry and
switch to it within seconds, each after checking it again. The version is a hash
(or a unique prefix of at least 8 hex digits), "builtin" for the module built
into edgetrack, or a .wasm file whose hash is meant.

With --wait, activate then waits until every edge that reports on the rule runs
the version, and fails when one refuses it or the time is up.`,
		Example: `  edgetrack rules activate eye 3fa2c1d4e5f6
  edgetrack rules activate eye scroll.wasm --wait 30s
  edgetrack rules activate eye builtin`,
		Args: cobra.ExactArgs(2),
	}
	withRulesClient(cmd, func(cmd *cobra.Command, c *rulesClient, args []string) error {
		target := args[1]
		if strings.HasSuffix(target, ".wasm") {
			b, err := os.ReadFile(target)
			if err != nil {
				return err
			}
			target = host.Hash(b)
		}
		body, _ := json.Marshal(ruleapi.ActivateRequest{Hash: target})
		var a ruleapi.Activation
		if _, err := c.do(cmd.Context(), http.MethodPost, "/rules/"+url.PathEscape(args[0])+"/activate", "application/json", bytes.NewReader(body), &a); err != nil {
			return err
		}
		return reportRuleActivation(cmd, c, a, wait)
	})
	cmd.Flags().DurationVar(&wait, "wait", 0, "wait this long for the edges to run the version (0: do not wait)")
	return cmd
}

func newRulesRollbackCmd() *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "rollback <rule>",
		Short: "Activate the version that was active before the current one",
		Long: `rollback activates the version that was active before the current one became
active, as the registry's audit log records it; rolling back again goes one step
further back. It fails when there is no earlier version.`,
		Args: cobra.ExactArgs(1),
	}
	withRulesClient(cmd, func(cmd *cobra.Command, c *rulesClient, args []string) error {
		var a ruleapi.Activation
		if _, err := c.do(cmd.Context(), http.MethodPost, "/rules/"+url.PathEscape(args[0])+"/rollback", "", nil, &a); err != nil {
			return err
		}
		return reportRuleActivation(cmd, c, a, wait)
	})
	cmd.Flags().DurationVar(&wait, "wait", 0, "wait this long for the edges to run the version (0: do not wait)")
	return cmd
}

func reportRuleActivation(cmd *cobra.Command, c *rulesClient, a ruleapi.Activation, wait time.Duration) error {
	out := cmd.OutOrStdout()
	if a.Changed {
		fmt.Fprintf(out, "rule %s: active %s (was %s), manifest version %d\n", a.Name, a.Active, a.Previous, a.Version)
	} else {
		fmt.Fprintf(out, "rule %s: %s was already active\n", a.Name, a.Active)
	}
	if wait <= 0 {
		return nil
	}
	return waitForRuleEdges(cmd.Context(), out, c, a.Name, a.Active, wait)
}

// waitForRuleEdges polls GET /rules until every edge that reports on rule runs
// target.
func waitForRuleEdges(ctx context.Context, out io.Writer, c *rulesClient, rule, target string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		var l ruleapi.Listing
		if _, err := c.do(ctx, http.MethodGet, "/rules", "", nil, &l); err != nil {
			return err
		}
		r := l.Rules[rule]
		hash := target
		if target == ruleapi.Builtin {
			hash = r.Builtin
		}
		var behind []string
		for _, e := range r.Edges {
			switch {
			case e.Active == hash:
			case e.Failed == hash:
				return fmt.Errorf("edge %s refused %s: %s", e.Edge, shortHash(hash), e.Error)
			default:
				behind = append(behind, e.Edge+" (runs "+shortHash(e.Active)+")")
			}
		}
		if len(r.Edges) == 0 {
			fmt.Fprintln(out, "no edge has reported on this rule yet; not waiting")
			return nil
		}
		if len(behind) == 0 {
			fmt.Fprintf(out, "all %d edge(s) run %s\n", len(r.Edges), shortHash(hash))
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s, edges still on another version: %s", wait, strings.Join(behind, ", "))
		case <-time.After(250 * time.Millisecond):
		}
	}
}
