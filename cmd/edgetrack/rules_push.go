package main

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/edgetrack/edgetrack/aggregator"
	"github.com/edgetrack/edgetrack/internal/ruleapi"
)

func newRulesPushCmd() *cobra.Command {
	var rule, vectorsPath string
	cmd := &cobra.Command{
		Use:   "push <file.wasm> --rule <name>",
		Short: "Upload a module to the registry as a new version of a rule (not activated)",
		Long: `push uploads a module, and the vectors of --vectors, to the registry. The registry
runs the checks of ` + "`edgetrack rules test`" + ` and stores the version only if all pass;
it does not activate it (see activate). Pushing the same bytes again answers with
the version stored before.`,
		Example: `  edgetrack rules push scroll.wasm --rule eye --vectors myrules/scroll/vectors.json`,
		Args:    cobra.ExactArgs(1),
	}
	withRulesClient(cmd, func(cmd *cobra.Command, c *rulesClient, args []string) error {
		wasm, vecs, err := readRuleModule(args[0], vectorsPath)
		if err != nil {
			return err
		}
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		part, _ := mw.CreateFormFile("module", filepath.Base(args[0]))
		part.Write(wasm)
		if vecs != nil {
			part, _ = mw.CreateFormFile("vectors", filepath.Base(vectorsPath))
			part.Write(vecs)
		}
		mw.Close()
		var u ruleapi.Uploaded
		status, err := c.do(cmd.Context(), http.MethodPut, "/rules/"+url.PathEscape(rule), mw.FormDataContentType(), &body, &u)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if status == http.StatusCreated {
			fmt.Fprintf(out, "uploaded %s as a version of rule %s: %s (%d bytes)\n", args[0], rule, u.Hash, u.Size)
		} else {
			fmt.Fprintf(out, "rule %s already has this version: %s (%d bytes, active: %t)\n", rule, u.Hash, u.Size, u.Active)
		}
		if !u.Active {
			fmt.Fprintf(out, "activate it with: edgetrack rules activate %s %s\n", rule, u.Hash)
		}
		return nil
	})
	cmd.Flags().StringVar(&rule, "rule", "", "the rule (route) the module is for: "+strings.Join(aggregator.RuleNames(), ", "))
	cmd.Flags().StringVar(&vectorsPath, "vectors", "", "a vectors file (JSON) to upload with the module")
	_ = cmd.MarkFlagRequired("rule")
	return cmd
}
