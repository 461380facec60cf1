package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edgetrack/edgetrack/edge/internal/rollout"
	"github.com/edgetrack/edgetrack/edge/internal/spool"
	"github.com/edgetrack/edgetrack/internal/auth"
	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/wasm/abi"
)

// AdminOptions configure an Admin.
type AdminOptions struct {
	// Tokens are the admin tokens (edge.admin_tokens). Every endpoint but
	// /healthz and /metrics needs one; with none, those answer 403.
	Tokens   []string
	Spool    *spool.Spool        // its dead-letter area is listed, replayed and purged
	Rollout  *rollout.Rollout    // installs and rolls back rule versions
	Gatherer prometheus.Gatherer // served at /metrics
	Logger   *slog.Logger
}

// Admin serves the edge's admin listener (net/http): health, metrics, the
// dead-letter area and the rules. Its one place where errors become
// responses is writeAdminError.
type Admin struct {
	opts   AdminOptions
	tokens *auth.Tokens
	log    *slog.Logger
	srv    *http.Server
}

// NewAdmin builds the admin server.
func NewAdmin(opts AdminOptions) *Admin {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	a := &Admin{opts: opts, tokens: auth.New(config.Tokens{Admin: opts.Tokens}), log: opts.Logger}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /v1/deadletters", a.authed(a.listDead))
	mux.HandleFunc("POST /v1/deadletters/replay", a.authed(a.replayDead))
	mux.HandleFunc("POST /v1/deadletters/purge", a.authed(a.purgeDead))
	mux.HandleFunc("GET /v1/rules", a.authed(a.listRules))
	mux.HandleFunc("PUT /v1/rules/{name}", a.authed(a.installRule))
	mux.HandleFunc("POST /v1/rules/{name}/rollback", a.authed(a.rollbackRule))
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	return a
}

// Serve accepts connections on ln until Shutdown.
func (a *Admin) Serve(ln net.Listener) error {
	if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting connections and waits for requests in flight
// until ctx ends.
func (a *Admin) Shutdown(ctx context.Context) error { return a.srv.Shutdown(ctx) }

// authed checks the admin token, runs h and answers what it returns as JSON,
// or its error.
func (a *Admin) authed(h func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var (
			out any
			err error
		)
		if err = a.authorize(r); err == nil {
			out, err = h(r)
		}
		if err != nil {
			a.writeAdminError(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}
}

// writeAdminError answers err as {"error": message}; the single place the
// admin listener turns errors into responses.
func (a *Admin) writeAdminError(w http.ResponseWriter, r *http.Request, err error) {
	he := asHTTPError(err)
	if he.status >= 500 && he.cause != nil {
		a.log.Warn("admin request failed", "method", r.Method, "path", r.URL.Path, "status", he.status, "err", he.cause)
	}
	w.Header().Set("Content-Type", "application/json")
	if he.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	if he.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(he.retryAfter))
	}
	w.WriteHeader(he.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": he.msg})
}

func (a *Admin) authorize(r *http.Request) error {
	err := a.tokens.Check(r.Header.Get("Authorization"), auth.Admin)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, auth.ErrNoCredentials):
		return statusError(http.StatusUnauthorized, "missing bearer token (Authorization: Bearer <admin token>)")
	case len(a.opts.Tokens) == 0:
		return statusError(http.StatusForbidden, "no admin tokens configured (edge.admin_tokens)")
	default:
		return statusError(http.StatusForbidden, "token is not an admin token")
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

func (a *Admin) listDead(r *http.Request) (any, error) {
	var after spool.Position
	if s := r.URL.Query().Get("after"); s != "" {
		p, err := spool.ParsePosition(s)
		if err != nil {
			return nil, statusError(http.StatusBadRequest, "after: "+err.Error())
		}
		after = p
	}
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			return nil, statusError(http.StatusBadRequest, "limit must be a number from 1 to 10000")
		}
		limit = n
	}
	dls, err := a.opts.Spool.DeadLetters(after, limit)
	if err != nil {
		return nil, spoolFailed(err)
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

// spoolFailed is the 500 for a spool operation the operator asked for; the
// operator is shown the spool's error.
func spoolFailed(err error) error { return internal(err.Error(), err) }

// positions reads {"positions": ["epoch/seq", …], "all": bool} from the
// body; no positions means all.
func positions(r *http.Request) ([]spool.Position, error) {
	var body struct {
		Positions []spool.Position `json:"positions"`
		All       bool             `json:"all"`
	}
	if r.ContentLength != 0 {
		dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			return nil, statusError(http.StatusBadRequest, "body: "+err.Error())
		}
	}
	if body.All && len(body.Positions) > 0 {
		return nil, statusError(http.StatusBadRequest, `give either "positions" or "all", not both`)
	}
	if !body.All && len(body.Positions) == 0 {
		return nil, statusError(http.StatusBadRequest, `give "positions": [...] or "all": true`)
	}
	return body.Positions, nil
}

func (a *Admin) replayDead(r *http.Request) (any, error) {
	return a.onDead(r, "replayed", a.opts.Spool.Replay)
}

func (a *Admin) purgeDead(r *http.Request) (any, error) {
	return a.onDead(r, "purged", a.opts.Spool.Purge)
}

// onDead runs op (the spool's Replay or Purge) on the dead letters the body
// names and answers {done: count}.
func (a *Admin) onDead(r *http.Request, done string, op func(...spool.Position) (int, error)) (any, error) {
	ps, err := positions(r)
	if err != nil {
		return nil, err
	}
	n, err := op(ps...)
	if err != nil {
		return nil, spoolFailed(err)
	}
	a.log.Info("dead letters "+done, "count", n)
	return map[string]int{done: n}, nil
}

// maxRuleBytes bounds a module uploaded to the edge directly.
const maxRuleBytes = 8 << 20

func (a *Admin) listRules(*http.Request) (any, error) {
	return a.opts.Rollout.Statuses(), nil
}

// installRule validates the uploaded module as the new version of a rule and
// makes it active on this edge — for setups without an aggregator. The next
// change of the aggregator's manifest (when edge.rules.pull is on) overrides
// it.
func (a *Admin) installRule(r *http.Request) (any, error) {
	name := r.PathValue("name")
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxRuleBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, statusError(http.StatusRequestEntityTooLarge, fmt.Sprintf("module exceeds %d bytes", maxRuleBytes))
		}
		return nil, statusError(http.StatusBadRequest, "reading module: "+err.Error())
	}
	if err := a.opts.Rollout.Install(r.Context(), name, body); err != nil {
		if errors.Is(err, rollout.ErrUnknownRule) {
			return nil, statusError(http.StatusNotFound, err.Error())
		}
		return nil, statusError(http.StatusBadRequest, err.Error())
	}
	return a.opts.Rollout.Statuses()[name], nil
}

func (a *Admin) rollbackRule(r *http.Request) (any, error) {
	name := r.PathValue("name")
	if err := a.opts.Rollout.Rollback(r.Context(), name); err != nil {
		return nil, statusError(http.StatusConflict, err.Error())
	}
	return a.opts.Rollout.Statuses()[name], nil
}
