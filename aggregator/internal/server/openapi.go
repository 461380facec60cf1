package server

import (
	_ "embed"
	"net/http"
	"slices"
	"strconv"
	"sync"
)

// openAPIDoc is the OpenAPI 3.0 document of both listeners' routes, served
// at GET /openapi.json. TestOpenAPI checks it against the routes the muxes
// register and the parameters the handlers read: add a route or a
// parameter, and document it there.
//
//go:embed openapi.json
var openAPIDoc []byte

func openAPI(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(openAPIDoc)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(openAPIDoc)
	return nil
}

// routes records the patterns registered on each listener's mux, so that
// tests can compare them with the OpenAPI document.
type routes struct {
	mu         sync.Mutex
	byListener map[string][]string
}

func (r *routes) add(listener, pattern string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byListener == nil {
		r.byListener = map[string][]string{}
	}
	if !slices.Contains(r.byListener[listener], pattern) {
		r.byListener[listener] = append(r.byListener[listener], pattern)
	}
}

// list returns the patterns of listener in registration order.
func (r *routes) list(listener string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.byListener[listener])
}
