package server

import (
	"net/http"
	"strconv"
	"strings"
)

// uiPolicy is the Content-Security-Policy of the dashboard: its own files
// and API only, no inline script, never framed.
const uiPolicy = "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// ui serves the dashboard's files (aggregator/internal/ui) under /ui/. They
// are revalidated on every load (a 304 while unchanged), so an upgraded
// aggregator is seen at once. The files themselves need no token: the page
// asks for one and sends it with its API calls.
func (s *Server) ui(w http.ResponseWriter, r *http.Request) error {
	name := strings.TrimPrefix(r.URL.Path, "/ui/")
	f, ok := s.uiFiles[name]
	if !ok {
		return errorf(http.StatusNotFound, "no such file: %s", r.URL.Path)
	}
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	h.Set("Vary", "Accept-Encoding")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", uiPolicy)
	h.Set("Referrer-Policy", "no-referrer")
	v := f.Pick(r.Header.Get("Accept-Encoding"))
	h.Set("ETag", v.ETag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && f.NotModified(inm) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h.Set("Content-Type", f.ContentType)
	if v.Encoding != "" {
		h.Set("Content-Encoding", v.Encoding)
	}
	h.Set("Content-Length", strconv.Itoa(len(v.Body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(v.Body) // an error means the client went away
	}
	return nil
}
