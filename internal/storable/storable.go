// Package storable is the one definition of the events the aggregator can
// store. The aggregator's store rejects every other event for good
// (aggregator/internal/store); the edge refuses to acknowledge one, because
// a 2xx for it would promise a delivery that can only end in the dead
// letters (edge/internal/server); and rules check what they copy into
// events against the same limits. It uses no reflection, so TinyGo builds
// it into rules.
package storable

import (
	"strings"
	"unicode/utf8"
)

// Limits on an event's strings, in bytes. They keep the store's keys and
// cursors small.
const (
	MaxIDLen    = 256
	MaxValueLen = 256 // session, category, name
)

// Fields are the strings of one edgetrack.event.v1.Event. Its other fields
// (numbers, and data, which is bytes) can hold any value.
type Fields struct {
	ID, Session, Category, Name, IP, Edge, Rule string
}

// Reasons Problem returns. The aggregator reports them to edges in
// IngestResult rejections.
const (
	ReasonEmptyID         = "empty id"
	ReasonIDTooLong       = "id longer than 256 bytes"
	ReasonIDNUL           = "id contains a NUL byte"
	ReasonSessionTooLong  = "session longer than 256 bytes"
	ReasonSessionNUL      = "session contains a NUL byte"
	ReasonCategoryTooLong = "category longer than 256 bytes"
	ReasonCategoryNUL     = "category contains a NUL byte"
	ReasonNameTooLong     = "name longer than 256 bytes"
	ReasonNameNUL         = "name contains a NUL byte"
	ReasonIDUTF8          = "id is not valid UTF-8"
	ReasonSessionUTF8     = "session is not valid UTF-8"
	ReasonCategoryUTF8    = "category is not valid UTF-8"
	ReasonNameUTF8        = "name is not valid UTF-8"
	ReasonIPUTF8          = "ip is not valid UTF-8"
	ReasonEdgeUTF8        = "edge is not valid UTF-8"
	ReasonRuleUTF8        = "rule is not valid UTF-8"
)

// Problem returns why an event with the strings f can never be stored, or ""
// when it can:
//
//   - the id is empty, longer than MaxIDLen, or contains NUL;
//   - the session, category or name is longer than MaxValueLen or contains
//     NUL (the store's index keys end these values with a NUL);
//   - any of the strings is not valid UTF-8. Proto3 requires that of
//     strings: an Event holding one cannot be decoded, neither from the
//     edge's spool nor from a batch on the wire.
func Problem(f *Fields) string {
	switch {
	case f.ID == "":
		return ReasonEmptyID
	case len(f.ID) > MaxIDLen:
		return ReasonIDTooLong
	case strings.IndexByte(f.ID, 0) >= 0:
		return ReasonIDNUL
	}
	values := [...]struct {
		v               string
		tooLong, hasNUL string
	}{
		{f.Session, ReasonSessionTooLong, ReasonSessionNUL},
		{f.Category, ReasonCategoryTooLong, ReasonCategoryNUL},
		{f.Name, ReasonNameTooLong, ReasonNameNUL},
	}
	for _, v := range values {
		if len(v.v) > MaxValueLen {
			return v.tooLong
		}
		if strings.IndexByte(v.v, 0) >= 0 {
			return v.hasNUL
		}
	}
	strs := [...]struct{ v, reason string }{
		{f.ID, ReasonIDUTF8},
		{f.Session, ReasonSessionUTF8},
		{f.Category, ReasonCategoryUTF8},
		{f.Name, ReasonNameUTF8},
		{f.IP, ReasonIPUTF8},
		{f.Edge, ReasonEdgeUTF8},
		{f.Rule, ReasonRuleUTF8},
	}
	for _, s := range strs {
		if !utf8.ValidString(s.v) {
			return s.reason
		}
	}
	return ""
}
