package forward

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/edge/internal/spool"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// batch is one request's worth of spool entries.
type batch struct {
	epoch   uint64
	entries []spool.Entry  // the events, in spool order; values are marshalled Events
	ids     []string       // ids[i] is the id of entries[i]
	last    spool.Position // last position read, acked on success
	size    int            // uncompressed bytes of the values
	body    []byte         // zstd(Batch), built by encode; reused for every attempt

	deadWritten bool // settle wrote this batch's dead letters
}

// eventsField is the field number of Batch.events.
var eventsField = (&eventpb.Batch{}).ProtoReflect().Descriptor().Fields().ByName("events").Number()

// undecodablePrefix starts the reason of a dead letter whose value is not an
// Event.
const undecodablePrefix = "undecodable spool entry: "

// collect reads the next batch after position after: at most limit entries
// and about BatchMaxBytes, waiting for a first entry and then, for a batch of
// the current epoch that is not full yet, up to BatchMaxAge for more.
// Entries that are not Events are dead-lettered here and left out, so the
// batch may have no entries at all.
func (f *Forwarder) collect(ctx context.Context, after spool.Position, limit int) (*batch, error) {
	maxBytes := f.opts.BatchMaxBytes
	var read []spool.Entry
	for {
		var err error
		if read, err = f.sp.Read(after, limit, maxBytes); err != nil {
			return nil, err
		}
		if len(read) > 0 {
			break
		}
		if err := f.sp.Wait(ctx, after); err != nil {
			return nil, err
		}
	}
	deadline := time.Now().Add(f.opts.BatchMaxAge)
	size := 0
	for _, e := range read {
		size += len(e.Value)
	}

	// Only the current epoch can grow; a batch of an older one is complete.
	for read[0].Pos.Epoch == f.sp.Epoch() && len(read) < limit && size < maxBytes {
		last := read[len(read)-1].Pos
		wctx, cancel := context.WithDeadline(ctx, deadline)
		err := f.sp.Wait(wctx, last)
		cancel()
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				break // old enough: send what there is
			}
			return nil, err
		}
		more, err := f.sp.Read(last, limit-len(read), maxBytes-size)
		if err != nil {
			return nil, err
		}
		// Read returns at least one entry even if it alone is over the
		// byte budget; such an entry starts the next batch.
		if len(more) > 0 && size+len(more[0].Value) > maxBytes {
			break
		}
		for _, e := range more {
			read = append(read, e)
			size += len(e.Value)
		}
	}
	return f.decode(read)
}

// decode checks that every entry holds an Event, dead-letters those that do
// not, and returns a batch of the rest.
func (f *Forwarder) decode(read []spool.Entry) (*batch, error) {
	b := &batch{
		epoch:   read[0].Pos.Epoch,
		last:    read[len(read)-1].Pos,
		entries: read[:0], // filtered in place
		ids:     make([]string, 0, len(read)),
	}
	var (
		ev      eventpb.Event
		bad     []spool.Entry
		reasons []string
	)
	for _, e := range read {
		if err := proto.Unmarshal(e.Value, &ev); err != nil {
			bad = append(bad, e)
			reasons = append(reasons, undecodablePrefix+err.Error())
			continue
		}
		b.entries = append(b.entries, e)
		b.ids = append(b.ids, ev.GetId())
		b.size += len(e.Value)
	}
	if len(bad) > 0 {
		if err := f.sp.DeadLetter(bad, reasons); err != nil {
			return nil, fmt.Errorf("dead-letter undecodable entries: %w", err)
		}
		f.m.deadLettered.Add(float64(len(bad)))
		f.log.Warn("undecodable spool entries moved to the dead letters", "count", len(bad),
			"first", bad[0].Pos.String(), "reason", reasons[0])
		f.woke()
	}
	return b, nil
}

// encode builds b.body: zstd(proto.Marshal(Batch)). The header fields are
// marshalled and each event value, already a marshalled Event, is appended as
// one Batch.events field, which is exactly what marshalling the decoded
// Events would write.
func (f *Forwarder) encode(b *batch) error {
	hdr := &eventpb.Batch{
		Edge:      f.opts.EdgeID,
		BootEpoch: b.epoch,
		FirstSeq:  b.entries[0].Pos.Seq,
		LastSeq:   b.entries[len(b.entries)-1].Pos.Seq,
	}
	raw, err := proto.MarshalOptions{Deterministic: true}.MarshalAppend(f.raw[:0], hdr)
	if err != nil {
		return fmt.Errorf("marshal batch header: %w", err)
	}
	for _, e := range b.entries {
		raw = protowire.AppendTag(raw, eventsField, protowire.BytesType)
		raw = protowire.AppendBytes(raw, e.Value)
	}
	if cap(raw) <= 2*f.opts.BatchMaxBytes+(64<<10) {
		f.raw = raw // keep the buffer unless one huge event grew it
	} else {
		f.raw = nil
	}
	// A fresh output buffer per batch: an http.Transport may still read the
	// previous body after Do returned.
	b.body = f.enc.EncodeAll(raw, make([]byte, 0, len(raw)/3+512))
	return nil
}
