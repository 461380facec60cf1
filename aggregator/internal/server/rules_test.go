package server

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/edgetrack/edgetrack/aggregator/internal/registry"
)

// TestRuleErrors answers each of the registry's errors through handle: the
// status ruleError gives it, and the message without the package's prefix.
func TestRuleErrors(t *testing.T) {
	s := newTestServer(t)
	for _, tc := range []struct {
		err    error
		status int
		msg    string
	}{
		{fmt.Errorf("%w %q", registry.ErrUnknownRule, "nope"), http.StatusNotFound, `unknown rule "nope"`},
		{fmt.Errorf("%w abc", registry.ErrUnknownVersion), http.StatusNotFound, "unknown version abc"},
		{fmt.Errorf("%w: rule eye has none", registry.ErrNoPrevious), http.StatusConflict, "no previous version: rule eye has none"},
		{registry.ErrAmbiguous, http.StatusConflict, "ambiguous hash prefix"},
		{registry.ErrTooManyEdges, http.StatusConflict, "too many edges"},
		{registry.ErrClosed, http.StatusServiceUnavailable, "closed"},
		{&registry.Rejection{Reason: registry.ReasonImports, Detail: "imports env.x"}, http.StatusBadRequest, "rejected: imports env.x"},
		{errors.New("registry: disk on fire"), http.StatusInternalServerError, "internal server error"},
	} {
		t.Run(tc.msg, func(t *testing.T) {
			url := serve(t, s, func(w http.ResponseWriter, r *http.Request) error { return ruleError(tc.err) })
			status, _, msg := errorResponse(t, url)
			if status != tc.status || msg != tc.msg {
				t.Errorf("got %d %q, want %d %q", status, msg, tc.status, tc.msg)
			}
		})
	}
}
