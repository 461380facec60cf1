package aggregator_test

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/proto/eventpb"
)

func TestIngestAuth(t *testing.T) {
	r := start(t, testConfig(t))
	body := compress(t, marshalBatch(t, batch(event("a", "s", 1))))
	for _, tc := range []struct {
		name   string
		auth   string // Authorization header; "" sends none
		status int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"not bearer", "Basic ZWRnZTplZGdl", http.StatusUnauthorized},
		{"empty bearer", "Bearer ", http.StatusUnauthorized},
		{"query token", "Bearer " + queryToken, http.StatusForbidden},
		{"admin token", "Bearer " + adminToken, http.StatusForbidden},
		{"unknown token", "Bearer nope", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, r.base+"/v1/ingest", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-protobuf")
			req.Header.Set("Content-Encoding", "zstd")
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if got := resp.Header.Get("WWW-Authenticate"); (tc.status == http.StatusUnauthorized) != strings.HasPrefix(got, "Bearer") {
				t.Errorf("WWW-Authenticate = %q", got)
			}
		})
	}
	// Nothing was stored by the refused requests.
	if ids := r.sessionIDs("s", 10); len(ids) != 0 {
		t.Errorf("refused batches stored %v", ids)
	}
}

func TestIngestIdempotent(t *testing.T) {
	r := start(t, testConfig(t))
	b := batch(event("a", "s", 1), event("b", "s", 2), event("c", "s", 3))

	if got, want := r.ingest(b), (&eventpb.IngestResult{Stored: 3}); !proto.Equal(got, want) {
		t.Errorf("first ingest = %v, want %v", got, want)
	}
	if got, want := r.ingest(b), (&eventpb.IngestResult{Duplicates: 3}); !proto.Equal(got, want) {
		t.Errorf("second ingest = %v, want %v", got, want)
	}
	// A batch overlapping the stored events, with a copy inside itself.
	b2 := batch(event("c", "s", 3), event("d", "s", 4), event("d", "s", 4))
	if got, want := r.ingest(b2), (&eventpb.IngestResult{Stored: 1, Duplicates: 2}); !proto.Equal(got, want) {
		t.Errorf("overlapping ingest = %v, want %v", got, want)
	}
	if got, want := r.sessionIDs("s", 10), []string{"d", "c", "b", "a"}; !slices.Equal(got, want) {
		t.Errorf("stored %v, want %v", got, want)
	}
}

func TestIngestOutOfOrder(t *testing.T) {
	r := start(t, testConfig(t))
	older := batch(event("a", "s", 1), event("b", "s", 2))
	newer := batch(event("c", "s", 3), event("d", "s", 4))
	newer.FirstSeq, newer.LastSeq = 3, 4

	// The newer batch arrives first, then the older one, then a retry of
	// the newer one.
	for _, tc := range []struct {
		b    *eventpb.Batch
		want *eventpb.IngestResult
	}{
		{newer, &eventpb.IngestResult{Stored: 2}},
		{older, &eventpb.IngestResult{Stored: 2}},
		{newer, &eventpb.IngestResult{Duplicates: 2}},
	} {
		if got := r.ingest(tc.b); !proto.Equal(got, tc.want) {
			t.Errorf("ingest of seq %d-%d = %v, want %v", tc.b.FirstSeq, tc.b.LastSeq, got, tc.want)
		}
	}
	if got, want := r.sessionIDs("s", 3), []string{"d", "c", "b", "a"}; !slices.Equal(got, want) {
		t.Errorf("stored %v, want %v", got, want)
	}
}

func TestIngestRejections(t *testing.T) {
	r := start(t, testConfig(t))
	noID := event("", "s", 2)
	nul := event("nul", "s\x00x", 3)
	got := r.ingest(batch(event("a", "s", 1), noID, nul, event("b", "s", 4)))
	want := &eventpb.IngestResult{Stored: 2, Rejected: []*eventpb.Rejection{
		{Index: 1, Id: "", Reason: "empty id"},
		{Index: 2, Id: "nul", Reason: "session contains a NUL byte"},
	}}
	if !proto.Equal(got, want) {
		t.Errorf("ingest = %v, want %v", got, want)
	}
	if got, want := r.sessionIDs("s", 10), []string{"b", "a"}; !slices.Equal(got, want) {
		t.Errorf("stored %v, want %v", got, want)
	}
}

func TestIngestEncodings(t *testing.T) {
	r := start(t, testConfig(t))
	raw := marshalBatch(t, batch(event("a", "s", 1)))

	t.Run("identity without Content-Encoding", func(t *testing.T) {
		resp := r.post(raw, "Content-Encoding", "")
		resp.wantStatus(t, http.StatusOK)
		if got := decodeResult(t, resp); got.Stored != 1 {
			t.Errorf("ingest = %v, want 1 stored", got)
		}
	})
	t.Run("identity named", func(t *testing.T) {
		resp := r.post(raw, "Content-Encoding", "identity")
		resp.wantStatus(t, http.StatusOK)
		if got := decodeResult(t, resp); got.Duplicates != 1 {
			t.Errorf("ingest = %v, want 1 duplicate", got)
		}
	})
	t.Run("empty batch", func(t *testing.T) {
		for _, body := range [][]byte{nil, compress(t, nil), compress(t, marshalBatch(t, batch()))} {
			resp := r.post(body)
			resp.wantStatus(t, http.StatusOK)
			if got := decodeResult(t, resp); !proto.Equal(got, &eventpb.IngestResult{}) {
				t.Errorf("ingest = %v, want zeros", got)
			}
		}
	})
}

func TestIngestBadRequests(t *testing.T) {
	r := start(t, testConfig(t))
	raw := marshalBatch(t, batch(event("a", "s", 1)))
	// Compresses to a few hundred bytes; decompresses beyond maxBatch.
	bomb := event("big", "s", 1)
	bomb.Data = bytes.Repeat([]byte("x"), 4*maxBatch)
	bombBody := compress(t, marshalBatch(t, batch(bomb)))
	if len(bombBody) >= maxBatch {
		t.Fatalf("bomb body is %d bytes, not small", len(bombBody))
	}

	for _, tc := range []struct {
		name   string
		body   []byte
		header []string
		status int
		msg    string // part of the error message
	}{
		{"not zstd", raw, nil, http.StatusBadRequest, "not zstd"},
		{"not a batch", compress(t, []byte("\xff\xff\xff\xff")), nil, http.StatusBadRequest, "not an eventpb.Batch"},
		{"not a batch, identity", []byte("\xff\xff\xff\xff"), []string{"Content-Encoding", ""}, http.StatusBadRequest, "not an eventpb.Batch"},
		{"decompresses over the limit", bombBody, nil, http.StatusRequestEntityTooLarge, "limit"},
		{"body over the limit", bytes.Repeat([]byte{0}, maxBatch+1024), []string{"Content-Encoding", ""}, http.StatusRequestEntityTooLarge, "limit"},
		{"gzip", raw, []string{"Content-Encoding", "gzip"}, http.StatusUnsupportedMediaType, "gzip"},
		{"JSON", raw, []string{"Content-Type", "application/json"}, http.StatusUnsupportedMediaType, "application/x-protobuf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := r.post(tc.body, tc.header...)
			resp.wantStatus(t, tc.status)
			if msg := resp.errorMessage(t); !strings.Contains(msg, tc.msg) {
				t.Errorf("error %q does not contain %q", msg, tc.msg)
			}
		})
	}
	if ids := r.sessionIDs("s", 10); len(ids) != 0 {
		t.Errorf("refused batches stored %v", ids)
	}

	resp := r.do(http.MethodGet, r.base+"/v1/ingest", edgeToken, nil)
	resp.wantStatus(t, http.StatusMethodNotAllowed)
}

func TestIngestMetrics(t *testing.T) {
	r := start(t, testConfig(t))
	r.ingest(batch(event("a", "s", 1), event("b", "s", 2)))
	r.ingest(batch(event("a", "s", 1), event("", "s", 3)))
	r.post([]byte("not zstd")).wantStatus(t, http.StatusBadRequest)

	resp := r.do(http.MethodGet, r.base+"/metrics", "", nil)
	resp.wantStatus(t, http.StatusOK)
	text := string(resp.body)
	for _, want := range []string{
		`edgetrack_ingest_batches_total{result="ok"} 2`,
		`edgetrack_ingest_batches_total{result="invalid"} 1`,
		`edgetrack_ingest_events_total{result="stored"} 2`,
		`edgetrack_ingest_events_total{result="duplicate"} 1`,
		`edgetrack_ingest_events_total{result="rejected"} 1`,
		`edgetrack_ingest_edge_events_total{edge="edge-1"} 4`,
		`edgetrack_ingest_request_seconds_count 3`,
		`edgetrack_store_events_stored_total 2`,
		`edgetrack_http_requests_total{code="200",listener="public",route="/v1/ingest"} 2`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
