package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgetrack/edgetrack/aggregator"
	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/wasm/dist"
	"github.com/edgetrack/edgetrack/wasm/host"
)

// runRules runs `edgetrack rules args...` in this process and returns what
// it printed.
func runRules(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRulesCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	cmd.SilenceUsage = true
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// repoDir returns a fresh directory inside this module, removed when the
// test ends.
func repoDir(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(root, "_rulestest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestRulesNewEveryKind scaffolds every kind and runs the scaffolds' own
// tests: their vectors.json and the built-in vectors of their route pass
// natively out of the box.
func TestRulesNewEveryKind(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles four packages")
	}
	work := repoDir(t)
	var pkgs []string
	for _, kind := range ruleKinds {
		out, err := runRules(t, "new", filepath.Join(work, kind), "--kind", kind)
		if err != nil {
			t.Fatalf("new --kind %s: %v\n%s", kind, err, out)
		}
		for _, f := range []string{"main.go", "rule.go", "rule_test.go", "vectors.json", "README.md"} {
			if !strings.Contains(out, filepath.Join(work, kind, f)) {
				t.Errorf("new --kind %s did not report creating %s:\n%s", kind, f, out)
			}
		}
		rule, err := os.ReadFile(filepath.Join(work, kind, "rule.go"))
		if err != nil {
			t.Fatal(err)
		}
		if copied := strings.HasPrefix(string(rule), "// Code copied from wasm/rules/"+kind); copied != (kind != "blank") {
			t.Errorf("rule.go of kind %s starts %q", kind, strings.SplitN(string(rule), "\n", 2)[0])
		}
		pkgs = append(pkgs, "./"+filepath.Base(work)+"/"+kind)
	}
	for _, tool := range [][]string{{"vet"}, {"test", "-count=1"}} {
		cmd := exec.Command("go", append(tool, pkgs...)...)
		cmd.Dir = filepath.Dir(work)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", tool[0], err, out)
		}
	}
}

func TestRulesNewRefuses(t *testing.T) {
	if _, err := runRules(t, "new", filepath.Join(t.TempDir(), "x")); err == nil || !strings.Contains(err.Error(), "edgetrack repository") {
		t.Errorf("outside the repository: %v, want an error naming the repository", err)
	}
	work := repoDir(t)
	if _, err := runRules(t, "new", filepath.Join(work, "x"), "--kind", "nope"); err == nil || !strings.Contains(err.Error(), "use one of blank, hamustro, eye, cookiesync") {
		t.Errorf("unknown kind: %v, want the kinds: blank and the built-in rules", err)
	}
	if err := os.WriteFile(filepath.Join(work, "keep.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := runRules(t, "new", work); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("non-empty directory: %v", err)
	}
}

func TestRulesBuildNeedsTinyGo(t *testing.T) {
	work := repoDir(t)
	t.Setenv(envTinyGo, "/nonexistent/tinygo")
	if _, err := runRules(t, "build", work); err == nil || !strings.Contains(err.Error(), "make tools") {
		t.Errorf("with a missing $TINYGO: %v", err)
	}
	t.Setenv(envTinyGo, "")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	if _, err := runRules(t, "build", work); err == nil || !strings.Contains(err.Error(), "run `make tools`") {
		t.Errorf("without TinyGo installed: %v", err)
	}
}

func TestRulesTestCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	eye, _ := dist.Rule("eye")
	ok := write("eye.wasm", eye)
	out, err := runRules(t, "test", ok, "--rule", "eye")
	if err != nil || !strings.Contains(out, "ok "+ok+" as rule eye") {
		t.Fatalf("the built-in eye module: %v\n%s", err, out)
	}

	// A module that answers 200 to anything is no eye rule: every failing
	// vector is printed.
	misbehave, err := os.ReadFile("../../wasm/host/testdata/misbehave.wasm")
	if err != nil {
		t.Fatal(err)
	}
	bad := write("misbehave.wasm", misbehave)
	vecs := write("vectors.json", []byte(`{"vectors": [{"name": "mine", "request": {"path": "/events", "body": "{}"}, "expect": {"status": 201}}]}`))
	out, err = runRules(t, "test", bad, "--rule", "eye", "--vectors", vecs)
	if err == nil {
		t.Fatalf("misbehave as eye passed:\n%s", out)
	}
	if !strings.Contains(out, "FAIL "+bad+" as rule eye (uploaded_vectors)") || !strings.Contains(out, "  - uploaded/mine: status") {
		t.Errorf("output:\n%s", out)
	}
	out, err = runRules(t, "test", bad, "--rule", "eye")
	if err == nil || !strings.Contains(out, "(builtin_vectors)") || strings.Count(out, "  - built-in eye/") < 10 {
		t.Errorf("built-in vectors: %v\n%s", err, out)
	}
	if _, err := runRules(t, "test", ok, "--rule", "nope"); err == nil || !strings.Contains(err.Error(), "unknown rule") {
		t.Errorf("unknown rule: %v", err)
	}
}

// TestRulesPushActivateRollback drives the registry with the CLI, in this
// process, against an aggregator on loopback.
func TestRulesPushActivateRollback(t *testing.T) {
	cfg := config.Default().Aggregator
	cfg.Listen, cfg.AdminListen, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	cfg.Tokens = config.Tokens{Admin: []string{"admin-t"}, Edge: []string{"edge-t"}, Query: []string{"query-t"}}
	agg, err := aggregator.New(aggregator.Options{Config: cfg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- agg.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})

	t.Setenv(envRulesURL, "http://"+agg.AdminAddr())
	t.Setenv(envRulesToken, "")
	wasm, h := hamustroVersion(t)

	if _, err := runRules(t, "push", wasm, "--rule", "hamustro"); err == nil || !strings.Contains(err.Error(), envRulesToken) {
		t.Fatalf("push without a token: %v", err)
	}
	if _, err := runRules(t, "list", "--token", "query-t"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("list with a query token: %v", err)
	}
	t.Setenv(envRulesToken, "admin-t")

	steps := []struct {
		args []string
		want string // in the output, or in the error when fails
		fail bool
	}{
		{[]string{"push", wasm, "--rule", "hamustro"}, "uploaded " + wasm + " as a version of rule hamustro: " + h, false},
		{[]string{"push", wasm, "--rule", "hamustro"}, "rule hamustro already has this version: " + h, false},
		{[]string{"push", wasm, "--rule", "eye"}, "rejected: module refuses the configuration of suite \"built-in eye\"", true},
		{[]string{"list", "hamustro"}, "    " + h, false}, // listed, not active
		{[]string{"activate", "hamustro", h[:8]}, "rule hamustro: active " + h + " (was builtin)", false},
		{[]string{"list"}, "* " + h, false},
		{[]string{"activate", "hamustro", wasm}, "was already active", false},
		{[]string{"activate", "hamustro", "builtin", "--wait", "5s"}, "no edge has reported", false},
		{[]string{"rollback", "hamustro"}, "active " + h + " (was builtin)", false},
		{[]string{"rollback", "hamustro"}, "active builtin (was " + h + ")", false},
		{[]string{"rollback", "hamustro"}, "409 Conflict", true},
		{[]string{"list", "--json"}, `"active": "builtin"`, false},
	}
	for _, s := range steps {
		out, err := runRules(t, s.args...)
		if s.fail {
			if err == nil || !strings.Contains(err.Error(), s.want) {
				t.Fatalf("rules %s: %v, want an error with %q\n%s", strings.Join(s.args, " "), err, s.want, out)
			}
			continue
		}
		if err != nil || !strings.Contains(out, s.want) {
			t.Fatalf("rules %s: %v, want output with %q:\n%s", strings.Join(s.args, " "), err, s.want, out)
		}
	}
}

// hamustroVersion writes another version of the built-in hamustro module
// (a custom section added) to a file, and returns its path and hash.
func hamustroVersion(t *testing.T) (path, hash string) {
	t.Helper()
	b, _ := dist.Rule("hamustro")
	v1 := append(append([]byte{}, b...), 0x00, 0x04, 0x01, 't', 'v', '1')
	path = filepath.Join(t.TempDir(), "v1.wasm")
	if err := os.WriteFile(path, v1, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, host.Hash(v1)
}

// TestRulesHelpReadsWell guards the help text against an identifier leaking
// into prose.
func TestRulesHelpReadsWell(t *testing.T) {
	cmd := newRulesCmd()
	for _, c := range append(cmd.Commands(), cmd) {
		if text := c.Long + c.Short; strings.Contains(text, "ruleScaffold") {
			t.Errorf("%s help names an identifier: %q", c.Name(), text)
		}
	}
}
