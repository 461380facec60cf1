package ingest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

func marshal(tb testing.TB, b *eventpb.Batch) []byte {
	tb.Helper()
	raw, err := proto.Marshal(b)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

func compress(tb testing.TB, raw []byte) []byte {
	tb.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(raw, nil)
}

func newDecoder(tb testing.TB, max int64) *Decoder {
	tb.Helper()
	d, err := NewDecoder(max)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(d.Close)
	return d
}

func sampleBatch(dataLen int) *eventpb.Batch {
	return &eventpb.Batch{
		Edge: "edge-1", BootEpoch: 3, FirstSeq: 10, LastSeq: 11,
		Events: []*eventpb.Event{
			{Id: "a", Session: "s", ReceivedAt: 1, Data: bytes.Repeat([]byte("x"), dataLen)},
			{Id: "b", Session: "s", ReceivedAt: 2},
		},
	}
}

func TestParseEncoding(t *testing.T) {
	for h, want := range map[string]Encoding{"": Identity, "identity": Identity, "zstd": Zstd, " ZSTD ": Zstd} {
		if got, err := ParseEncoding(h); err != nil || got != want {
			t.Errorf("ParseEncoding(%q) = %v, %v; want %v", h, got, err, want)
		}
	}
	for _, h := range []string{"gzip", "zstd, gzip", "br"} {
		if _, err := ParseEncoding(h); !errors.Is(err, ErrUnsupportedEncoding) {
			t.Errorf("ParseEncoding(%q) = %v, want ErrUnsupportedEncoding", h, err)
		}
	}
}

func TestDecode(t *testing.T) {
	const limit = 4096
	d := newDecoder(t, limit)
	small := marshal(t, sampleBatch(100))
	big := marshal(t, sampleBatch(2*limit))
	twoFrames := append(compress(t, small[:len(small)/2]), compress(t, small[len(small)/2:])...)

	for _, tc := range []struct {
		name string
		body []byte
		enc  Encoding
		err  error // nil: decodes to sampleBatch(100)
	}{
		{"zstd", compress(t, small), Zstd, nil},
		{"identity", small, Identity, nil},
		{"two zstd frames", twoFrames, Zstd, nil},
		{"zstd over the limit", compress(t, big), Zstd, ErrTooLarge},
		{"identity over the limit", big, Identity, ErrTooLarge},
		{"not zstd", small, Zstd, ErrMalformed},
		{"truncated zstd", compress(t, small)[:20], Zstd, ErrMalformed},
		{"not a batch", []byte{0xff, 0xff, 0xff}, Identity, ErrMalformed},
		{"zstd of not a batch", compress(t, []byte("hello, world")), Zstd, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := d.Decode(tc.body, tc.enc)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Decode = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(b, sampleBatch(100)) {
				t.Errorf("Decode = %v", b)
			}
		})
	}

	t.Run("empty", func(t *testing.T) {
		for _, enc := range []Encoding{Identity, Zstd} {
			b, err := d.Decode(nil, enc)
			if err != nil || len(b.GetEvents()) != 0 {
				t.Errorf("Decode(nil, %s) = %v, %v", enc, b, err)
			}
		}
	})
}

func TestResult(t *testing.T) {
	got := Result(store.IngestStats{Stored: 2, Duplicates: 1, Rejected: []store.Rejection{{Index: 3, ID: "x", Reason: "empty id"}}}, 0)
	want := &eventpb.IngestResult{Stored: 2, Duplicates: 1, Rejected: []*eventpb.Rejection{{Index: 3, Id: "x", Reason: "empty id"}}}
	if !proto.Equal(got, want) {
		t.Errorf("Result = %v, want %v", got, want)
	}
}

// FuzzDecode checks that Decode never panics, reports every failure as one
// of its errors, and never returns a batch larger than its limit.
func FuzzDecode(f *testing.F) {
	const limit = 1 << 14
	small := marshal(f, sampleBatch(100))
	f.Add(small, false)
	f.Add(compress(f, small), true)
	f.Add(compress(f, marshal(f, sampleBatch(2*limit))), true)
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd}, true) // zstd magic only
	f.Add([]byte{}, true)
	d := newDecoder(f, limit)
	f.Fuzz(func(t *testing.T, body []byte, zstd bool) {
		enc := Identity
		if zstd {
			enc = Zstd
		}
		b, err := d.Decode(body, enc)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Decode: unexpected error %v", err)
			}
			return
		}
		if n := proto.Size(b); n > limit*2 { // re-encoding may differ a little, never by much
			t.Fatalf("decoded a batch of %d bytes with a limit of %d", n, limit)
		}
	})
}
