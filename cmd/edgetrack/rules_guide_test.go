package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/aggregator"
	"github.com/edgetrack/edgetrack/edge"
	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/internal/ruleapi"
)

// The guide docs/RULES.md marks what a reader does with HTML comments, and
// TestRulesGuide does exactly that, in order:
//
//	<!-- guide:run stdout="text" -->   the next ```sh block runs in bash;
//	                                    it must succeed, and print text
//	                                    when given
//	<!-- guide:edit path -->           the next fenced block is text that
//	<!-- guide:with -->                occurs once in path; the block after
//	                                    guide:with replaces it
//
// Commands run in a directory inside this module (so that ./myrules/...
// is a package of it) with `edgetrack` on PATH, EDGETRACK_RULES_URL and
// EDGETRACK_RULES_TOKEN pointing at an aggregator's admin listener, and
// EDGE at an edge that follows the aggregator's registry. Both run in this
// process.

const guidePath = "../../docs/RULES.md"

type guideStep struct {
	line   int
	kind   string // run or edit
	script string // run: the shell block
	stdout string // run: text the output must contain
	path   string // edit: the file
	find   string // edit: the text to replace
	with   string // edit: its replacement
}

var guideMarker = regexp.MustCompile(`^<!-- guide:(run|edit|with)(?: (.*?))? -->$`)

// parseGuide returns the steps of the guide at path.
func parseGuide(tb testing.TB, path string) []guideStep {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	// block returns the fenced block that starts after line i (blank lines
	// skipped) and the index of its closing fence.
	block := func(i int) (string, int) {
		j := i + 1
		for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
			j++
		}
		if j >= len(lines) || !strings.HasPrefix(lines[j], "```") {
			tb.Fatalf("%s:%d: a guide marker must be followed by a fenced block", path, i+1)
		}
		start := j + 1
		for j = start; j < len(lines) && !strings.HasPrefix(lines[j], "```"); j++ {
		}
		if j == len(lines) {
			tb.Fatalf("%s:%d: unterminated fenced block", path, start)
		}
		return strings.Join(lines[start:j], "\n"), j
	}
	var steps []guideStep
	for i := 0; i < len(lines); i++ {
		m := guideMarker.FindStringSubmatch(strings.TrimSpace(lines[i]))
		if m == nil {
			continue
		}
		switch m[1] {
		case "run":
			s := guideStep{line: i + 1, kind: "run"}
			if arg := m[2]; arg != "" {
				v, ok := strings.CutPrefix(arg, "stdout=")
				if !ok || len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
					tb.Fatalf("%s:%d: guide:run takes stdout=\"...\"", path, i+1)
				}
				s.stdout = v[1 : len(v)-1]
			}
			s.script, i = block(i)
			steps = append(steps, s)
		case "edit":
			s := guideStep{line: i + 1, kind: "edit", path: m[2]}
			s.find, i = block(i)
			j := i + 1
			for j < len(lines) && strings.TrimSpace(lines[j]) == "" {
				j++
			}
			if j >= len(lines) || guideMarker.FindStringSubmatch(strings.TrimSpace(lines[j])) == nil ||
				!strings.Contains(lines[j], "guide:with") {
				tb.Fatalf("%s:%d: guide:edit must be followed by its block and guide:with", path, s.line)
			}
			s.with, i = block(j)
			steps = append(steps, s)
		case "with":
			tb.Fatalf("%s:%d: guide:with without guide:edit", path, i+1)
		}
	}
	return steps
}

// TestRulesGuideIsMarked keeps the guide's markers from rotting silently:
// it needs no TinyGo.
func TestRulesGuideIsMarked(t *testing.T) {
	var all strings.Builder
	for _, s := range parseGuide(t, guidePath) {
		all.WriteString(s.script + "\n")
	}
	for _, cmd := range []string{"edgetrack rules new", "go test", "edgetrack rules build", "edgetrack rules test",
		"edgetrack rules push", "edgetrack rules activate", "$EDGE/events", "edgetrack rules rollback"} {
		if !strings.Contains(all.String(), cmd) {
			t.Errorf("the guide runs no %q", cmd)
		}
	}
}

// TestRulesGuideCLI is not a test: TestRulesGuide runs this test binary as
// `edgetrack` (with EDGETRACK_RULES_GUIDE_CLI=1), and then it runs the root
// command, with `rules` added when main.go does not have it yet, on the
// arguments after "--".
func TestRulesGuideCLI(t *testing.T) {
	if os.Getenv("EDGETRACK_RULES_GUIDE_CLI") != "1" {
		return
	}
	var args []string
	for i, a := range os.Args {
		if a == "--" {
			args = os.Args[i+1:]
			break
		}
	}
	root := newRootCmd()
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

// lockedBuffer collects the services' logs for a failing test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// guideServices runs an aggregator and an edge that follows its registry,
// configured like `edgetrack dev`, until the test ends. It returns the
// admin URL, an admin token and the edge's URL.
func guideServices(t *testing.T) (adminURL, adminToken, edgeURL string) {
	t.Helper()
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("aggregator and edge logs:\n%s", logs.String())
		}
	})
	cfg, agg, e := devServices(t, log, "guide-edge")
	adminURL, adminToken = "http://"+agg.AdminAddr(), cfg.Aggregator.Tokens.Admin[0]
	// The guide's `activate --wait` waits for the edges that reported: let
	// the edge report once first. (A safety net, not a timing assertion.)
	deadline := time.Now().Add(time.Minute)
	for {
		req, _ := http.NewRequest(http.MethodGet, adminURL+"/rules", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		var l ruleapi.Listing
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&l)
			resp.Body.Close()
		}
		if len(l.Rules["eye"].Edges) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the edge did not report its rules to the registry")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return adminURL, adminToken, "http://" + e.Addr()
}

// devServices runs an aggregator and an edge configured like `edgetrack dev`
// on loopback ports of their own, logging to log, until the test ends (the
// edge stops first). It returns the configuration they run with.
func devServices(t *testing.T, log *slog.Logger, edgeID string) (*config.Config, *aggregator.Aggregator, *edge.Edge) {
	t.Helper()
	cfg := config.Default()
	if err := devDefaults(cfg, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	cfg.Aggregator.Listen, cfg.Aggregator.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Edge.Listen, cfg.Edge.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Edge.ID = edgeID
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	agg, err := aggregator.New(aggregator.Options{Config: cfg.Aggregator, Logger: log.With("process", "aggregator")})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Edge.AggregatorURL = "http://" + agg.Addr()
	e, err := edge.New(context.Background(), edge.Options{Config: cfg.Edge, Logger: log.With("process", "edge")})
	if err != nil {
		agg.Close()
		t.Fatal(err)
	}
	aggCtx, stopAgg := context.WithCancel(context.Background())
	edgeCtx, stopEdge := context.WithCancel(context.Background())
	aggDone, edgeDone := make(chan error, 1), make(chan error, 1)
	go func() { aggDone <- agg.Run(aggCtx) }()
	go func() { edgeDone <- e.Run(edgeCtx) }()
	t.Cleanup(func() {
		stopEdge()
		if err := <-edgeDone; err != nil {
			t.Errorf("edge: %v", err)
		}
		stopAgg()
		if err := <-aggDone; err != nil {
			t.Errorf("aggregator: %v", err)
		}
	})
	return cfg, agg, e
}

// TestRulesGuide follows docs/RULES.md literally. It needs TinyGo; without
// it the test is skipped, unless CI is set.
func TestRulesGuide(t *testing.T) {
	if _, err := tinygoPath(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and the rules guide needs TinyGo: %v", err)
		}
		t.Skipf("the rules guide needs TinyGo (run `make tools`): %v", err)
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("the rules guide needs curl")
	}
	steps := parseGuide(t, guidePath)

	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	// Inside the module, so that ./myrules/... is a package of it; "_"
	// keeps it out of ./... should the test be killed before cleanup.
	work, err := os.MkdirTemp(root, "_rulesguide-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	shim := fmt.Sprintf("#!/bin/sh\nEDGETRACK_RULES_GUIDE_CLI=1 exec '%s' -test.run='^TestRulesGuideCLI$' -- \"$@\"\n", exe)
	if err := os.WriteFile(filepath.Join(bin, "edgetrack"), []byte(shim), 0o755); err != nil {
		t.Fatal(err)
	}

	adminURL, token, edgeURL := guideServices(t)
	env := append(os.Environ(),
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		envRulesURL+"="+adminURL,
		envRulesToken+"="+token,
		"EDGE="+edgeURL,
	)

	for _, s := range steps {
		switch s.kind {
		case "edit":
			p := filepath.Join(work, filepath.FromSlash(s.path))
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatalf("RULES.md:%d: %v", s.line, err)
			}
			if n := strings.Count(string(b), s.find); n != 1 {
				t.Fatalf("RULES.md:%d: the text to replace occurs %d times in %s, want once:\n%s", s.line, n, s.path, s.find)
			}
			if err := os.WriteFile(p, []byte(strings.Replace(string(b), s.find, s.with, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
		case "run":
			cmd := exec.Command("bash", "-c", "set -euo pipefail\n"+s.script)
			cmd.Dir, cmd.Env = work, env
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			t.Logf("RULES.md:%d: $ %s\n%s%s", s.line, firstLine(s.script), stdout.String(), stderr.String())
			if err != nil {
				t.Fatalf("RULES.md:%d: %v\nstdout:\n%s\nstderr:\n%s", s.line, err, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), s.stdout) {
				t.Fatalf("RULES.md:%d: output does not contain %q:\n%s", s.line, s.stdout, stdout.String())
			}
		}
	}
}

func firstLine(s string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Scan()
	return sc.Text()
}
