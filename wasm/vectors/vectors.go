// Package vectors runs test vectors against a rule module: requests with the
// verdict each must get, under a configuration of their own. A module is
// accepted (uploaded to the registry, or built by an edge) only if it passes
// the vectors uploaded with it and the built-in vectors of the route it
// serves.
//
// Uploaded vectors are JSON (see File); built-in ones are Go (see
// wasm/dist.Vectors). Both become Suites. Run's error is a *FailedError,
// which carries the failing cases (or why the module did not load) for
// callers to report without parsing its message.
package vectors

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/host"
)

// Suite is a set of cases run under one rule configuration.
type Suite struct {
	Name   string
	Config *abi.Config
	Cases  []Case
}

// Case is one request and a check of the verdict: Check returns "" when the
// verdict is right, else what is wrong.
type Case struct {
	Name    string
	Request *abi.Request
	Check   func(abi.Verdict) string
}

// ErrFailed matches every error of Run (errors.Is); errors.As finds the
// *FailedError with the details.
var ErrFailed = errors.New("vectors: failed")

// FailedError is the error of Run: either the module did not load under a
// suite's configuration (Suite and Load are set; errors.Is and errors.As
// reach Load, such as a *host.ModuleError or host.ErrConfig), or cases
// failed (Cases).
type FailedError struct {
	Suite string // the suite whose configuration the module refused
	Load  error  // why the module did not load
	// Cases are the failing cases, one line each: "suite/case: what is
	// wrong", in the order they ran.
	Cases []string
}

// Summary is the message's first part: "suite <name>: <load error>" or
// "<n> case(s)".
func (e *FailedError) Summary() string {
	if e.Load != nil {
		return fmt.Sprintf("suite %s: %v", e.Suite, e.Load)
	}
	return fmt.Sprintf("%d case(s)", len(e.Cases))
}

// Error is "vectors: failed: " and the summary, then the failing cases,
// one indented line each.
func (e *FailedError) Error() string {
	if e.Load != nil {
		return ErrFailed.Error() + ": " + e.Summary()
	}
	return ErrFailed.Error() + ": " + e.Summary() + ":\n  " + strings.Join(e.Cases, "\n  ")
}

// Is makes errors.Is(err, ErrFailed) hold.
func (e *FailedError) Is(target error) bool { return target == ErrFailed }

func (e *FailedError) Unwrap() error { return e.Load }

// Run loads wasm once per suite (with the suite's configuration) in rt,
// runs every case, and closes the modules. It reports every failing case,
// as a *FailedError.
func Run(ctx context.Context, rt *host.Runtime, rule string, wasm []byte, suites ...Suite) error {
	var problems []string
	for _, s := range suites {
		cfg := s.Config
		if cfg == nil {
			cfg = &abi.Config{}
		}
		m, err := rt.Load(ctx, rule, wasm, cfg)
		if err != nil {
			return &FailedError{Suite: s.Name, Load: err}
		}
		for _, c := range s.Cases {
			v, err := m.Call(ctx, c.Request)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s/%s: %v", s.Name, c.Name, err))
				continue
			}
			if msg := c.Check(v); msg != "" {
				problems = append(problems, fmt.Sprintf("%s/%s: %s", s.Name, c.Name, msg))
			}
		}
		_ = m.Close(context.WithoutCancel(ctx))
	}
	if len(problems) > 0 {
		return &FailedError{Cases: problems}
	}
	return nil
}

// File is the JSON form of uploaded vectors:
//
//	{
//	  "settings": {"secrets": ["s3cret"]},
//	  "vectors": [
//	    {"name": "accepts a view",
//	     "request": {"method": "POST", "path": "/events", "headers": {"content-type": "application/json"},
//	                 "body": "{...}", "remote_ip": "203.0.113.1", "received_at": "2026-01-02T03:04:05Z"},
//	     "expect": {"status": 201, "event_ids": ["eye:abc"], "body_contains": "accepted"}}
//	  ]
//	}
//
// body is text; body_base64 carries binary bodies instead. Every expect
// field but status is optional.
type File struct {
	Settings map[string][]string `json:"settings"`
	Vectors  []Vector            `json:"vectors"`
}

// Vector is one uploaded case.
type Vector struct {
	Name    string  `json:"name"`
	Request Request `json:"request"`
	Expect  Expect  `json:"expect"`
}

// Request is the JSON form of an abi.Request.
type Request struct {
	Method     string            `json:"method"`
	Path       string            `json:"path"`
	Query      string            `json:"query"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
	BodyBase64 string            `json:"body_base64"`
	RemoteIP   string            `json:"remote_ip"`
	ReceivedAt time.Time         `json:"received_at"`
}

// Expect is what the verdict must be.
type Expect struct {
	Status          uint32   `json:"status"`
	MessageContains string   `json:"message_contains"`
	BodyContains    string   `json:"body_contains"`
	Location        *string  `json:"location"`
	EventIDs        []string `json:"event_ids"`
	EventCount      *int     `json:"event_count"`
}

// Parse reads a vectors file and checks that every vector is usable.
func Parse(b []byte) (*File, error) {
	var f File
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("vectors: %w", err)
	}
	var problems []string
	for i, v := range f.Vectors {
		where := fmt.Sprintf("vectors[%d]", i)
		if v.Name != "" {
			where += " (" + v.Name + ")"
		}
		if v.Expect.Status < 100 || v.Expect.Status > 599 {
			problems = append(problems, where+": expect.status must be an HTTP status")
		}
		if v.Request.Body != "" && v.Request.BodyBase64 != "" {
			problems = append(problems, where+": give body or body_base64, not both")
		}
		if _, err := base64.StdEncoding.DecodeString(v.Request.BodyBase64); err != nil {
			problems = append(problems, where+": body_base64: "+err.Error())
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("vectors: %s", strings.Join(problems, "; "))
	}
	return &f, nil
}

// Suite turns the file into a Suite for rule.
func (f *File) Suite(name, rule string) Suite {
	cfg := &abi.Config{Rule: rule}
	keys := make([]string, 0, len(f.Settings))
	for k := range f.Settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		cfg.Settings = append(cfg.Settings, abi.Setting{Key: k, Values: f.Settings[k]})
	}
	s := Suite{Name: name, Config: cfg}
	for i, v := range f.Vectors {
		v := v
		n := v.Name
		if n == "" {
			n = fmt.Sprintf("vectors[%d]", i)
		}
		s.Cases = append(s.Cases, Case{Name: n, Request: v.Request.abi(), Check: v.Expect.check})
	}
	return s
}

func (r Request) abi() *abi.Request {
	q := &abi.Request{Method: r.Method, Path: r.Path, Query: r.Query, RemoteIP: r.RemoteIP}
	if q.Method == "" {
		q.Method = "POST"
	}
	if !r.ReceivedAt.IsZero() {
		q.ReceivedAt = r.ReceivedAt.UnixNano()
	} else {
		q.ReceivedAt = time.Now().UnixNano()
	}
	keys := make([]string, 0, len(r.Headers))
	for k := range r.Headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		q.Headers = append(q.Headers, abi.Header{Name: strings.ToLower(k), Value: r.Headers[k]})
	}
	if r.BodyBase64 != "" {
		q.Body, _ = base64.StdEncoding.DecodeString(r.BodyBase64)
	} else {
		q.Body = []byte(r.Body)
	}
	return q
}

func (e Expect) check(v abi.Verdict) string {
	var b strings.Builder
	if v.Status != e.Status {
		fmt.Fprintf(&b, "status %d, want %d (message %q); ", v.Status, e.Status, v.Message)
	}
	if e.MessageContains != "" && !strings.Contains(v.Message, e.MessageContains) {
		fmt.Fprintf(&b, "message %q does not contain %q; ", v.Message, e.MessageContains)
	}
	if e.BodyContains != "" && !strings.Contains(string(v.Body), e.BodyContains) {
		fmt.Fprintf(&b, "body does not contain %q; ", e.BodyContains)
	}
	if e.Location != nil && v.Location != *e.Location {
		fmt.Fprintf(&b, "location %q, want %q; ", v.Location, *e.Location)
	}
	if e.EventCount != nil && len(v.Events) != *e.EventCount {
		fmt.Fprintf(&b, "%d events, want %d; ", len(v.Events), *e.EventCount)
	}
	if e.EventIDs != nil {
		ids := make([]string, len(v.Events))
		for i, ev := range v.Events {
			ids[i] = ev.ID
		}
		if !slices.Equal(ids, e.EventIDs) {
			fmt.Fprintf(&b, "event ids %q, want %q; ", ids, e.EventIDs)
		}
	}
	return strings.TrimSuffix(b.String(), "; ")
}
