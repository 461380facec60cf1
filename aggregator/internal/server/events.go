package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/edgetrack/edgetrack/aggregator/internal/query"
	"github.com/edgetrack/edgetrack/aggregator/internal/store"
)

// listEvents handles GET /events: one page of events, newest first, as
// {"results": [...], "next": "<cursor>"}.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) error {
	params, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return errorf(http.StatusBadRequest, "malformed query string: %v", err)
	}
	q, err := query.ParseEvents(params, s.maxPage)
	if err != nil {
		return statusError(http.StatusBadRequest, err)
	}
	res, err := s.store.Query(r.Context(), q)
	if errors.Is(err, store.ErrBadCursor) {
		return errorf(http.StatusBadRequest, "bad cursor: pass the \"next\" of the previous page with the same session_id")
	}
	if err != nil {
		return storeError(err)
	}
	return writeJSON(w, http.StatusOK, query.NewPage(res))
}

// getEvent handles GET /events/{id}.
func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) error {
	ev, err := s.store.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "event not found")
	}
	if err != nil {
		return storeError(err)
	}
	return writeJSON(w, http.StatusOK, query.NewEvent(ev))
}

// storeError is the answer to a failed store read: 503 when retrying may
// help (the store is closing, the request was cancelled), else 500.
func storeError(err error) error {
	if errors.Is(err, store.ErrClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return unavailable("the store is unavailable; retry", err)
	}
	return fmt.Errorf("reading the store: %w", err)
}
