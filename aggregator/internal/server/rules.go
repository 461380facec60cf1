package server

import (
	"errors"
	"net/http"

	"github.com/edgetrack/edgetrack/aggregator/internal/registry"
	"github.com/edgetrack/edgetrack/internal/auth"
)

// publicRules registers the rule registry's endpoints for edges.
func (s *Server) publicRules(h func(string, handlerFunc)) {
	if s.rules == nil {
		return
	}
	h("/v1/rules/manifest", get(s.authorize(auth.Edge, fromRegistry(s.rules.HandleManifest))))
	h("/v1/rules/modules/{hash}", get(s.authorize(auth.Edge, fromRegistry(s.rules.HandleModule))))
	h("/v1/rules/status", allow(s.authorize(auth.Edge, fromRegistry(s.rules.HandleStatus)), http.MethodPost))
}

// adminRules registers the rule registry's endpoints for operators.
func (s *Server) adminRules(h func(string, handlerFunc)) {
	if s.rules == nil {
		return
	}
	h("/rules", get(s.authorize(auth.Admin, fromRegistry(s.rules.HandleList))))
	h("/rules/{name}", allow(s.authorize(auth.Admin, fromRegistry(s.rules.HandleUpload)), http.MethodPut))
	h("/rules/{name}/activate", allow(s.authorize(auth.Admin, fromRegistry(s.rules.HandleActivate)), http.MethodPost))
	h("/rules/{name}/rollback", allow(s.authorize(auth.Admin, fromRegistry(s.rules.HandleRollback)), http.MethodPost))
}

// fromRegistry turns the registry's *registry.Error into this package's
// httpError, so that handle answers it like any other.
func fromRegistry(h func(http.ResponseWriter, *http.Request) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		err := h(w, r)
		if re, ok := errors.AsType[*registry.Error](err); ok {
			return &httpError{status: re.Status, msg: re.Msg, err: re.Err}
		}
		return err
	}
}
