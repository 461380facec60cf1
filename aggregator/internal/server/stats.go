package server

import (
	"net/http"
	"net/url"

	"github.com/edgetrack/edgetrack/aggregator/internal/query"
)

// stats handles GET /stats: event counts per bucket of time, from the
// store's rollups.
func (s *Server) stats(w http.ResponseWriter, r *http.Request) error {
	params, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return errorf(http.StatusBadRequest, "malformed query string: %v", err)
	}
	req, err := query.ParseStats(params)
	if err != nil {
		return statusError(http.StatusBadRequest, err)
	}
	series, err := s.store.Stats(r.Context(), req.Query)
	if err != nil {
		return storeError(err)
	}
	return writeJSON(w, http.StatusOK, query.NewStats(req, series))
}
