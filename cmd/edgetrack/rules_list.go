package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgetrack/edgetrack/internal/ruleapi"
)

func newRulesListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [rule]",
		Short: "Show each rule's versions, the active one, and what each edge runs",
		Args:  cobra.MaximumNArgs(1),
	}
	withRulesClient(cmd, func(cmd *cobra.Command, c *rulesClient, args []string) error {
		if asJSON {
			var raw json.RawMessage
			if _, err := c.do(cmd.Context(), http.MethodGet, "/rules", "", nil, &raw); err != nil {
				return err
			}
			var b bytes.Buffer
			_ = json.Indent(&b, raw, "", "  ")
			fmt.Fprintln(cmd.OutOrStdout(), b.String())
			return nil
		}
		var l ruleapi.Listing
		if _, err := c.do(cmd.Context(), http.MethodGet, "/rules", "", nil, &l); err != nil {
			return err
		}
		printRuleListing(cmd.OutOrStdout(), &l, args)
		return nil
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the registry's JSON answer")
	return cmd
}

func printRuleListing(w io.Writer, l *ruleapi.Listing, only []string) {
	fmt.Fprintf(w, "manifest version %d\n", l.Version)
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range l.Rules {
			if !yield(n) {
				return
			}
		}
	})
	for _, name := range names {
		if len(only) > 0 && !slices.Contains(only, name) {
			continue
		}
		r := l.Rules[name]
		active := r.Active
		if active == ruleapi.Builtin {
			active = "builtin (" + shortHash(r.Builtin) + ")"
			if r.Builtin == "" {
				active = "none (no built-in module, nothing activated)"
			}
		}
		fmt.Fprintf(w, "\n%s: active %s\n", name, active)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, v := range r.Versions {
			mark := " "
			if v.Active {
				mark = "*"
			}
			fmt.Fprintf(tw, "  %s %s\t%d bytes\t%s\tby %s\t%d vectors\n", mark, v.Hash, v.Size, v.UploadedAt.Format(time.RFC3339), v.UploadedBy, v.VectorCases)
		}
		tw.Flush()
		if len(r.Edges) > 0 {
			fmt.Fprintln(w, "  edges:")
		}
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, e := range r.Edges {
			state := "runs " + shortHash(e.Active)
			if e.Active == r.Builtin && r.Builtin != "" {
				state += " (builtin)"
			}
			if e.Failed != "" {
				state += ", refused " + shortHash(e.Failed) + ": " + e.Error
			}
			fmt.Fprintf(tw, "    %s\t%s\tseen %s\n", e.Edge, state, e.LastSeen.Format(time.RFC3339))
		}
		tw.Flush()
	}
}
