package aggregator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/aggregator"
	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/internal/dbtest"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// Tokens of the test configuration.
const (
	edgeToken  = "edge-secret"
	queryToken = "query-secret"
	adminToken = "admin-secret"
)

// maxBatch is the test configuration's aggregator.max_batch_bytes.
const maxBatch = 64 << 10

// testConfig is a valid configuration with loopback listeners on free ports
// and a fresh data directory.
func testConfig(tb testing.TB) config.Aggregator {
	tb.Helper()
	cfg := config.Default().Aggregator
	cfg.Listen = "127.0.0.1:0"
	cfg.AdminListen = "127.0.0.1:0"
	cfg.DataDir = tb.TempDir()
	cfg.Tokens = config.Tokens{Query: []string{queryToken}, Admin: []string{adminToken}, Edge: []string{edgeToken}}
	cfg.MaxBatchBytes = maxBatch
	cfg.Query.MaxPageSize = 50
	return cfg
}

// eachBackend runs test once with each store backend: Pebble, and
// ClickHouse on a database of its own (skipped without a server, as
// internal/dbtest says).
func eachBackend(t *testing.T, test func(t *testing.T, cfg config.Aggregator)) {
	for _, backend := range []string{config.BackendPebble, config.BackendClickHouse} {
		t.Run(backend, func(t *testing.T) {
			cfg := testConfig(t)
			if backend == config.BackendClickHouse {
				cfg.Store.Backend = backend
				cfg.Store.ClickHouse.DSN = dbtest.ClickHouse(t)
			}
			test(t, cfg)
		})
	}
}

var quiet = slog.New(slog.DiscardHandler)

// running is an aggregator serving on loopback.
type running struct {
	tb     testing.TB
	agg    *aggregator.Aggregator
	base   string // http://public
	admin  string // http://admin
	cancel context.CancelFunc
	done   chan error
}

// start runs an aggregator with cfg until the test ends (or stop).
func start(tb testing.TB, cfg config.Aggregator) *running {
	tb.Helper()
	agg, err := aggregator.New(aggregator.Options{Config: cfg, Logger: quiet})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{
		tb: tb, agg: agg, cancel: cancel, done: make(chan error, 1),
		base: "http://" + agg.Addr(), admin: "http://" + agg.AdminAddr(),
	}
	go func() { r.done <- agg.Run(ctx) }()
	tb.Cleanup(func() {
		if err := r.stop(); err != nil {
			tb.Errorf("Run: %v", err)
		}
	})
	return r
}

// stop cancels Run's context and returns what Run returned. It may be
// called more than once.
func (r *running) stop() error {
	r.cancel()
	err, ok := <-r.done
	if ok {
		close(r.done)
	}
	return err
}

var client = &http.Client{Timeout: time.Minute} // a safety net, not an assertion

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request; token "" sends no Authorization.
func (r *running) do(method, url, token string, body []byte, header ...string) response {
	r.tb.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		r.tb.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		r.tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.tb.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// errorMessage is the "error" of a JSON error body.
func (resp response) errorMessage(tb testing.TB) string {
	tb.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(resp.body, &e); err != nil || e.Error == "" {
		tb.Fatalf("body %q is not a JSON error: %v", resp.body, err)
	}
	return e.Error
}

// wantStatus fails the test unless resp has status.
func (resp response) wantStatus(tb testing.TB, status int) {
	tb.Helper()
	if resp.status != status {
		tb.Fatalf("status %d, want %d; body %s", resp.status, status, resp.body)
	}
}

func marshalBatch(tb testing.TB, b *eventpb.Batch) []byte {
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

// post sends a raw ingest body with the forwarder's headers and the edge
// token; extra headers override them ("Content-Encoding", "" removes it).
func (r *running) post(body []byte, header ...string) response {
	r.tb.Helper()
	h := append([]string{
		"Content-Type", "application/x-protobuf",
		"Content-Encoding", "zstd",
		"X-Edgetrack-Edge", "edge-1",
	}, header...)
	return r.do(http.MethodPost, r.base+"/v1/ingest", edgeToken, body, h...)
}

// ingest sends b as the forwarder does and returns the decoded answer.
func (r *running) ingest(b *eventpb.Batch) *eventpb.IngestResult {
	r.tb.Helper()
	resp := r.post(compress(r.tb, marshalBatch(r.tb, b)))
	resp.wantStatus(r.tb, http.StatusOK)
	return decodeResult(r.tb, resp)
}

func decodeResult(tb testing.TB, resp response) *eventpb.IngestResult {
	tb.Helper()
	if ct := resp.header.Get("Content-Type"); ct != "application/x-protobuf" {
		tb.Errorf("Content-Type = %q, want application/x-protobuf", ct)
	}
	res := new(eventpb.IngestResult)
	if err := proto.Unmarshal(resp.body, res); err != nil {
		tb.Fatalf("decoding IngestResult: %v", err)
	}
	return res
}

// page is GET /events decoded.
type page struct {
	Count    int              `json:"count"`
	Next     *string          `json:"next"`
	Previous *string          `json:"previous"`
	Results  []map[string]any `json:"results"`
}

// ids are the ids of the page's events in order.
func (p page) ids() []string {
	var ids []string
	for _, ev := range p.Results {
		ids = append(ids, ev["id"].(string))
	}
	return ids
}

// events GETs /events with the query token.
func (r *running) events(params url.Values) (response, page) {
	r.tb.Helper()
	return r.eventsAt(r.base + "/events?" + params.Encode())
}

// eventsAt GETs an absolute URL of /events (such as a next link) with the
// query token.
func (r *running) eventsAt(u string) (response, page) {
	r.tb.Helper()
	if !strings.HasPrefix(u, r.base+"/events?") && u != r.base+"/events" {
		r.tb.Fatalf("link %q is not an absolute URL of %s/events", u, r.base)
	}
	resp := r.do(http.MethodGet, u, queryToken, nil)
	var p page
	if resp.status == http.StatusOK {
		if err := json.Unmarshal(resp.body, &p); err != nil {
			r.tb.Fatalf("decoding page %s: %v", resp.body, err)
		}
	}
	return resp, p
}

// sessionIDs pages through all events of session by cursor with page size
// limit, following the next links, and returns their ids in order.
func (r *running) sessionIDs(session string, limit int) []string {
	r.tb.Helper()
	return r.cursorIDs(url.Values{"session_id": {session}, "limit": {strconv.Itoa(limit)}})
}

// cursorIDs pages through the events params select by cursor, following
// the next links, and returns their ids in order.
func (r *running) cursorIDs(params url.Values) []string {
	r.tb.Helper()
	params.Set("cursor", "")
	var ids []string
	u := r.base + "/events?" + params.Encode()
	for pages := 0; ; pages++ {
		if pages > 1000 {
			r.tb.Fatal("paging does not end")
		}
		resp, p := r.eventsAt(u)
		resp.wantStatus(r.tb, http.StatusOK)
		if p.Previous != nil {
			r.tb.Fatalf("cursor page with a previous link %q", *p.Previous)
		}
		if len(p.Results) == 0 && pages > 0 {
			r.tb.Fatalf("empty page %d after a next link", pages)
		}
		ids = append(ids, p.ids()...)
		if p.Next == nil {
			return ids
		}
		u = *p.Next
	}
}

// t0 is the time of the test events.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// event is a test event of session at t0+sec seconds (client time).
func event(id, session string, sec int) *eventpb.Event {
	return &eventpb.Event{
		Id: id, Source: eventpb.Source_SOURCE_HAMUSTRO, Session: session,
		Category: "cat", Name: "name",
		ReceivedAt: t0.Add(time.Hour).UnixNano(),
		ClientTime: t0.Add(time.Duration(sec) * time.Second).UnixNano(),
		Data:       []byte(`{"n":` + strconv.Itoa(sec) + `}`),
		Ip:         "10.0.0.1", Edge: "edge-1", Rule: "hamustro@abc",
	}
}

func batch(events ...*eventpb.Event) *eventpb.Batch {
	return &eventpb.Batch{Edge: "edge-1", BootEpoch: 1, FirstSeq: 1, LastSeq: uint64(len(events)), Events: events}
}
