// Package subject names the data subjects of erasure requests (GDPR art.
// 17) and holds the suppression list: the subjects erased so far, by hash,
// whose later events the aggregator and every edge drop.
//
// The list carries no identifiers, only Hash of each subject: an edge, a
// backup of the aggregator's data directory or a reader of the list learns
// that a subject was erased only from someone who already knows its value.
// A hash of a guessable value (a small numeric user id) can be found by
// trying values: the hash is pseudonymisation, not anonymisation.
package subject

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/edgetrack/edgetrack/internal/eventdata"
	"github.com/edgetrack/edgetrack/internal/storable"
)

// Kind names what identifies a subject.
type Kind string

// The kinds of subject. A session and a cookie-sync uid select the same
// events, those whose session is the value: the cookie-sync rule stores a
// match with our uid as its session. A user or device is read from the
// event's data (its top-level user_id or device_id, as text, so the user 42
// of Hamustro's numeric user_id is "42").
const (
	Session Kind = "session_id"
	UID     Kind = "uid"
	User    Kind = "user_id"
	Device  Kind = "device_id"
)

// Kinds lists every kind, in the order messages name them.
var Kinds = []Kind{Session, User, Device, UID}

// Subject is one data subject: every event of it is erased together.
type Subject struct {
	Kind  Kind
	Value string
}

func (s Subject) String() string { return string(s.Kind) + "=" + s.Value }

// Validate reports what is wrong with s: an unknown kind, or a value no
// event can be stored with (empty, over 256 bytes, a NUL byte, not UTF-8).
func (s Subject) Validate() error {
	switch s.Kind {
	case Session, UID, User, Device:
	default:
		return fmt.Errorf("unknown subject kind %q; use one of %v", s.Kind, Kinds)
	}
	switch {
	case s.Value == "":
		return fmt.Errorf("%s is empty", s.Kind)
	case len(s.Value) > storable.MaxValueLen:
		return fmt.Errorf("%s is longer than %d bytes", s.Kind, storable.MaxValueLen)
	case strings.IndexByte(s.Value, 0) >= 0:
		return fmt.Errorf("%s contains a NUL byte", s.Kind)
	case !utf8.ValidString(s.Value):
		return fmt.Errorf("%s is not valid UTF-8", s.Kind)
	}
	return nil
}

// BySession reports whether the subject's events are those of one session.
func (s Subject) BySession() bool { return s.Kind == Session || s.Kind == UID }

// Matches reports whether the event with this session and data is one of
// the subject's. It is the reference every store's erasure and the
// suppression Set agree with.
func (s Subject) Matches(session string, data []byte) bool {
	if s.Value == "" {
		return false
	}
	switch s.Kind {
	case Session, UID:
		return session == s.Value
	case User, Device:
		v, ok := DataValue(s.Kind, data)
		return ok && v == s.Value
	}
	return false
}

// DataValue returns the value a subject of kind k (User or Device) is
// matched on in an event's data: its top-level field, as text
// (eventdata.Field), and false when the data has none. A store that keeps
// it beside the event (store/clickhouse) matches exactly as Matches does.
func DataValue(k Kind, data []byte) (string, bool) {
	return eventdata.Field(data, string(k))
}

// canonical is the kind a subject is hashed and matched under: a uid is a
// session.
func (k Kind) canonical() Kind {
	if k == UID {
		return Session
	}
	return k
}

// Hash is the subject as the suppression list and the audit log name it:
// 32 hex digits of SHA-256 over the (canonical) kind and the value.
func (s Subject) Hash() string { return hash(s.Kind.canonical(), s.Value) }

func hash(k Kind, value string) string {
	h := sha256.New()
	h.Write([]byte("edgetrack subject\x00"))
	h.Write([]byte(k))
	h.Write([]byte{0})
	h.Write([]byte(value))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Entry is one suppressed subject in the list.
type Entry struct {
	Kind Kind   `json:"kind"`
	Hash string `json:"hash"`
}

// List is the suppression list as the aggregator serves it
// (GET /v1/suppressions) and an edge keeps it: every subject erased so far.
// Version counts the erasures recorded; it only grows.
type List struct {
	Version  uint64  `json:"version"`
	Subjects []Entry `json:"subjects"`
}

// Set answers whether an event belongs to a suppressed subject. It is
// immutable and safe for concurrent use; the zero Set and a nil *Set hold
// nothing.
type Set struct {
	session, user, device map[string]struct{}
}

// NewSet returns the set of the entries.
func NewSet(entries []Entry) *Set {
	s := &Set{}
	add := func(m *map[string]struct{}, h string) {
		if *m == nil {
			*m = map[string]struct{}{}
		}
		(*m)[h] = struct{}{}
	}
	for _, e := range entries {
		switch e.Kind.canonical() {
		case Session:
			add(&s.session, e.Hash)
		case User:
			add(&s.user, e.Hash)
		case Device:
			add(&s.device, e.Hash)
		}
	}
	return s
}

// Len is the number of subjects in the set.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.session) + len(s.user) + len(s.device)
}

// Suppressed reports whether the event with this session and data belongs
// to a subject of the set. With an empty set it costs nothing; otherwise a
// hash of the session and, when users or devices are in the set, a parse of
// the data.
func (s *Set) Suppressed(session string, data []byte) bool {
	if s.Len() == 0 {
		return false
	}
	if len(s.session) > 0 && session != "" {
		if _, ok := s.session[hash(Session, session)]; ok {
			return true
		}
	}
	for _, f := range []struct {
		kind Kind
		m    map[string]struct{}
	}{{User, s.user}, {Device, s.device}} {
		if len(f.m) == 0 {
			continue
		}
		if v, ok := eventdata.Field(data, string(f.kind)); ok {
			if _, hit := f.m[hash(f.kind, v)]; hit {
				return true
			}
		}
	}
	return false
}
