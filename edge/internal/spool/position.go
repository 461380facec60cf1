package spool

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Position identifies a queue entry: the boot epoch of the process that
// appended it and a sequence number within that epoch, starting at 1.
// Positions are ordered by Epoch, then Seq. The zero Position is before every
// entry, so Read(Position{}, ...) starts at the head of the queue.
type Position struct{ Epoch, Seq uint64 }

// Less reports whether p is ordered before q.
func (p Position) Less(q Position) bool {
	return p.Epoch < q.Epoch || (p.Epoch == q.Epoch && p.Seq < q.Seq)
}

// String formats p as "epoch/seq", the form ParsePosition reads.
func (p Position) String() string {
	return strconv.FormatUint(p.Epoch, 10) + "/" + strconv.FormatUint(p.Seq, 10)
}

// next returns the smallest position ordered after p.
func (p Position) next() Position {
	if p.Seq == math.MaxUint64 {
		return Position{Epoch: p.Epoch + 1}
	}
	return Position{Epoch: p.Epoch, Seq: p.Seq + 1}
}

// ParsePosition parses the "epoch/seq" form written by Position.String, for
// example a position given to an admin endpoint.
func ParsePosition(s string) (Position, error) {
	e, q, ok := strings.Cut(s, "/")
	if !ok {
		return Position{}, fmt.Errorf("spool: parse position %q: want epoch/seq", s)
	}
	epoch, err := strconv.ParseUint(e, 10, 64)
	if err != nil {
		return Position{}, fmt.Errorf("spool: parse position %q: epoch: %w", s, err)
	}
	seq, err := strconv.ParseUint(q, 10, 64)
	if err != nil {
		return Position{}, fmt.Errorf("spool: parse position %q: seq: %w", s, err)
	}
	return Position{Epoch: epoch, Seq: seq}, nil
}

// MarshalText implements encoding.TextMarshaler with the String form.
func (p Position) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParsePosition.
func (p *Position) UnmarshalText(b []byte) error {
	q, err := ParsePosition(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}

// Key layout; see the package documentation.
const (
	prefixQueue byte = 'q'
	prefixDead  byte = 'd'
	keyLen           = 1 + 8 + 8
)

var metaEpochKey = []byte("m/epoch")

// appendKey appends the key of position p under prefix to dst.
func appendKey(dst []byte, prefix byte, p Position) []byte {
	dst = append(dst, prefix)
	dst = binary.BigEndian.AppendUint64(dst, p.Epoch)
	return binary.BigEndian.AppendUint64(dst, p.Seq)
}

// putKey writes the key of position p under prefix into dst[:keyLen].
func putKey(dst []byte, prefix byte, p Position) {
	dst[0] = prefix
	binary.BigEndian.PutUint64(dst[1:9], p.Epoch)
	binary.BigEndian.PutUint64(dst[9:17], p.Seq)
}

// keyAfter returns the smallest key ordered after the key of p: that key
// followed by a zero byte. It needs no overflow handling, unlike p.next().
func keyAfter(prefix byte, p Position) []byte {
	return append(appendKey(make([]byte, 0, keyLen+1), prefix, p), 0)
}

// prefixBounds returns the [lower, upper) bounds of every key under prefix.
func prefixBounds(prefix byte) (lower, upper []byte) {
	return []byte{prefix}, []byte{prefix + 1}
}

// decodeKey returns the position in a key under prefix.
func decodeKey(key []byte, prefix byte) (Position, error) {
	if len(key) != keyLen || key[0] != prefix {
		return Position{}, fmt.Errorf("spool: malformed key %q under prefix %q", key, prefix)
	}
	return Position{
		Epoch: binary.BigEndian.Uint64(key[1:9]),
		Seq:   binary.BigEndian.Uint64(key[9:17]),
	}, nil
}
