package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/edgetrack/edgetrack/internal/auth"

	"github.com/edgetrack/edgetrack/internal/httpjson"
	"github.com/edgetrack/edgetrack/internal/ruleapi"
)

// Error is an error with the HTTP status it is answered with. The
// registry's handlers return it (or another error, answered 500) and never
// write error responses themselves; the server turns it into a response.
type Error struct {
	Status int
	Msg    string // for the client
	Err    error  // the cause, for the log; may be nil
}

func (e *Error) Error() string {
	if e.Err == nil || e.Err.Error() == e.Msg {
		return e.Msg
	}
	return e.Msg + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

func errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Msg: fmt.Sprintf(format, args...)}
}

// statusOf attaches the status of the registry's errors.
func statusOf(err error) error {
	var status int
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrUnknownRule), errors.Is(err, ErrUnknownVersion):
		status = http.StatusNotFound
	case errors.Is(err, ErrNoPrevious), errors.Is(err, ErrAmbiguous), errors.Is(err, ErrTooManyEdges):
		status = http.StatusConflict
	case errors.Is(err, ErrClosed):
		status = http.StatusServiceUnavailable
	default:
		if _, ok := errors.AsType[*Rejection](err); ok {
			return &Error{Status: http.StatusBadRequest, Msg: "rejected: " + err.Error(), Err: err}
		}
		return err
	}
	return &Error{Status: status, Msg: strings.TrimPrefix(err.Error(), "registry: "), Err: err}
}

// actor is the fingerprint of the request's bearer token.
func actor(r *http.Request) string {
	tok, _ := auth.BearerToken(r.Header.Get("Authorization"))
	return Fingerprint(tok)
}

// HandleUpload is PUT /rules/{name} (admin): the body is the module
// (Content-Type application/wasm), or multipart/form-data with a part
// "module" and an optional part "vectors" (JSON, see wasm/vectors.File).
// 201 with the new version, 200 when the same bytes were uploaded before,
// 400 with the reason when a check fails, 413 over the size limit.
func (reg *Registry) HandleUpload(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if !reg.Known(name) {
		return statusOf(fmt.Errorf("%w %q; the registry serves %s", ErrUnknownRule, name, strings.Join(reg.names, ", ")))
	}
	who := actor(r)
	if r.ContentLength > reg.maxModule {
		return reg.tooLarge(name, who)
	}
	body := http.MaxBytesReader(w, r.Body, reg.maxModule)
	wasm, vecs, err := readUpload(r, body)
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return reg.tooLarge(name, who)
	}
	if err != nil {
		return err
	}
	u, created, err := reg.Upload(r.Context(), name, wasm, vecs, who)
	if err != nil {
		return statusOf(err)
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return writeJSON(w, status, u)
}

func (reg *Registry) tooLarge(name, who string) error {
	err := reg.RejectTooLarge(name, who)
	return &Error{Status: http.StatusRequestEntityTooLarge, Msg: err.Error()}
}

// readUpload reads the module and the vectors (nil when none) of an upload.
func readUpload(r *http.Request, body io.Reader) (wasm, vecs []byte, err error) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		ct = ""
	}
	switch ct {
	case "application/wasm":
		b, err := io.ReadAll(body)
		return b, nil, err
	case "multipart/form-data":
	default:
		return nil, nil, errorf(http.StatusUnsupportedMediaType,
			"send the module as Content-Type application/wasm, or multipart/form-data with parts \"module\" and \"vectors\"")
	}
	r.Body = io.NopCloser(body)
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, nil, &Error{Status: http.StatusBadRequest, Msg: "multipart body: " + err.Error(), Err: err}
	}
	seen := map[string]bool{}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				return nil, nil, err
			}
			return nil, nil, &Error{Status: http.StatusBadRequest, Msg: "multipart body: " + err.Error(), Err: err}
		}
		field := p.FormName()
		if field != "module" && field != "vectors" {
			return nil, nil, errorf(http.StatusBadRequest, "unexpected part %q: the parts are \"module\" and \"vectors\"", field)
		}
		if seen[field] {
			return nil, nil, errorf(http.StatusBadRequest, "part %q given twice", field)
		}
		seen[field] = true
		b, err := io.ReadAll(p)
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				return nil, nil, err
			}
			return nil, nil, &Error{Status: http.StatusBadRequest, Msg: "multipart body: " + err.Error(), Err: err}
		}
		if field == "module" {
			wasm = b
		} else {
			vecs = b
		}
	}
	if !seen["module"] {
		return nil, nil, errorf(http.StatusBadRequest, "no part \"module\"")
	}
	if seen["vectors"] && len(bytes.TrimSpace(vecs)) == 0 {
		vecs = nil
	}
	return wasm, vecs, nil
}

// HandleList is GET /rules (admin).
func (reg *Registry) HandleList(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, reg.List())
}

// HandleActivate is POST /rules/{name}/activate (admin) with the body
// {"hash": "<sha256, a unique prefix of 8+ hex digits, or builtin>"}.
func (reg *Registry) HandleActivate(w http.ResponseWriter, r *http.Request) error {
	var req ruleapi.ActivateRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return &Error{Status: http.StatusBadRequest, Msg: `body must be {"hash": "<version hash or builtin>"}: ` + err.Error(), Err: err}
	}
	if req.Hash == "" {
		return errorf(http.StatusBadRequest, `body must be {"hash": "<version hash or builtin>"}`)
	}
	a, err := reg.Activate(r.PathValue("name"), req.Hash, actor(r))
	if err != nil {
		return statusOf(err)
	}
	return writeJSON(w, http.StatusOK, a)
}

// HandleRollback is POST /rules/{name}/rollback (admin).
func (reg *Registry) HandleRollback(w http.ResponseWriter, r *http.Request) error {
	a, err := reg.Rollback(r.PathValue("name"), actor(r))
	if err != nil {
		return statusOf(err)
	}
	return writeJSON(w, http.StatusOK, a)
}

// HandleManifest is GET /v1/rules/manifest?since=<version>&wait=<duration>
// (edge): 200 with the manifest at once when since is absent or differs
// from the current version; else it waits up to wait (at most MaxWait) for
// an activation and answers 200, or 304 with no body when none came.
func (reg *Registry) HandleManifest(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	since, wait := int64(-1), time.Duration(0)
	if s := q.Get("since"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return errorf(http.StatusBadRequest, "since %q is not a manifest version", s)
		}
		since = n
	}
	if s := q.Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return errorf(http.StatusBadRequest, "wait %q is not a duration such as 30s", s)
		}
		wait = min(d, MaxWait)
	}
	if edge := r.Header.Get("X-Edgetrack-Edge"); edge != "" {
		reg.Seen(edge)
	}
	var (
		m       ruleapi.Manifest
		changed = true
	)
	if since < 0 {
		m = reg.Manifest()
	} else {
		m, changed = reg.Wait(r.Context(), since, wait)
	}
	w.Header().Set("Cache-Control", "no-store")
	if !changed {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	return writeJSON(w, http.StatusOK, m)
}

// HandleModule is GET /v1/rules/modules/{hash} (edge): the module's bytes.
func (reg *Registry) HandleModule(w http.ResponseWriter, r *http.Request) error {
	hash := r.PathValue("hash")
	b, err := reg.Module(hash)
	if err != nil {
		return statusOf(err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/wasm")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("ETag", `"`+hash+`"`)
	h.Set("Cache-Control", "private, max-age=31536000, immutable") // content-addressed
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b) // an error means the client went away
	return nil
}

// maxEdgeID bounds an edge id in a status report.
const maxEdgeID = 128

// HandleStatus is POST /v1/rules/status (edge) with the body
// {"edge": "<id>", "rules": {"<name>": {"active", "failed", "error"}}}: 204.
func (reg *Registry) HandleStatus(w http.ResponseWriter, r *http.Request) error {
	var req ruleapi.StatusReport
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		return &Error{Status: http.StatusBadRequest, Msg: "status report: " + err.Error(), Err: err}
	}
	if req.Edge == "" {
		req.Edge = r.Header.Get("X-Edgetrack-Edge")
	}
	if req.Edge == "" || len(req.Edge) > maxEdgeID || strings.ContainsFunc(req.Edge, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		return errorf(http.StatusBadRequest, "status report: \"edge\" must be the edge's id, 1 to %d printable bytes", maxEdgeID)
	}
	for name, st := range req.Rules {
		if len(st.Error) > 4096 {
			st.Error = st.Error[:4096] + "…"
			req.Rules[name] = st
		}
	}
	if err := reg.Report(req.Edge, req.Rules); err != nil {
		return statusOf(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// writeJSON writes v as the JSON response with status (see httpjson.Write).
func writeJSON(w http.ResponseWriter, status int, v any) error { return httpjson.Write(w, status, v) }
