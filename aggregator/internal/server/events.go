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

// listEvents handles GET /events: one page of the events matching the
// filters, newest first, with the number of all of them and links to the
// neighbouring pages (see query.Events for the two ways of paging).
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) error {
	params, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return errorf(http.StatusBadRequest, "malformed query string: %v", err)
	}
	req, err := query.ParseEvents(params, s.maxPage)
	if err != nil {
		return statusError(http.StatusBadRequest, err)
	}
	res, err := s.store.Query(r.Context(), req.Query)
	if errors.Is(err, store.ErrBadCursor) {
		return errorf(http.StatusBadRequest, "bad cursor: follow the \"next\" link of the previous page, which keeps its filters")
	}
	if err != nil {
		return storeError(err)
	}
	if !req.Cursor && req.Page > 1 && len(res.Events) == 0 {
		// As Django REST framework answers a page past the end.
		return errorf(http.StatusNotFound, "invalid page: page %d is past the last page", req.Page)
	}
	count, err := s.store.Count(r.Context(), req.Query)
	if err != nil {
		return storeError(err)
	}
	return writeJSON(w, http.StatusOK, query.NewPage(req, requestURL(r), count, res))
}

// requestURL is the absolute URL of r as its client addressed it: the Host
// header, and https when the connection is TLS. (Forwarded headers are not
// trusted; put a proxy that terminates TLS in front and links say http.)
func requestURL(r *http.Request) *url.URL {
	u := &url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	if r.TLS != nil {
		u.Scheme = "https"
	}
	return u
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
