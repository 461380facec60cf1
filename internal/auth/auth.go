// Package auth checks bearer tokens (the aggregator's, and the edge's admin
// listener's).
//
// Every token has exactly one [Kind] (config validation refuses a token listed
// under two kinds), and every endpoint needs one kind. A request presents its
// token as "Authorization: Bearer <token>".
//
// Tokens are compared in constant time: the presented token and every
// configured one are hashed with SHA-256 and the digests compared with
// crypto/subtle, against all configured tokens of all kinds without stopping
// at a match. The time a check takes therefore depends neither on how much of
// a token matched, nor on its length, nor on which kind it has.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"strings"

	"github.com/edgetrack/edgetrack/internal/config"
)

// Kind is what a token may be used for.
type Kind uint8

// Token kinds. None is no kind: an unknown token.
const (
	None  Kind = iota
	Query      // the query API (analysts)
	Admin      // admin endpoints (operators)
	Edge       // ingest (edges)
)

func (k Kind) String() string {
	switch k {
	case Query:
		return "query"
	case Admin:
		return "admin"
	case Edge:
		return "edge"
	}
	return "none"
}

// Errors of [Tokens.Check]. ErrNoCredentials means the request did not
// authenticate at all (HTTP 401); the others mean it did, with a token that
// is not good for the endpoint (HTTP 403).
var (
	ErrNoCredentials = errors.New("auth: no bearer token")
	ErrUnknownToken  = errors.New("auth: unknown token")
	ErrWrongKind     = errors.New("auth: token of another kind")
)

// Tokens is a set of configured tokens. It is immutable and safe for
// concurrent use.
type Tokens struct {
	entries []entry
}

type entry struct {
	sum  [sha256.Size]byte
	kind Kind
}

// New returns the tokens of cfg. Empty tokens are ignored: they could never
// be presented (an empty bearer token counts as no credentials).
func New(cfg config.Tokens) *Tokens {
	t := &Tokens{}
	for _, list := range []struct {
		kind   Kind
		tokens []string
	}{{Query, cfg.Query}, {Admin, cfg.Admin}, {Edge, cfg.Edge}} {
		for _, tok := range list.tokens {
			if tok != "" {
				t.entries = append(t.entries, entry{sha256.Sum256([]byte(tok)), list.kind})
			}
		}
	}
	return t
}

// Kind returns the kind of token, or None when it is not configured. It
// compares against every configured token in constant time.
func (t *Tokens) Kind(token string) Kind {
	sum := sha256.Sum256([]byte(token))
	kind := None
	for _, e := range t.entries {
		// Select without branching on the secret-dependent comparison.
		match := subtle.ConstantTimeCompare(sum[:], e.sum[:])
		kind = Kind(subtle.ConstantTimeSelect(match, int(e.kind), int(kind)))
	}
	return kind
}

// Check authenticates an Authorization header value for an endpoint that
// needs the want kind. It returns nil, ErrNoCredentials (missing or not a
// well-formed Bearer credential), ErrUnknownToken or ErrWrongKind.
func (t *Tokens) Check(authorization string, want Kind) error {
	token, ok := BearerToken(authorization)
	if !ok {
		return ErrNoCredentials
	}
	switch t.Kind(token) {
	case want:
		return nil
	case None:
		return ErrUnknownToken
	default:
		return ErrWrongKind
	}
}

// BearerToken extracts the token from an Authorization header value of the
// form "Bearer <token>" (the scheme is case-insensitive, RFC 7235). It
// reports false for another scheme, an empty token, or a token containing
// whitespace.
func BearerToken(authorization string) (string, bool) {
	scheme, token, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimLeft(token, " ")
	if token == "" || strings.ContainsAny(token, " \t\r\n") {
		return "", false
	}
	return token, true
}
