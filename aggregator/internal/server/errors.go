package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"

	"github.com/edgetrack/edgetrack/internal/httpjson"
)

// handlerFunc is an HTTP handler that reports failure by returning an error
// instead of writing an error response. Code that knows what went wrong
// attaches the status where the error is born (see httpError); handle turns
// errors into responses. A handlerFunc that returns an error must not have
// written anything.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// httpError is an error with the status it is answered with.
type httpError struct {
	status int
	msg    string      // for the client: says what was wrong
	err    error       // the cause, for the log; may be nil
	header http.Header // added to the response, e.g. Retry-After
}

func (e *httpError) Error() string {
	if e.err == nil || e.err.Error() == e.msg {
		return e.msg
	}
	return e.msg + ": " + e.err.Error()
}

func (e *httpError) Unwrap() error { return e.err }

// errorf returns an httpError whose client message is the formatted text.
func errorf(status int, format string, args ...any) *httpError {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// statusError returns an httpError that shows err's text to the client.
func statusError(status int, err error) *httpError {
	return &httpError{status: status, msg: err.Error(), err: err}
}

// unavailable is the answer to a failure the client should retry: 503 with
// Retry-After, and err only in the log.
func unavailable(msg string, err error) *httpError {
	return &httpError{
		status: http.StatusServiceUnavailable, msg: msg, err: err,
		header: http.Header{"Retry-After": {"1"}},
	}
}

// errorBody is the JSON body of every error response.
type errorBody struct {
	Error string `json:"error"`
}

// handle is the one place of a listener where errors become responses. It
// runs h, writes the error h returns (an httpError with its status, anything
// else as 500), turns a panic into a 500, and counts the request.
func (s *Server) handle(listener string, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w}
		defer func() {
			p := recover()
			if p != nil && p != http.ErrAbortHandler {
				s.metrics.panics.Inc()
				s.log.Error("panic in handler", "method", r.Method, "path", r.URL.Path,
					"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if !rec.wrote {
					s.writeError(rec, r, &httpError{status: http.StatusInternalServerError, msg: "internal server error"})
					p = nil
				}
			}
			status := rec.status
			if !rec.wrote {
				status = http.StatusOK // what net/http sends for a handler that wrote nothing
			}
			s.metrics.requests.WithLabelValues(listener, route(r), strconv.Itoa(status)).Inc()
			if p != nil {
				// The response has started and cannot be fixed: abort it
				// so that the client sees a broken response, not a
				// complete-looking one.
				panic(http.ErrAbortHandler)
			}
		}()
		if err := h(rec, r); err != nil {
			s.writeError(rec, r, err)
		}
	})
}

// writeError answers err.
func (s *Server) writeError(rec *recorder, r *http.Request, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		he = &httpError{status: http.StatusInternalServerError, msg: "internal server error", err: err}
	}
	level := slog.LevelDebug
	if he.status >= 500 && r.Context().Err() == nil { // not just a client that went away
		level = slog.LevelError
	}
	s.log.Log(r.Context(), level, "request failed", "method", r.Method, "path", r.URL.Path,
		"status", he.status, "error", err)
	if rec.wrote {
		s.log.Error("handler returned an error after writing its response", "method", r.Method, "path", r.URL.Path, "error", err)
		return
	}
	for k, v := range he.header {
		rec.Header()[k] = v
	}
	if werr := writeJSON(rec, he.status, errorBody{he.msg}); werr != nil {
		s.log.Error("encoding error response", "error", werr) // a string cannot fail to encode
	}
}

// writeJSON writes v as the JSON response with status (see httpjson.Write).
func writeJSON(w http.ResponseWriter, status int, v any) error { return httpjson.Write(w, status, v) }

// recorder remembers whether and with which status a response was started.
type recorder struct {
	http.ResponseWriter
	wrote  bool
	status int
}

func (r *recorder) WriteHeader(status int) {
	if !r.wrote && status >= 200 { // 1xx responses are informational
		r.wrote, r.status = true, status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wrote {
		r.wrote, r.status = true, http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Flush implements http.Flusher, which handlers that stream need.
func (r *recorder) Flush() {
	if !r.wrote {
		r.wrote, r.status = true, http.StatusOK
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// route is the request's pattern, a bounded metric label.
func route(r *http.Request) string {
	if r.Pattern == "" {
		return "none"
	}
	return r.Pattern
}
