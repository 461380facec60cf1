package server

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/edgetrack/edgetrack/aggregator/internal/query"
	"github.com/edgetrack/edgetrack/aggregator/internal/store"
)

// export handles GET /v1/export: the change feed, events in the order they
// were stored after a cursor, long-polling with wait. It is what
// `edgetrack sync` follows.
func (s *Server) export(w http.ResponseWriter, r *http.Request) error {
	params, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return errorf(http.StatusBadRequest, "malformed query string: %v", err)
	}
	q, err := query.ParseExport(params, s.maxPage)
	if err != nil {
		return statusError(http.StatusBadRequest, err)
	}
	if s.draining.Load() {
		q.Wait = 0 // answer now: the listener is shutting down
	}
	res, err := s.store.Export(r.Context(), q)
	if errors.Is(err, store.ErrBadCursor) {
		return errorf(http.StatusBadRequest, "after: %s", strings.TrimPrefix(err.Error(), "store: "))
	}
	if err != nil {
		return storeError(err)
	}
	return writeJSON(w, http.StatusOK, query.NewExport(res))
}
