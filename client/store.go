package client

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/proto/hamustropb"
)

// The store is one Pebble database per tracker directory. Key layout:
//
//	m/format              storeFormat: the layout version of this directory
//	m/last-sync           int64 unix nanoseconds of the last 200 (or of the
//	                      directory's first open, until the first 200)
//	a/<session>           Collection without payloads: the tracker attributes
//	                      the session's events are sent with
//	n/<session>           uint32 big endian: the last nr given out in the session
//	e/<session>/<nr>      Payload (nr as 4 bytes big endian): one unsent event
//
// Invariants, all kept by writing related keys in one synced batch:
//   - an e/<session>/... key exists only if a/<session> exists (the
//     attributes are written when the tracker opens, before any event);
//   - n/<session> is at least the largest nr of the session's e/ keys, and it
//     is never deleted, so a nr is never reused after a send or a restart;
//   - an e/ key is deleted only in the batch that records a 200 for it.
//
// Sessions are lowercase hex, so they never contain '/'.
const (
	keyFormat     = "m/format"
	keyLastSync   = "m/last-sync"
	prefixAttrs   = "a/"
	prefixCounter = "n/"
	prefixEvent   = "e/"
	storeFormat   = "edgetrack-client-1"
)

func attrsKey(session string) []byte   { return []byte(prefixAttrs + session) }
func counterKey(session string) []byte { return []byte(prefixCounter + session) }

// eventKey is e/<session>/<nr>, nr big endian so keys sort by nr.
func eventKey(session string, nr uint32) []byte {
	k := make([]byte, 0, len(prefixEvent)+len(session)+1+4)
	k = append(k, prefixEvent...)
	k = append(k, session...)
	k = append(k, '/')
	return binary.BigEndian.AppendUint32(k, nr)
}

// sessionEventsPrefix is the prefix of all event keys of one session.
func sessionEventsPrefix(session string) []byte {
	return []byte(prefixEvent + session + "/")
}

// prefixEnd returns the smallest key larger than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

func prefixIter(db *pebble.DB, prefix []byte) (*pebble.Iterator, error) {
	return db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
}

// get returns a copy of the value of key, or nil, false if it is absent.
func get(db *pebble.DB, key []byte) ([]byte, bool, error) {
	v, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer closer.Close()
	return append([]byte(nil), v...), true, nil
}

func encodeUint32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func decodeUint32(b []byte) (uint32, error) {
	if len(b) != 4 {
		return 0, fmt.Errorf("want 4 bytes, got %d", len(b))
	}
	return binary.BigEndian.Uint32(b), nil
}

func encodeInt64(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

func decodeInt64(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("want 8 bytes, got %d", len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// loadNumbers reads every n/<session> counter.
func loadNumbers(db *pebble.DB) (map[string]uint32, error) {
	it, err := prefixIter(db, []byte(prefixCounter))
	if err != nil {
		return nil, err
	}
	defer it.Close()
	out := make(map[string]uint32)
	for ok := it.First(); ok; ok = it.Next() {
		session := string(it.Key()[len(prefixCounter):])
		nr, err := decodeUint32(it.Value())
		if err != nil {
			return nil, fmt.Errorf("counter of session %s: %w", session, err)
		}
		out[session] = nr
	}
	return out, it.Error()
}

// loadAttrs reads the attributes of one session.
func loadAttrs(db *pebble.DB, session string) (*hamustropb.Collection, error) {
	v, ok, err := get(db, attrsKey(session))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("session %s has events but no attributes", session)
	}
	c := new(hamustropb.Collection)
	if err := proto.Unmarshal(v, c); err != nil {
		return nil, fmt.Errorf("attributes of session %s: %w", session, err)
	}
	return c, nil
}

// sessions lists the sessions that have attributes, in key order.
func sessions(db *pebble.DB) ([]string, error) {
	it, err := prefixIter(db, []byte(prefixAttrs))
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []string
	for ok := it.First(); ok; ok = it.Next() {
		out = append(out, string(it.Key()[len(prefixAttrs):]))
	}
	return out, it.Error()
}

// readEvents returns up to limit events of session with nr >= from, and
// the nr of each. limit <= 0 means all.
func readEvents(db *pebble.DB, session string, from uint32, limit int) ([]*hamustropb.Payload, []uint32, error) {
	prefix := sessionEventsPrefix(session)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: eventKey(session, from), UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, nil, err
	}
	defer it.Close()
	var (
		payloads []*hamustropb.Payload
		nrs      []uint32
	)
	for ok := it.First(); ok && (limit <= 0 || len(payloads) < limit); ok = it.Next() {
		nr, err := decodeUint32(it.Key()[len(prefix):])
		if err != nil {
			return nil, nil, fmt.Errorf("event key %q: %w", it.Key(), err)
		}
		p := new(hamustropb.Payload)
		if err := proto.Unmarshal(it.Value(), p); err != nil {
			return nil, nil, fmt.Errorf("event %d of session %s: %w", nr, session, err)
		}
		payloads = append(payloads, p)
		nrs = append(nrs, nr)
	}
	return payloads, nrs, it.Error()
}

// countEvents counts the stored (unsent) events of all sessions.
func countEvents(db *pebble.DB) (int, error) {
	it, err := prefixIter(db, []byte(prefixEvent))
	if err != nil {
		return 0, err
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	return n, it.Error()
}

// pebbleLogger routes Pebble's messages to slog: Infof at Debug, Errorf at
// Error. Fatalf logs and panics: Pebble calls it on corruption and expects
// it not to return, and an SDK must not os.Exit its host app.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, "component", "pebble")
	panic("client: pebble: " + msg)
}

var _ pebble.Logger = pebbleLogger{}
