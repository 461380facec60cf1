package forward

import (
	"net/http"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/edge/internal/spool"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// FuzzClassify feeds arbitrary 200 bodies to classify: it must not panic, and
// whatever it accepts must account for every event of the batch, naming each
// rejected one once and within range.
func FuzzClassify(f *testing.F) {
	seed := func(res *eventpb.IngestResult) []byte {
		b, err := proto.Marshal(res)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add(seed(&eventpb.IngestResult{Stored: 3}))
	f.Add(seed(&eventpb.IngestResult{Stored: 1, Duplicates: 1, Rejected: []*eventpb.Rejection{{Index: 2, Id: "c", Reason: "bad"}}}))
	f.Add(seed(&eventpb.IngestResult{Stored: 2, Rejected: []*eventpb.Rejection{{Index: 7}}}))
	f.Add(seed(&eventpb.IngestResult{Stored: 1, Rejected: []*eventpb.Rejection{{Index: 0}, {Index: 0}}}))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff})

	b := &batch{
		entries: []spool.Entry{{Pos: spool.Position{Epoch: 1, Seq: 1}}, {Pos: spool.Position{Epoch: 1, Seq: 2}}, {Pos: spool.Position{Epoch: 1, Seq: 3}}},
		ids:     []string{"a", "b", "c"},
	}
	resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{}}
	f.Fuzz(func(t *testing.T, body []byte) {
		out := classify(resp, body, nil, b)
		switch out.class {
		case classRetry:
			if out.fail.kind == "" {
				t.Fatal("retry without a kind")
			}
		case classSuccess:
			var res eventpb.IngestResult
			if err := proto.Unmarshal(body, &res); err != nil {
				t.Fatalf("accepted a body that does not decode: %v", err)
			}
			if int(res.Stored)+int(res.Duplicates)+len(out.rejected) != len(b.entries) {
				t.Fatalf("accepted %v for %d events", &res, len(b.entries))
			}
			seen := map[int]bool{}
			for _, rj := range out.rejected {
				if rj.index < 0 || rj.index >= len(b.entries) || seen[rj.index] {
					t.Fatalf("bad rejection index %d in %v", rj.index, out.rejected)
				}
				seen[rj.index] = true
			}
		default:
			t.Fatalf("a 200 classified as %d", out.class)
		}
	})
}
