package auth

import (
	"errors"
	"testing"

	"github.com/edgetrack/edgetrack/internal/config"
)

func TestCheck(t *testing.T) {
	tokens := New(config.Tokens{
		Query: []string{"q1", "q2"},
		Admin: []string{"a1"},
		Edge:  []string{"e1", ""},
	})
	for _, tc := range []struct {
		name   string
		header string
		want   Kind
		err    error
	}{
		{"query token", "Bearer q1", Query, nil},
		{"second query token", "Bearer q2", Query, nil},
		{"scheme is case-insensitive", "bearer q1", Query, nil},
		{"admin token", "Bearer a1", Admin, nil},
		{"edge token", "Bearer e1", Edge, nil},
		{"no header", "", Query, ErrNoCredentials},
		{"basic scheme", "Basic cTE6cTE=", Query, ErrNoCredentials},
		{"scheme only", "Bearer", Query, ErrNoCredentials},
		{"empty token", "Bearer ", Query, ErrNoCredentials},
		{"token with space", "Bearer q1 q2", Query, ErrNoCredentials},
		{"token without scheme", "q1", Query, ErrNoCredentials},
		{"unknown token", "Bearer nope", Query, ErrUnknownToken},
		{"prefix of a token", "Bearer q", Query, ErrUnknownToken},
		{"token extended", "Bearer q11", Query, ErrUnknownToken},
		{"edge token for query", "Bearer e1", Query, ErrWrongKind},
		{"query token for ingest", "Bearer q1", Edge, ErrWrongKind},
		{"admin token for query", "Bearer a1", Query, ErrWrongKind},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tokens.Check(tc.header, tc.want); !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Errorf("Check(%q, %s) = %v, want %v", tc.header, tc.want, err, tc.err)
			}
		})
	}
}

func TestKind(t *testing.T) {
	tokens := New(config.Tokens{Query: []string{"q"}, Edge: []string{"e"}})
	for token, want := range map[string]Kind{"q": Query, "e": Edge, "": None, "x": None} {
		if got := tokens.Kind(token); got != want {
			t.Errorf("Kind(%q) = %s, want %s", token, got, want)
		}
	}
	if got := New(config.Tokens{}).Kind("q"); got != None {
		t.Errorf("Kind with no tokens = %s, want none", got)
	}
}

func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  abc", "Basic x", "", "Bearer", "Bearer a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, ok := BearerToken(h)
		if ok && (tok == "" || len(tok) >= len(h)) {
			t.Errorf("BearerToken(%q) = %q, true", h, tok)
		}
	})
}
