// Package testenv says whether tests must find the servers and programs
// they need (in CI) or may skip without them (elsewhere). internal/dbtest
// (database servers) and internal/browsertest (Chromium) ask it.
package testenv

import (
	"os"
	"testing"
)

// RequireVar, set to anything, makes a missing server fail the test instead
// of skipping it; .ci/run sets it. CI, set by CI systems, does the same.
const RequireVar = "EDGETRACK_TEST_REQUIRE_SERVERS"

// Required reports whether a missing server fails tests.
func Required() bool { return os.Getenv("CI") != "" || os.Getenv(RequireVar) != "" }

// Missing ends t because what is not there (err says why): a failure when
// servers are required, a skip otherwise. hint says how to get it.
func Missing(t testing.TB, what, hint string, err error) {
	t.Helper()
	if Required() {
		t.Fatalf("%s is required (%s is set): %v; %s", what, RequireVar, err, hint)
	}
	t.Skipf("no %s: %v; %s", what, err, hint)
}
