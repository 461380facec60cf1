package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/edgetrack/edgetrack/internal/aggtest"
	"github.com/edgetrack/edgetrack/internal/subject"
)

func runErase(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newEraseCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	cmd.SilenceUsage = true
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// TestErase runs `edgetrack erase` against an aggregator on loopback.
func TestErase(t *testing.T) {
	agg := aggtest.Start(t, t.TempDir())
	t.Setenv(envAdminURL, agg.Admin)
	t.Setenv(envAdminToken, "")

	if _, err := runErase(t, "--session-id", "s1"); err == nil || !strings.Contains(err.Error(), envAdminToken) {
		t.Errorf("without a token: %v, want it to name %s", err, envAdminToken)
	}
	t.Setenv(envAdminToken, aggtest.AdminToken)
	for _, args := range [][]string{{}, {"--session-id", "a", "--user-id", "b"}} {
		if _, err := runErase(t, args...); err == nil || !strings.Contains(err.Error(), "exactly one subject") {
			t.Errorf("erase %q: %v, want a request for exactly one subject", args, err)
		}
	}
	if _, err := runErase(t, "--user-id", "a\x00b"); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("a NUL byte: %v, want the aggregator's 400", err)
	}
	out, err := runErase(t, "--uid", "u-1")
	if err != nil {
		t.Fatal(err)
	}
	hash := subject.Subject{Kind: subject.UID, Value: "u-1"}.Hash()
	if !strings.Contains(out, "erasure 1: 0 events of uid "+hash) {
		t.Errorf("output %q", out)
	}
	if _, err := runErase(t, "--device-id", "d", "--token", "wrong"); err == nil || !strings.Contains(err.Error(), "401") && !strings.Contains(err.Error(), "403") {
		t.Errorf("a wrong token: %v", err)
	}
}
