package store

import (
	"context"

	"github.com/edgetrack/edgetrack/internal/subject"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// SubjectMatches reports whether ev is an event of s: the reference every
// backend's Erase agrees with.
func SubjectMatches(s Subject, ev *eventpb.Event) bool {
	return s.Matches(ev.GetSession(), ev.GetData())
}

// Subject is a data subject whose events an erasure removes; its kinds and
// what selects its events are package subject's.
type Subject = subject.Subject

// Eraser is a Store that can remove a data subject's events (an erasure
// request, GDPR art. 17). Backends that implement it keep these promises,
// which storetest checks:
//
//   - Erase removes every stored event SubjectMatches, and nothing
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
