package server

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/edgetrack/edgetrack/aggregator/internal/erasure"
	"github.com/edgetrack/edgetrack/aggregator/internal/query"
	"github.com/edgetrack/edgetrack/internal/subject"
)

// maxSuppressionWait is the longest a suppression-list long-poll waits.
const maxSuppressionWait = time.Minute

// The query parameters the erasure handlers read.
var (
	eraseParams          = []string{string(subject.Session), string(subject.User), string(subject.Device), string(subject.UID)}
	suppressionParams    = []string{"after", "wait"}
	exportErasuresParams = []string{"after", "limit"}
)

// erasureError gives the erasure package's errors their status.
func erasureError(err error) error {
	switch {
	case errors.Is(err, erasure.ErrTombstonesGone):
		return statusError(http.StatusGone, err)
	case errors.Is(err, erasure.ErrClosed):
		return unavailable("the aggregator is shutting down; send the request again", err)
	}
	return unavailable("the erasure did not finish; send the request again (the subject is suppressed already)", err)
}

// eraseSubject handles DELETE /v1/subjects?<kind>=<value> (admin), with
// exactly one of session_id, user_id, device_id or uid: the subject's events
// are removed from the store and its later events dropped. 200 with what
// was done (erasure.Result).
func (s *Server) eraseSubject(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := query.CheckParams(q, eraseParams); err != nil {
		return statusError(http.StatusBadRequest, err)
	}
	var subj subject.Subject
	for _, k := range subject.Kinds {
		vs, ok := q[string(k)]
		if !ok {
			continue
		}
		if subj.Kind != "" || len(vs) > 1 {
			return errorf(http.StatusBadRequest, "name one subject: exactly one of session_id, user_id, device_id or uid, once")
		}
		subj = subject.Subject{Kind: k, Value: vs[0]}
	}
	if subj.Kind == "" {
		return errorf(http.StatusBadRequest, "name the subject: one of session_id, user_id, device_id or uid")
	}
	if err := subj.Validate(); err != nil {
		return statusError(http.StatusBadRequest, err)
	}
	res, err := s.erasures.Erase(r.Context(), subj, actor(r))
	if err != nil {
		return erasureError(err)
	}
	return writeJSON(w, http.StatusOK, res)
}

// erasureAudit handles GET /v1/erasures (admin): every audit record.
func (s *Server) erasureAudit(w http.ResponseWriter, r *http.Request) error {
	if err := query.CheckParams(r.URL.Query(), nil); err != nil {
		return statusError(http.StatusBadRequest, err)
	}
	return writeJSON(w, http.StatusOK, struct {
		Records []erasure.Record `json:"records"`
	}{s.erasures.Records()})
}

// suppressions handles GET /v1/suppressions?after=<version>&wait=<duration>
// (edge): the suppression list (subject.List). When after is the current
// version it waits up to wait (at most a minute) for an erasure and answers
// 200, or 304 with no body when none came.
func (s *Server) suppressions(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := query.CheckParams(q, suppressionParams); err != nil {
		return statusError(http.StatusBadRequest, err)
	}
	after, wait := uint64(0), time.Duration(0)
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return errorf(http.StatusBadRequest, "after %q is not a list version", v)
		}
		after = n
	}
	wait, err := waitParam(q.Get("wait"), maxSuppressionWait)
	if err != nil {
		return err
	}
	l := s.erasures.List(r.Context(), after, wait)
	w.Header().Set("Cache-Control", "no-store")
	if q.Has("after") && l.Version == after {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	return writeJSON(w, http.StatusOK, l)
}

// exportErasures handles GET /v1/export/erasures?after=<seq>&limit=<n>
// (query): the tombstones of erasures after seq, for sync clients
// (erasure.TombstonePage); 410 when some were removed by retention before
// this reader saw them.
func (s *Server) exportErasures(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if err := query.CheckParams(q, exportErasuresParams); err != nil {
		return statusError(http.StatusBadRequest, err)
	}
	after, limit := uint64(0), 100
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return errorf(http.StatusBadRequest, "after %q is not an erasure number", v)
		}
		after = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return errorf(http.StatusBadRequest, "limit %q is not a number from 1 to 1000", v)
		}
		limit = n
	}
	page, err := s.erasures.Tombstones(after, limit)
	if err != nil {
		if errors.Is(err, erasure.ErrTombstonesGone) {
			return erasureError(err)
		}
		return statusError(http.StatusBadRequest, err)
	}
	return writeJSON(w, http.StatusOK, page)
}

// waitParam parses a long-poll's wait parameter ("" is 0), capped at max.
func waitParam(v string, max time.Duration) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, errorf(http.StatusBadRequest, "wait %q is not a duration such as 30s", v)
	}
	return min(d, max), nil
}
