package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgetrack/edgetrack/aggregator"
	"github.com/edgetrack/edgetrack/internal/ruleapi"
	"github.com/edgetrack/edgetrack/wasm/dist"
	"github.com/edgetrack/edgetrack/wasm/host"
	"github.com/edgetrack/edgetrack/wasm/vectors"
)

// Environment variables of `edgetrack rules`. The configuration loader
// leaves EDGETRACK_RULES_* alone (internal/config commandVarPrefixes).
const (
	envRulesURL   = "EDGETRACK_RULES_URL"
	envRulesToken = "EDGETRACK_RULES_TOKEN"
	envTinyGo     = "TINYGO"
)

const defaultAdminURL = "http://127.0.0.1:9091"

// tinygoFlags are the flags every rule module is built with (docs/ABI.md).
var tinygoFlags = []string{"-target=wasip1", "-buildmode=c-shared", "-scheduler=none", "-no-debug", "-opt=2"}

// newRulesCmd is `edgetrack rules`: write, build, check and ship rule
// modules to the aggregator's registry.
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

func newRulesNewCmd() *cobra.Command {
	var kind string
	cmd := &cobra.Command{
		Use:   "new <dir>",
		Short: "Scaffold a rule package: main.go, rule.go, rule_test.go, vectors.json, README.md",
		Long: `new writes a rule package into <dir>, which must be inside this repository
(e.g. ./myrules/scroll): the package has no go.mod of its own and builds with the
repository's, so the guest SDK it uses is the one the edges and the registry speak.

--kind eye, hamustro or cookiesync start rule.go from a copy of that built-in
rule (wasm/rules/<kind>) and make rule_test.go run the route's built-in vectors;
blank is a small rule to start from scratch.`,
		Example: `  edgetrack rules new ./myrules/scroll --kind eye
  go test ./myrules/scroll`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			files, notes, err := newScaffold(args[0], kind)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, n := range notes {
				fmt.Fprintln(out, "note:", n)
			}
			for _, f := range files {
				fmt.Fprintln(out, "created", f)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&kind, "kind", "blank", "template: "+strings.Join(ruleKinds, ", "))
	return cmd
}

// tinygoPath returns the TinyGo to build with: $TINYGO, or where `make
// tools` installs it.
func tinygoPath() (string, error) {
	if p := os.Getenv(envTinyGo); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			return "", fmt.Errorf("TinyGo not found at $%s=%s: run `make tools`, or point %s at a TinyGo 0.41: %w", envTinyGo, p, envTinyGo, err)
		}
		return p, nil
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("TinyGo: no $%s and no home directory: %w", envTinyGo, err)
		}
		cache = filepath.Join(home, ".cache")
	}
	p := filepath.Join(cache, "edgetrack", "tools", "bin", "tinygo")
	if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("TinyGo not found at %s: run `make tools` (or set %s)", p, envTinyGo)
	}
	return p, nil
}

func newRulesBuildCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "build <dir>",
		Short: "Compile a rule package into a .wasm module with TinyGo",
		Long: `build runs TinyGo (from $TINYGO, or where ` + "`make tools`" + ` installs it) on the
package in <dir>:

  tinygo build ` + strings.Join(tinygoFlags, " ") + ` -o <file> ./<dir>

The default output is <name>.wasm in the current directory, <name> being the
directory's base name.`,
		Example: `  edgetrack rules build ./myrules/scroll -o scroll.wasm`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			root, rel, err := inEdgetrackModule(dir)
			if err != nil {
				return err
			}
			tinygo, err := tinygoPath()
			if err != nil {
				return err
			}
			if out == "" {
				out = filepath.Base(rel) + ".wasm"
			}
			absOut, err := filepath.Abs(out)
			if err != nil {
				return err
			}
			argv := append([]string{"build"}, tinygoFlags...)
			argv = append(argv, "-o", absOut, "./"+rel)
			c := exec.CommandContext(cmd.Context(), tinygo, argv...)
			c.Dir = root
			var stderr bytes.Buffer
			c.Stdout, c.Stderr = cmd.OutOrStdout(), &stderr
			runErr := c.Run()
			for _, line := range strings.SplitAfter(stderr.String(), "\n") {
				// LLVM's noise about wasm features TinyGo passes; the
				// Makefile filters it too.
				if line != "" && !strings.Contains(line, "is not a recognized feature") {
					fmt.Fprint(cmd.ErrOrStderr(), line)
				}
			}
			if runErr != nil {
				return fmt.Errorf("tinygo build ./%s: %w", rel, runErr)
			}
			b, err := os.ReadFile(absOut)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "built %s: %d bytes, sha256 %s\n", out, len(b), host.Hash(b))
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "the .wasm file to write (default <name>.wasm)")
	return cmd
}

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

// rulesClient talks to the registry on the aggregator's admin listener.
type rulesClient struct {
	url, token string
	http       *http.Client
}

// rulesClientFlags adds --admin-url and --token to cmd and returns a function
// that makes the client from them (or the environment).
func rulesClientFlags(cmd *cobra.Command) func() (*rulesClient, error) {
	var u, token string
	cmd.Flags().StringVar(&u, "admin-url", "", "the aggregator's admin listener (default $"+envRulesURL+" or "+defaultAdminURL+")")
	cmd.Flags().StringVar(&token, "token", "", "an admin token (aggregator.tokens.admin; default $"+envRulesToken+")")
	return func() (*rulesClient, error) {
		if u == "" {
			u = os.Getenv(envRulesURL)
		}
		if u == "" {
			u = defaultAdminURL
		}
		if token == "" {
			token = os.Getenv(envRulesToken)
		}
		if token == "" {
			return nil, fmt.Errorf("no admin token: pass --token or set %s", envRulesToken)
		}
		if _, err := url.ParseRequestURI(u); err != nil {
			return nil, fmt.Errorf("--admin-url %q: %w", u, err)
		}
		// Uploads are validated before the answer: allow for it.
		return &rulesClient{url: strings.TrimRight(u, "/"), token: token, http: &http.Client{Timeout: 3 * time.Minute}}, nil
	}
}

// do sends a request and decodes a 2xx JSON answer into out (when not
// nil). Other answers become an error with the server's message.
func (c *rulesClient) do(ctx context.Context, method, path, contentType string, body io.Reader, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.url+path, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, msg)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

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
	client := rulesClientFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := client()
		if err != nil {
			return err
		}
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
	}
	cmd.Flags().StringVar(&rule, "rule", "", "the rule (route) the module is for: "+strings.Join(aggregator.RuleNames(), ", "))
	cmd.Flags().StringVar(&vectorsPath, "vectors", "", "a vectors file (JSON) to upload with the module")
	_ = cmd.MarkFlagRequired("rule")
	return cmd
}

func newRulesListCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list [rule]",
		Short: "Show each rule's versions, the active one, and what each edge runs",
		Args:  cobra.MaximumNArgs(1),
	}
	client := rulesClientFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := client()
		if err != nil {
			return err
		}
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
	}
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

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

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
	client := rulesClientFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := client()
		if err != nil {
			return err
		}
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
	}
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
	client := rulesClientFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		var a ruleapi.Activation
		if _, err := c.do(cmd.Context(), http.MethodPost, "/rules/"+url.PathEscape(args[0])+"/rollback", "", nil, &a); err != nil {
			return err
		}
		return reportRuleActivation(cmd, c, a, wait)
	}
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
