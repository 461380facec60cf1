package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/edgetrack/edgetrack/aggregator/internal/registry"
	"github.com/edgetrack/edgetrack/internal/auth"
	"github.com/edgetrack/edgetrack/internal/ruleapi"
)

// The rule registry's endpoints (their bodies are package ruleapi's types).
// The registry knows no HTTP: these handlers read requests, call it, and
// give its errors their status with ruleError.

// publicRules registers the rule registry's endpoints for edges.
func (s *Server) publicRules(h func(string, handlerFunc)) {
	if s.rules == nil {
		return
	}
	h("/v1/rules/manifest", get(s.authorize(auth.Edge, s.ruleManifest)))
	h("/v1/rules/modules/{hash}", get(s.authorize(auth.Edge, s.ruleModule)))
	h("/v1/rules/status", allow(s.authorize(auth.Edge, s.ruleStatus), http.MethodPost))
}

// adminRules registers the rule registry's endpoints for operators.
func (s *Server) adminRules(h func(string, handlerFunc)) {
	if s.rules == nil {
		return
	}
	h("/rules", get(s.authorize(auth.Admin, s.listRules)))
	h("/rules/{name}", allow(s.authorize(auth.Admin, s.uploadRule), http.MethodPut))
	h("/rules/{name}/activate", allow(s.authorize(auth.Admin, s.activateRule), http.MethodPost))
	h("/rules/{name}/rollback", allow(s.authorize(auth.Admin, s.rollbackRule), http.MethodPost))
}

// ruleError gives the registry's errors their status: its sentinel errors
// by kind, a *registry.Rejection 400. Other errors pass unchanged, and are
// answered 500.
func ruleError(err error) error {
	var status int
	switch {
	case err == nil:
		return nil
	case errors.Is(err, registry.ErrUnknownRule), errors.Is(err, registry.ErrUnknownVersion):
		status = http.StatusNotFound
	case errors.Is(err, registry.ErrNoPrevious), errors.Is(err, registry.ErrAmbiguous), errors.Is(err, registry.ErrTooManyEdges):
		status = http.StatusConflict
	case errors.Is(err, registry.ErrClosed):
		status = http.StatusServiceUnavailable
	default:
		if _, ok := errors.AsType[*registry.Rejection](err); ok {
			return &httpError{status: http.StatusBadRequest, msg: "rejected: " + err.Error(), err: err}
		}
		return err
	}
	// The client is told what went wrong, without the package's prefix.
	return &httpError{status: status, msg: strings.TrimPrefix(err.Error(), "registry: "), err: err}
}

// actor is the fingerprint of the request's bearer token.
func actor(r *http.Request) string {
	tok, _ := auth.BearerToken(r.Header.Get("Authorization"))
	return registry.Fingerprint(tok)
}

// uploadRule handles PUT /rules/{name}: the body is the module
// (Content-Type application/wasm), or multipart/form-data with a part
// "module" and an optional part "vectors" (JSON, see wasm/vectors.File).
// 201 with the new version, 200 when the same bytes were uploaded before,
// 400 with the reason when a check fails, 413 over the size limit.
func (s *Server) uploadRule(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if err := s.rules.KnownRule(name); err != nil {
		return ruleError(err)
	}
	who := actor(r)
	if r.ContentLength > s.rules.MaxModuleBytes() {
		return s.ruleTooLarge(name, who)
	}
	body := http.MaxBytesReader(w, r.Body, s.rules.MaxModuleBytes())
	wasm, vecs, err := readUpload(r, body)
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return s.ruleTooLarge(name, who)
	}
	if err != nil {
		return err
	}
	u, created, err := s.rules.Upload(r.Context(), name, wasm, vecs, who)
	if err != nil {
		return ruleError(err)
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return writeJSON(w, status, u)
}

func (s *Server) ruleTooLarge(name, who string) error {
	err := s.rules.RejectTooLarge(name, who)
	return &httpError{status: http.StatusRequestEntityTooLarge, msg: err.Error()}
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
		return nil, nil, multipartError(err)
	}
	seen := map[string]bool{}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, multipartError(err)
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
			return nil, nil, multipartError(err)
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

// multipartError is the answer to an error reading a multipart body: 400,
// unless the body went over the size limit (the caller answers 413).
func multipartError(err error) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return err
	}
	return &httpError{status: http.StatusBadRequest, msg: "multipart body: " + err.Error(), err: err}
}

// listRules handles GET /rules.
func (s *Server) listRules(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, s.rules.List())
}

// activateRule handles POST /rules/{name}/activate with the body
// {"hash": "<sha256, a unique prefix of 8+ hex digits, or builtin>"}.
func (s *Server) activateRule(w http.ResponseWriter, r *http.Request) error {
	var req ruleapi.ActivateRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return &httpError{status: http.StatusBadRequest, msg: `body must be {"hash": "<version hash or builtin>"}: ` + err.Error(), err: err}
	}
	if req.Hash == "" {
		return errorf(http.StatusBadRequest, `body must be {"hash": "<version hash or builtin>"}`)
	}
	a, err := s.rules.Activate(r.PathValue("name"), req.Hash, actor(r))
	if err != nil {
		return ruleError(err)
	}
	return writeJSON(w, http.StatusOK, a)
}

// rollbackRule handles POST /rules/{name}/rollback.
func (s *Server) rollbackRule(w http.ResponseWriter, r *http.Request) error {
	a, err := s.rules.Rollback(r.PathValue("name"), actor(r))
	if err != nil {
		return ruleError(err)
	}
	return writeJSON(w, http.StatusOK, a)
}

// ruleManifest handles GET /v1/rules/manifest?since=<version>&wait=<duration>
// (edge): 200 with the manifest at once when since is absent or differs
// from the current version; else it waits up to wait (at most
// registry.MaxWait) for an activation and answers 200, or 304 with no body
// when none came.
func (s *Server) ruleManifest(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	since := int64(-1)
	if v := q.Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return errorf(http.StatusBadRequest, "since %q is not a manifest version", v)
		}
		since = n
	}
	wait, err := waitParam(q.Get("wait"), registry.MaxWait)
	if err != nil {
		return err
	}
	if edge := r.Header.Get("X-Edgetrack-Edge"); edge != "" {
		s.rules.Seen(edge)
	}
	var (
		m       ruleapi.Manifest
		changed = true
	)
	if since < 0 {
		m = s.rules.Manifest()
	} else {
		m, changed = s.rules.Wait(r.Context(), since, wait)
	}
	w.Header().Set("Cache-Control", "no-store")
	if !changed {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	return writeJSON(w, http.StatusOK, m)
}

// ruleModule handles GET /v1/rules/modules/{hash} (edge): the module's
// bytes.
func (s *Server) ruleModule(w http.ResponseWriter, r *http.Request) error {
	hash := r.PathValue("hash")
	b, err := s.rules.Module(hash)
	if err != nil {
		return ruleError(err)
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

// ruleStatus handles POST /v1/rules/status (edge) with a
// ruleapi.StatusReport: 204.
func (s *Server) ruleStatus(w http.ResponseWriter, r *http.Request) error {
	var req ruleapi.StatusReport
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		return &httpError{status: http.StatusBadRequest, msg: "status report: " + err.Error(), err: err}
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
	if err := s.rules.Report(req.Edge, req.Rules); err != nil {
		return ruleError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
