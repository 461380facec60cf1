// Package ruleslot holds the active version of each route's rule, shared by
// the edge's server, which calls it on every request, and its rollout, which
// swaps new versions in.
//
// A swap is one atomic pointer store: a request keeps the version it loaded,
// and the version being retired answers host.ErrClosed once it is closed, on
// which the request loads the slot again.
package ruleslot

import (
	"context"
	"sync/atomic"

	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/host"
)

// Rule is one version of a route's rule: a wasm module (*host.Module) or,
// for benchmarks, the same logic compiled natively (wasm/native).
type Rule interface {
	// Call decides on a request. A version being retired answers
	// host.ErrClosed; the caller loads the slot again.
	Call(ctx context.Context, req *abi.Request) (abi.Verdict, error)
	Name() string
	Hash() string
	Close(ctx context.Context) error
}

var _ Rule = (*host.Module)(nil)

// Slot holds the active version of one route's rule. The zero Slot is empty.
type Slot struct {
	p atomic.Pointer[entry]
}

type entry struct {
	r       Rule
	version string // Version(r), built once per swap rather than per request
}

// Load returns the active version, or nil.
func (s *Slot) Load() Rule {
	r, _ := s.LoadVersion()
	return r
}

// LoadVersion returns the active version and its Version, or nil and "".
func (s *Slot) LoadVersion() (Rule, string) {
	if e := s.p.Load(); e != nil {
		return e.r, e.version
	}
	return nil, ""
}

// Swap publishes r and returns the previous version (which the caller
// closes), or nil.
func (s *Slot) Swap(r Rule) Rule {
	if e := s.p.Swap(&entry{r, Version(r)}); e != nil {
		return e.r
	}
	return nil
}

// Version is how responses (X-Edgetrack-Rule) and stored events (their
// rule field) name a version: "name@" and the first 12 digits of its hash.
func Version(r Rule) string {
	h := r.Hash()
	if len(h) > 12 {
		h = h[:12]
	}
	return r.Name() + "@" + h
}
