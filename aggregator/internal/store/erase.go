package store

import (
	"context"
	"fmt"

	"github.com/edgetrack/edgetrack/internal/eventdata"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// SubjectKind names what identifies a data subject whose events an erasure
// removes.
type SubjectKind string

// The kinds of subject. A session and a cookie-sync uid select the same
// events, those whose session is the value: the cookie-sync rule stores a
// match with our uid as its session. A user or device is read from the
// event's data (its top-level user_id or device_id, as text).
const (
	SubjectSession SubjectKind = "session_id"
	SubjectUID     SubjectKind = "uid"
	SubjectUser    SubjectKind = "user_id"
	SubjectDevice  SubjectKind = "device_id"
)

// SubjectKinds lists every kind, in the order errors name them.
var SubjectKinds = []SubjectKind{SubjectSession, SubjectUser, SubjectDevice, SubjectUID}

// Subject is one data subject: every event of it is erased together.
type Subject struct {
	Kind  SubjectKind
	Value string
}

func (s Subject) String() string { return string(s.Kind) + "=" + s.Value }

// Validate reports what is wrong with s: an unknown kind, or a value no
// stored event can have.
func (s Subject) Validate() error {
	switch s.Kind {
	case SubjectSession, SubjectUID, SubjectUser, SubjectDevice:
	default:
		return fmt.Errorf("unknown subject kind %q; use one of %v", s.Kind, SubjectKinds)
	}
	if s.Value == "" {
		return fmt.Errorf("%s is empty", s.Kind)
	}
	if !ValidFilter(s.Value) {
		return fmt.Errorf("%s is not a value an event can have (over %d bytes, a NUL byte, or not UTF-8)", s.Kind, MaxValueLen)
	}
	return nil
}

// BySession reports whether the subject's events are those of one session
// (the session index finds them).
func (s Subject) BySession() bool { return s.Kind == SubjectSession || s.Kind == SubjectUID }

// Matches reports whether ev is an event of the subject. It is the reference
// every backend's Erase must agree with.
func (s Subject) Matches(ev *eventpb.Event) bool {
	if s.Value == "" {
		return false
	}
	switch s.Kind {
	case SubjectSession, SubjectUID:
		return ev.GetSession() == s.Value
	case SubjectUser, SubjectDevice:
		v, ok := eventdata.Field(ev.GetData(), string(s.Kind))
		return ok && v == s.Value
	}
	return false
}

// Eraser is a Store that can remove a data subject's events (an erasure
// request, GDPR art. 17). Backends that implement it keep these promises,
// which storetest checks:
//
//   - Erase removes every stored event the subject Matches, and nothing
//     else: afterwards no Get, Query, Count, Stats, IDPrefix or Export
//     returns or counts one of them, and the events of everyone else answer
//     as before.
//   - It returns the ids of the events it removed, each once, also when
//     erasures of the same subject run at the same time (one of them
//     returns the id).
//   - It is durable when it returns: the events do not come back after a
//     crash or a restart.
//   - Events of the subject stored while Erase runs may be missed: the
//     caller stops them first (the aggregator's suppression list), then
//     erases.
//   - An export cursor taken before the erasure stays valid; the feed passes
//     over the erased events.
type Eraser interface {
	Erase(ctx context.Context, s Subject) (ids []string, err error)
}
