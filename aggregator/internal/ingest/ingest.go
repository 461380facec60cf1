// Package ingest decodes the batches edges forward to the aggregator and
// encodes the aggregator's answer.
//
// The wire contract, shared with the edge's forwarder:
//
//	POST /v1/ingest
//	Authorization: Bearer <edge token>
//	Content-Type: application/x-protobuf
//	Content-Encoding: zstd            (or absent / identity)
//	X-Edgetrack-Edge: <edge id>
//	body: zstd(eventpb.Batch)
//
//	200, Content-Type: application/x-protobuf
//	body: eventpb.IngestResult
//
// A [Decoder] never holds more than its limit of decompressed bytes for one
// batch: the zstd decoder refuses frames whose declared or actual content
// exceeds it, and refuses windows larger than it, so a small "zstd bomb"
// cannot make the aggregator allocate more than the limit.
package ingest

import (
	"errors"
	"fmt"
	"strings"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// Media types and header names of the wire contract.
const (
	ContentType = "application/x-protobuf"
	EdgeHeader  = "X-Edgetrack-Edge"
)

// Encoding is a Content-Encoding the aggregator accepts.
type Encoding uint8

// Accepted content encodings.
const (
	Identity Encoding = iota // no Content-Encoding, or "identity"
	Zstd                     // "zstd"
)

func (e Encoding) String() string {
	if e == Zstd {
		return "zstd"
	}
	return "identity"
}

// Errors of decoding. They wrap a description of what was wrong.
var (
	ErrUnsupportedEncoding = errors.New("ingest: unsupported content encoding")
	ErrTooLarge            = errors.New("ingest: batch too large")
	ErrMalformed           = errors.New("ingest: malformed batch")
)

// ParseEncoding parses a Content-Encoding header value. Only a single coding
// is accepted: the forwarder never stacks them.
func ParseEncoding(header string) (Encoding, error) {
	switch v := strings.ToLower(strings.TrimSpace(header)); v {
	case "", "identity":
		return Identity, nil
	case "zstd":
		return Zstd, nil
	default:
		return 0, fmt.Errorf("%w %q: send zstd or identity", ErrUnsupportedEncoding, header)
	}
}

// Decoder turns request bodies into batches, refusing batches larger than
// its limit. It is safe for concurrent use.
type Decoder struct {
	max  int64
	zstd *zstd.Decoder
}

// NewDecoder returns a Decoder that refuses batches whose decoded protobuf
// is larger than maxBytes.
func NewDecoder(maxBytes int64) (*Decoder, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("ingest: batch limit must be positive, got %d", maxBytes)
	}
	// DecodeAll on one Decoder runs up to GOMAXPROCS decodes concurrently.
	// WithDecoderMaxMemory bounds the output of one DecodeAll call and
	// also the window size.
	zd, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderMaxMemory(uint64(maxBytes)),
	)
	if err != nil {
		return nil, fmt.Errorf("ingest: zstd decoder: %w", err)
	}
	return &Decoder{max: maxBytes, zstd: zd}, nil
}

// Close releases the zstd decoder. The Decoder must not be used afterwards.
func (d *Decoder) Close() { d.zstd.Close() }

// Limit is the largest decoded batch the Decoder accepts, in bytes.
func (d *Decoder) Limit() int64 { return d.max }

// Decode decodes body, sent with encoding enc, into a Batch. The errors wrap
// ErrTooLarge (the decoded batch is over the limit) or ErrMalformed (not
// zstd, or not a Batch). The returned batch does not alias body.
func (d *Decoder) Decode(body []byte, enc Encoding) (*eventpb.Batch, error) {
	raw := body
	if enc == Zstd {
		var err error
		raw, err = d.zstd.DecodeAll(body, nil)
		switch {
		case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded):
			return nil, fmt.Errorf("%w: decompresses to more than %d bytes", ErrTooLarge, d.max)
		case err != nil:
			return nil, fmt.Errorf("%w: body is not zstd: %v", ErrMalformed, err)
		}
	}
	if int64(len(raw)) > d.max {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrTooLarge, len(raw), d.max)
	}
	b := new(eventpb.Batch)
	if err := proto.Unmarshal(raw, b); err != nil {
		return nil, fmt.Errorf("%w: body is not an eventpb.Batch: %v", ErrMalformed, err)
	}
	return b, nil
}

// Result is the IngestResult answering a batch that store.Ingest handled
// with st.
func Result(st store.IngestStats, suppressed int) *eventpb.IngestResult {
	res := &eventpb.IngestResult{
		Stored:     uint32(st.Stored),
		Duplicates: uint32(st.Duplicates),
		Suppressed: uint32(suppressed),
	}
	if len(st.Rejected) > 0 {
		res.Rejected = make([]*eventpb.Rejection, len(st.Rejected))
		for i, r := range st.Rejected {
			res.Rejected[i] = &eventpb.Rejection{Index: uint32(r.Index), Id: r.ID, Reason: r.Reason}
		}
	}
	return res
}
