package ingest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/aggregator/internal/store/pebble"
	"github.com/edgetrack/edgetrack/proto/eventpb"
	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/dist"
	"github.com/edgetrack/edgetrack/wasm/host"
	"github.com/edgetrack/edgetrack/wasm/rules/eye/eyetest"
	"github.com/edgetrack/edgetrack/wasm/rules/hamustro/hamustrotest"
)

// FuzzHamustroEventsReachTheStore is the property behind every 2xx of the
// track route: an event the edge acknowledges can be stored. It feeds signed
// Hamustro bodies through the built-in hamustro rule — the committed .wasm,
// run by wasm/host as the edge runs it — and follows each event of a 2xx
// verdict along its way to the store:
//
//  1. stamped and encoded as the edge spools it (abi.AppendEvent);
//  2. decoded as the forwarder checks a spool entry (proto.Unmarshal into
//     an Event), then sent verbatim in a zstd Batch, as the forwarder sends;
//  3. decoded by the aggregator's Decoder and ingested by the store.
//
// No step may fail, the store must store every event or count it a
// duplicate (the same body seen again), never reject one, and every event's
// data must be a JSON object in valid UTF-8. A body the rule refuses must be
// refused with 400 or 413; a trap (a 500 that a client retries forever)
// fails too.
func FuzzHamustroEventsReachTheStore(f *testing.F) {
	for _, v := range hamustrotest.Vectors() {
		if v.Config.Value("max_clock_skew") == "" { // the fuzz signs at its own time
			f.Add(v.Request.Body)
		}
	}
	good, err := proto.Marshal(hamustrotest.Collection(2))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)

	p := newPipeline(f, "hamustro", hamustrotest.Config())
	f.Fuzz(func(t *testing.T, body []byte) {
		at := time.Unix(1700000100, 0)
		p.follow(t, hamustrotest.SignedRequest(body, at), at)
	})
}

// FuzzEyeEventsReachTheStore is the same property for POST /events: any
// body the eye rule answers 2xx ends in the store.
func FuzzEyeEventsReachTheStore(f *testing.F) {
	for _, v := range eyetest.Vectors() {
		if v.Config == nil || len(v.Config.Settings) == len(eyetest.Config().Settings) {
			f.Add(v.Request.Body)
		}
	}
	p := newPipeline(f, "eye", eyetest.Config())
	f.Fuzz(func(t *testing.T, body []byte) {
		req := eyetest.Request(string(body))
		p.follow(t, req, time.Unix(0, req.ReceivedAt))
	})
}

// pipeline is a rule as the edge runs it and a store behind it, with the
// steps an event takes between them.
type pipeline struct {
	m           *host.Module
	st          *pebble.Store
	dec         *Decoder
	enc         *zstd.Encoder
	ruleVersion string
}

func newPipeline(f *testing.F, rule string, cfg *abi.Config) *pipeline {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	rt, err := host.New(ctx, host.Options{CallTimeout: 10 * time.Second, Logger: quiet})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { rt.Close(ctx) })
	wasm, ok := dist.Rule(rule)
	if !ok {
		f.Fatalf("no built-in %s rule", rule)
	}
	m, err := rt.Load(ctx, rule, wasm, cfg)
	if err != nil {
		f.Fatal(err)
	}
	st, err := pebble.Open(pebble.Options{Dir: "db", FS: vfs.NewMem(), Logger: quiet})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	dec, err := NewDecoder(64 << 20)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(dec.Close)
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { enc.Close() })
	return &pipeline{m: m, st: st, dec: dec, enc: enc, ruleVersion: m.Name() + "@" + m.Hash()[:12]}
}

// follow runs req through the rule and, when it answers 2xx, each of its
// events to the store.
func (p *pipeline) follow(t *testing.T, req *abi.Request, at time.Time) {
	ctx := context.Background()
	v, err := p.m.Call(ctx, req)
	if err != nil {
		t.Fatalf("rule failed: %v", err)
	}
	switch {
	case v.Status == 400 || v.Status == 413:
		return
	case v.Status < 200 || v.Status > 299:
		t.Fatalf("status %d (%s)", v.Status, v.Message)
	case len(v.Events) == 0:
		return
	}
	// 1. The edge stamps and spools (edge/internal/server).
	values := make([][]byte, len(v.Events))
	for i := range v.Events {
		e := &v.Events[i]
		e.ReceivedAt = at.UnixNano()
		e.Edge = "fuzz-edge"
		e.Rule = p.ruleVersion
		values[i] = abi.AppendEvent(nil, e)
		if !json.Valid(e.Data) || !utf8.Valid(e.Data) || e.Data[0] != '{' {
			t.Fatalf("event %d: data %q is not a JSON object in UTF-8", i, e.Data)
		}
	}

	// 2. The forwarder checks each entry and sends them verbatim
	// (edge/internal/forward).
	raw, err := proto.Marshal(&eventpb.Batch{Edge: "fuzz-edge", BootEpoch: 1, FirstSeq: 1, LastSeq: uint64(len(values))})
	if err != nil {
		t.Fatal(err)
	}
	for i, val := range values {
		var ev eventpb.Event
		if err := proto.Unmarshal(val, &ev); err != nil {
			t.Fatalf("event %d (%q) was acknowledged but its spool entry does not decode: %v", i, v.Events[i].ID, err)
		}
		raw = protowire.AppendTag(raw, eventsField, protowire.BytesType)
		raw = protowire.AppendBytes(raw, val)
	}

	// 3. The aggregator decodes the batch and stores it.
	batch, err := p.dec.Decode(p.enc.EncodeAll(raw, nil), Zstd)
	if err != nil {
		t.Fatalf("aggregator refuses the batch: %v", err)
	}
	res, err := p.st.Ingest(ctx, batch.GetEvents())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejected) > 0 {
		r := res.Rejected[0]
		t.Fatalf("%d of %d acknowledged events rejected by the store, first %d (%q): %s",
			len(res.Rejected), len(values), r.Index, r.ID, r.Reason)
	}
	if res.Stored+res.Duplicates != len(values) {
		t.Fatalf("store accounted for %d+%d of %d events", res.Stored, res.Duplicates, len(values))
	}
}

// eventsField is the field number of Batch.events.
var eventsField = (&eventpb.Batch{}).ProtoReflect().Descriptor().Fields().ByName("events").Number()
