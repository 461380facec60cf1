package pebble

import (
	"encoding/binary"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// Keyspace bytes of the Pebble key layout (see the package doc).
const (
	ksMeta     = 'm'
	ksEvent    = 'e'
	ksTime     = 't'
	ksSession  = 's'
	ksCatName  = 'c'
	ksCategory = 'k'
	ksName     = 'n'
	ksRollup   = 'r'
)

const (
	layoutKey     = "mlayout"
	layoutVersion = "3" // 1 had no rollups, 2 no export feed; Open migrates them (migrateRollups, migrateFeed)
	terminator    = 0x00
	timeLen       = 8
)

// invTime maps an event time to 8 bytes that sort newest first.
func invTime(t int64) uint64 { return ^(uint64(t) ^ 1<<63) }

func eventKey(dst []byte, id string) []byte {
	dst = append(dst, ksEvent)
	return append(dst, id...)
}

// indexPrefix appends the prefix of an index: its keyspace byte and each
// filter value followed by the terminator.
func indexPrefix(dst []byte, ks byte, values ...string) []byte {
	dst = append(dst, ks)
	for _, v := range values {
		dst = append(dst, v...)
		dst = append(dst, terminator)
	}
	return dst
}

// indexSuffix appends what follows an index prefix: the position of an event.
func indexSuffix(dst []byte, inv uint64, id string) []byte {
	dst = binary.BigEndian.AppendUint64(dst, inv)
	return append(dst, id...)
}

// indexKeys calls fn with each index key of ev. The key is only valid during
// the call.
func indexKeys(buf []byte, ev *eventpb.Event, fn func(key []byte) error) ([]byte, error) {
	inv := invTime(store.EventTime(ev))
	id, session, category, name := ev.GetId(), ev.GetSession(), ev.GetCategory(), ev.GetName()
	emit := func(ks byte, values ...string) error {
		buf = indexSuffix(indexPrefix(buf[:0], ks, values...), inv, id)
		return fn(buf)
	}
	if err := emit(ksTime); err != nil {
		return buf, err
	}
	if session != "" {
		if err := emit(ksSession, session); err != nil {
			return buf, err
		}
	}
	if category != "" && name != "" {
		if err := emit(ksCatName, category, name); err != nil {
			return buf, err
		}
	}
	if category != "" {
		if err := emit(ksCategory, category); err != nil {
			return buf, err
		}
	}
	if name != "" {
		if err := emit(ksName, name); err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// prefixEnd returns the smallest key greater than every key that starts with
// prefix. Index prefixes never end in 0xff (they end in a keyspace byte or the
// terminator), so incrementing the last byte is enough.
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	end[len(end)-1]++
	return end
}
