package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edgetrack/edgetrack/edge/internal/rollout"
	"github.com/edgetrack/edgetrack/edge/internal/spool"
	"github.com/edgetrack/edgetrack/internal/auth"
	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/wasm/abi"
)

// adminServer serves the edge's admin listener: health, metrics and the
// dead-letter area. Everything but /healthz and /metrics needs a token from
// edge.admin_tokens.
type adminServer struct {
	e      *Edge
	tokens *auth.Tokens
	srv    *http.Server
}

func newAdminServer(e *Edge) *adminServer {
	a := &adminServer{e: e, tokens: auth.New(config.Tokens{Admin: e.cfg.AdminTokens})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("GET /metrics", promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /v1/deadletters", a.authed(a.listDead))
	mux.HandleFunc("POST /v1/deadletters/replay", a.authed(a.replayDead))
	mux.HandleFunc("POST /v1/deadletters/purge", a.authed(a.purgeDead))
	mux.HandleFunc("GET /v1/rules", a.authed(a.listRules))
	mux.HandleFunc("PUT /v1/rules/{name}", a.authed(a.installRule))
	mux.HandleFunc("POST /v1/rules/{name}/rollback", a.authed(a.rollbackRule))
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	return a
}

func (a *adminServer) serve(ln net.Listener) error {
	if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (a *adminServer) shutdown(ctx context.Context) { _ = a.srv.Shutdown(ctx) }

type adminError struct {
	status int
	msg    string
}

func (e *adminError) Error() string { return e.msg }

func (a *adminServer) authed(h func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var (
			out any
			err error
		)
		if err = a.authorize(r); err == nil {
			out, err = h(r)
		}
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			status := http.StatusInternalServerError
			var ae *adminError
			if errors.As(err, &ae) {
				status = ae.status
			}
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", "Bearer")
			}
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(out)
	}
}

func (a *adminServer) authorize(r *http.Request) error {
	err := a.tokens.Check(r.Header.Get("Authorization"), auth.Admin)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, auth.ErrNoCredentials):
		return &adminError{http.StatusUnauthorized, "missing bearer token (Authorization: Bearer <admin token>)"}
	case len(a.e.cfg.AdminTokens) == 0:
		return &adminError{http.StatusForbidden, "no admin tokens configured (edge.admin_tokens)"}
	default:
		return &adminError{http.StatusForbidden, "token is not an admin token"}
	}
}

type deadLetterJSON struct {
	Position string    `json:"position"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
	ID       string    `json:"id,omitempty"`
	Session  string    `json:"session_id,omitempty"`
	Category string    `json:"category,omitempty"`
	Name     string    `json:"name,omitempty"`
	Bytes    int       `json:"bytes"`
}

func (a *adminServer) listDead(r *http.Request) (any, error) {
	var after spool.Position
	if s := r.URL.Query().Get("after"); s != "" {
		p, err := spool.ParsePosition(s)
		if err != nil {
			return nil, &adminError{http.StatusBadRequest, "after: " + err.Error()}
		}
		after = p
	}
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			return nil, &adminError{http.StatusBadRequest, "limit must be a number from 1 to 10000"}
		}
		limit = n
	}
	dls, err := a.e.spool.DeadLetters(after, limit)
	if err != nil {
		return nil, err
	}
	out := struct {
		DeadLetters []deadLetterJSON `json:"dead_letters"`
		Next        string           `json:"next,omitempty"`
	}{DeadLetters: []deadLetterJSON{}}
	for _, d := range dls {
		j := deadLetterJSON{Position: d.Pos.String(), Reason: d.Reason, At: d.At.UTC(), Bytes: len(d.Value)}
		var ev abi.Event
		if abi.DecodeEvent(d.Value, &ev) == nil {
			j.ID, j.Session, j.Category, j.Name = ev.ID, ev.Session, ev.Category, ev.Name
		}
		out.DeadLetters = append(out.DeadLetters, j)
	}
	if len(dls) == limit {
		out.Next = dls[len(dls)-1].Pos.String()
	}
	return out, nil
}

// positions reads {"positions": ["epoch/seq", …], "all": bool} from the body.
func positions(r *http.Request) ([]spool.Position, bool, error) {
	var body struct {
		Positions []spool.Position `json:"positions"`
		All       bool             `json:"all"`
	}
	if r.ContentLength != 0 {
		dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			return nil, false, &adminError{http.StatusBadRequest, "body: " + err.Error()}
		}
	}
	if body.All && len(body.Positions) > 0 {
		return nil, false, &adminError{http.StatusBadRequest, `give either "positions" or "all", not both`}
	}
	if !body.All && len(body.Positions) == 0 {
		return nil, false, &adminError{http.StatusBadRequest, `give "positions": [...] or "all": true`}
	}
	return body.Positions, body.All, nil
}

func (a *adminServer) replayDead(r *http.Request) (any, error) {
	ps, _, err := positions(r)
	if err != nil {
		return nil, err
	}
	n, err := a.e.spool.Replay(ps...)
	if err != nil {
		return nil, err
	}
	a.e.log.Info("dead letters replayed", "count", n)
	return map[string]int{"replayed": n}, nil
}

func (a *adminServer) purgeDead(r *http.Request) (any, error) {
	ps, _, err := positions(r)
	if err != nil {
		return nil, err
	}
	n, err := a.e.spool.Purge(ps...)
	if err != nil {
		return nil, err
	}
	a.e.log.Info("dead letters purged", "count", n)
	return map[string]int{"purged": n}, nil
}

// maxRuleBytes bounds a module uploaded to the edge directly.
const maxRuleBytes = 8 << 20

func (a *adminServer) listRules(*http.Request) (any, error) {
	return a.e.roll.Statuses(), nil
}

// installRule validates the uploaded module as the new version of a rule and
// makes it active on this edge — for setups without an aggregator. The next
// change of the aggregator's manifest (when edge.rules.pull is on) overrides
// it.
func (a *adminServer) installRule(r *http.Request) (any, error) {
	name := r.PathValue("name")
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxRuleBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &adminError{http.StatusRequestEntityTooLarge, fmt.Sprintf("module exceeds %d bytes", maxRuleBytes)}
		}
		return nil, &adminError{http.StatusBadRequest, "reading module: " + err.Error()}
	}
	if err := a.e.roll.Install(r.Context(), name, body); err != nil {
		if errors.Is(err, rollout.ErrUnknownRule) {
			return nil, &adminError{http.StatusNotFound, err.Error()}
		}
		return nil, &adminError{http.StatusBadRequest, err.Error()}
	}
	return a.e.roll.Statuses()[name], nil
}

func (a *adminServer) rollbackRule(r *http.Request) (any, error) {
	name := r.PathValue("name")
	if err := a.e.roll.Rollback(r.Context(), name); err != nil {
		return nil, &adminError{http.StatusConflict, err.Error()}
	}
	return a.e.roll.Statuses()[name], nil
}
