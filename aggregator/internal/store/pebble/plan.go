package pebble

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/fnv"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// plan is how the Pebble store answers one Query: which index to scan, the
// key range to scan, and what to check on each event found there.
type plan struct {
	ks     byte   // keyspace of the index
	prefix []byte // index prefix including the filter values it covers
	lower  []byte // inclusive
	upper  []byte // exclusive
	empty  bool   // nothing can match; lower and upper are unset

	// check filters the events the index does not narrow enough; nil when
	// every key in [lower, upper) matches.
	check func(*eventpb.Event) bool

	filters uint64 // fingerprint of the query's filters, carried by cursors
}

// planQuery chooses the most selective index for q's filters: session, then
// category+name, then category, then name, then time.
func planQuery(q store.Query) plan {
	p := plan{filters: fingerprint(q)}
	switch {
	case q.Session != "":
		p.ks = ksSession
		p.prefix = indexPrefix(nil, ksSession, q.Session)
		if q.Category != "" || q.Name != "" {
			category, name := q.Category, q.Name
			p.check = func(ev *eventpb.Event) bool {
				return (category == "" || ev.GetCategory() == category) &&
					(name == "" || ev.GetName() == name)
			}
		}
	case q.Category != "" && q.Name != "":
		p.ks = ksCatName
		p.prefix = indexPrefix(nil, ksCatName, q.Category, q.Name)
	case q.Category != "":
		p.ks = ksCategory
		p.prefix = indexPrefix(nil, ksCategory, q.Category)
	case q.Name != "":
		p.ks = ksName
		p.prefix = indexPrefix(nil, ksName, q.Name)
	default:
		p.ks = ksTime
		p.prefix = indexPrefix(nil, ksTime)
	}
	if !store.ValidFilter(q.Session) || !store.ValidFilter(q.Category) || !store.ValidFilter(q.Name) {
		// A value with NUL could also run past its terminator into the
		// next key component; no stored event can have such a value.
		p.empty = true
		return p
	}

	// Keys newer than End come first: start after T(End), i.e. at T(End)+1.
	p.lower = p.prefix
	if !q.End.IsZero() {
		inv := invTime(store.UnixNano(q.End))
		if inv == 1<<64-1 { // End is the oldest time there is
			p.empty = true
			return p
		}
		p.lower = binary.BigEndian.AppendUint64(clone(p.prefix), inv+1)
	}
	// Keys older than Start come last: stop before T(Start)+1.
	p.upper = prefixEnd(p.prefix)
	if !q.Start.IsZero() {
		if inv := invTime(store.UnixNano(q.Start)); inv != 1<<64-1 {
			p.upper = binary.BigEndian.AppendUint64(clone(p.prefix), inv+1)
		}
	}
	if bytes.Compare(p.lower, p.upper) >= 0 {
		p.empty = true
	}
	return p
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// fingerprint identifies all of a query's filters, so that a cursor is only
// accepted by the query it was made for.
func fingerprint(q store.Query) uint64 {
	h := fnv.New64a()
	var buf []byte
	for _, s := range [...]string{q.Session, q.Category, q.Name} {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	for _, t := range [...]struct {
		set bool
		ns  int64
	}{{!q.Start.IsZero(), store.UnixNano(q.Start)}, {!q.End.IsZero(), store.UnixNano(q.End)}} {
		if t.set {
			buf = append(buf, 1)
			buf = binary.BigEndian.AppendUint64(buf, uint64(t.ns))
		} else {
			buf = append(buf, 0)
		}
	}
	h.Write(buf)
	return h.Sum64()
}

// Cursor wire format, version 1 (before base64url without padding):
//
//	[0]     version
//	[1]     keyspace of the index
//	[2:10]  filter fingerprint, big-endian
//	[10:18] inverted event time of the last event returned
//	[18:]   its id
const (
	cursorVersion = 1
	cursorHeader  = 2 + 8
)

type cursor struct {
	ks      byte
	filters uint64
	pos     []byte // index key of the last event returned, without the prefix: T id
}

func (c cursor) encode() string {
	b := make([]byte, 0, cursorHeader+len(c.pos))
	b = append(b, cursorVersion, c.ks)
	b = binary.BigEndian.AppendUint64(b, c.filters)
	b = append(b, c.pos...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor parses s; errors wrap ErrBadCursor.
func decodeCursor(s string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, fmt.Errorf("%w: %v", store.ErrBadCursor, err)
	}
	if len(b) < 1 || b[0] != cursorVersion {
		return cursor{}, fmt.Errorf("%w: unknown version", store.ErrBadCursor)
	}
	if len(b) < cursorHeader+timeLen+1 || len(b) > cursorHeader+timeLen+store.MaxIDLen {
		return cursor{}, fmt.Errorf("%w: bad length", store.ErrBadCursor)
	}
	c := cursor{
		ks:      b[1],
		filters: binary.BigEndian.Uint64(b[2:10]),
		pos:     b[cursorHeader:],
	}
	if bytes.IndexByte(c.pos[timeLen:], terminator) >= 0 {
		return cursor{}, fmt.Errorf("%w: bad id", store.ErrBadCursor)
	}
	return c, nil
}

// start returns the key at which a scan for p resumes from cursor s: the
// smallest key after the cursor's position.
func (p plan) start(s string) ([]byte, error) {
	c, err := decodeCursor(s)
	if err != nil {
		return nil, err
	}
	if c.ks != p.ks || c.filters != p.filters {
		return nil, fmt.Errorf("%w: made for another query", store.ErrBadCursor)
	}
	if p.empty {
		return nil, fmt.Errorf("%w: query matches nothing", store.ErrBadCursor)
	}
	key := append(clone(p.prefix), c.pos...)
	if bytes.Compare(key, p.lower) < 0 || bytes.Compare(key, p.upper) >= 0 {
		return nil, fmt.Errorf("%w: outside the query's range", store.ErrBadCursor)
	}
	return append(key, 0), nil // ids contain no NUL: no key lies in between
}
