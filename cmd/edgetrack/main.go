// Command edgetrack is the single binary of edgetrack: edge, aggregator,
// both at once (dev), and the operator's tools. main only wires: it parses
// flags, loads configuration, constructs components and runs them until a
// signal arrives.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/edgetrack/edgetrack/internal/version"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "edgetrack",
		Short:         "Edge event collection: edges accept tracking events, an aggregator stores and serves them",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.AddCommand(newEdgeCmd(), newAggregatorCmd(), newDevCmd(), newSendCmd(), newRulesCmd(), newSyncCmd(), newEraseCmd(), newVersionCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "edgetrack", version.String())
		},
	}
}
