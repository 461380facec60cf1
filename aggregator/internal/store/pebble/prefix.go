package pebble

import (
	"context"
	"fmt"

	pebbledb "github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// IDPrefix returns up to limit events whose ids start with prefix, in id
// order. Ids are the primary key, so this is one range scan; it serves
// lookups by structured ids, such as cookie-sync matches
// ("cs:<partner>:<partner id>:<uid>").
func (p *Store) IDPrefix(ctx context.Context, prefix string, limit int) ([]*eventpb.Event, error) {
	if err := p.acquire(); err != nil {
		return nil, err
	}
	defer p.release()
	if prefix == "" {
		return nil, fmt.Errorf("store: empty id prefix")
	}
	if limit <= 0 || limit > store.MaxLimit {
		limit = store.MaxLimit
	}
	lower := eventKey(nil, prefix)
	it, err := p.db.NewIterWithContext(ctx, &pebbledb.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []*eventpb.Event
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ev := new(eventpb.Event)
		if err := proto.Unmarshal(it.Value(), ev); err != nil {
			return nil, fmt.Errorf("store: decode event %q: %w", it.Key()[1:], err)
		}
		out = append(out, ev)
	}
	return out, it.Error()
}
