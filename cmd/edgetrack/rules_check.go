package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/edgetrack/edgetrack/aggregator"
	"github.com/edgetrack/edgetrack/wasm/dist"
	"github.com/edgetrack/edgetrack/wasm/host"
	"github.com/edgetrack/edgetrack/wasm/vectors"
)

func newRulesTestCmd() *cobra.Command {
	var rule, vectorsPath string
	cmd := &cobra.Command{
		Use:   "test <file.wasm> --rule <name>",
		Short: "Run the registry's upload checks on a module, locally",
		Long: `test runs on a module what the registry runs before it accepts an upload: it
compiles, imports only what the ABI provides, exports what it requires, fits the
memory cap and initialises; it passes the vectors of --vectors; and it passes the
built-in vectors of the route --rule. Every failure is printed; the exit status
is not zero when there is one.`,
		Example: `  edgetrack rules test scroll.wasm --rule eye --vectors myrules/scroll/vectors.json`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			wasm, vecs, err := readRuleModule(args[0], vectorsPath)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			err = aggregator.CheckRule(cmd.Context(), rule, wasm, vecs)
			if rej, ok := errors.AsType[*aggregator.RuleRejection](err); ok {
				fmt.Fprintf(out, "FAIL %s as rule %s (%s): %s\n", args[0], rule, rej.Reason, rej.Detail)
				for _, f := range rej.Failures {
					fmt.Fprintln(out, "  -", f)
				}
				return fmt.Errorf("%s would be rejected: %s", args[0], rej.Reason)
			}
			if err != nil {
				return err
			}
			uploaded := 0
			if vecs != nil {
				f, _ := vectors.Parse(vecs) // CheckRule parsed it already
				uploaded = len(f.Vectors)
			}
			builtin := 0
			for _, s := range dist.Vectors(rule) {
				builtin += len(s.Cases)
			}
			fmt.Fprintf(out, "ok %s as rule %s: sha256 %s; %d uploaded and %d built-in vectors pass\n",
				args[0], rule, host.Hash(wasm), uploaded, builtin)
			return nil
		},
	}
	cmd.Flags().StringVar(&rule, "rule", "", "the rule (route) the module is for: "+strings.Join(aggregator.RuleNames(), ", "))
	cmd.Flags().StringVar(&vectorsPath, "vectors", "", "a vectors file (JSON, see wasm/vectors.File) to run too")
	_ = cmd.MarkFlagRequired("rule")
	return cmd
}
