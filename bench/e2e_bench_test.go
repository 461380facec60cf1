package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/aggregator"
	"github.com/edgetrack/edgetrack/edge"
	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/proto/eventpb"
	"github.com/edgetrack/edgetrack/wasm/rules/hamustro/hamustrotest"
)

const (
	edgeToken  = "bench-edge"
	queryToken = "bench-query"
	payloads   = 10 // per collection
)

type stack struct {
	agg     *aggregator.Aggregator
	edge    *edge.Edge
	aggURL  string
	edgeURL string
	stop    func()
}

func startStack(b *testing.B) *stack {
	b.Helper()
	cfg := config.Default()
	dir := b.TempDir()
	cfg.Aggregator.Listen, cfg.Aggregator.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Aggregator.DataDir = filepath.Join(dir, "agg")
	cfg.Aggregator.Tokens.Edge = []string{edgeToken}
	cfg.Aggregator.Tokens.Query = []string{queryToken}
	cfg.Edge.Listen, cfg.Edge.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Edge.DataDir = filepath.Join(dir, "edge")
	cfg.Edge.Token = edgeToken
	cfg.Edge.Hamustro.Secrets = []string{hamustrotest.Secret}
	cfg.Edge.Spool.MinFreeBytes = 0
	cfg.Log.Level = "error"
	ctx, cancel := context.WithCancel(context.Background())
	agg, err := aggregator.New(aggregator.Options{Config: cfg.Aggregator, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	cfg.Edge.AggregatorURL = "http://" + agg.Addr()
	e, err := edge.New(ctx, edge.Options{Config: cfg.Edge, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	aggDone, edgeDone := make(chan struct{}), make(chan struct{})
	go func() { agg.Run(ctx); close(aggDone) }()
	go func() { e.Run(ctx); close(edgeDone) }()
	s := &stack{agg: agg, edge: e, aggURL: "http://" + agg.Addr(), edgeURL: "http://" + e.Addr()}
	s.stop = func() { cancel(); <-edgeDone; <-aggDone }
	b.Cleanup(s.stop)
	return s
}

var seq atomic.Uint64

// signedCollection returns a body and headers for a new session's collection.
func signedCollection(b testing.TB) ([]byte, string, string) {
	c := hamustrotest.Collection(payloads)
	c.DeviceId = proto.String(fmt.Sprintf("bench-device-%d-%d", time.Now().UnixNano(), seq.Add(1)))
	c.Session = proto.String(hamustrotest.SessionOf(c))
	body, err := proto.Marshal(c)
	if err != nil {
		b.Fatal(err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	return body, ts, hamustrotest.Sign(ts, body, hamustrotest.Secret)
}

// BenchmarkEndToEnd measures events/s from clients to the aggregator's store.
//
//   - edge: signed 10-payload collections POSTed to the edge by 16 concurrent
//     clients (rule + synced spool), forwarded in batches, stored with
//     indexes; the clock stops when the edge has nothing left to deliver.
//   - direct-ingest (baseline): the same number of events POSTed as
//     1,000-event zstd batches straight to the aggregator's ingest.
func BenchmarkEndToEnd(b *testing.B) {
	b.Run("edge", func(b *testing.B) {
		s := startStack(b)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		b.SetParallelism(8) // 16 clients on 2 cores
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				body, ts, sig := signedCollection(b)
				req, _ := http.NewRequest("POST", s.edgeURL+"/api/v1/track", bytes.NewReader(body))
				req.Header.Set("X-Hamustro-Time", ts)
				req.Header.Set("X-Hamustro-Signature", sig)
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
		for s.edge.Pending() > 0 {
			time.Sleep(time.Millisecond)
		}
		b.ReportMetric(float64(b.N*payloads)/time.Since(start).Seconds(), "events/s")
	})
	b.Run("direct-ingest", func(b *testing.B) {
		s := startStack(b)
		enc, _ := zstd.NewWriter(nil)
		total := b.N * payloads
		var batches [][]byte
		for done := 0; done < total; {
			n := min(1000, total-done)
			batch := &eventpb.Batch{Edge: "bench", BootEpoch: 1, FirstSeq: uint64(done + 1), LastSeq: uint64(done + n)}
			for i := 0; i < n; i++ {
				batch.Events = append(batch.Events, benchEvent(done+i))
			}
			raw, _ := proto.Marshal(batch)
			batches = append(batches, enc.EncodeAll(raw, nil))
			done += n
		}
		b.ResetTimer()
		start := time.Now()
		for _, body := range batches {
			req, _ := http.NewRequest("POST", s.aggURL+"/v1/ingest", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+edgeToken)
			req.Header.Set("Content-Type", "application/x-protobuf")
			req.Header.Set("Content-Encoding", "zstd")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
		b.ReportMetric(float64(total)/time.Since(start).Seconds(), "events/s")
	})
}

// benchEvent is an event shaped like what the hamustro rule emits.
func benchEvent(i int) *eventpb.Event {
	c := hamustrotest.Collection(0)
	session := fmt.Sprintf("%032x", i/payloads+int(seq.Add(1))<<20)
	now := time.Now().UnixNano()
	return &eventpb.Event{
		Id: fmt.Sprintf("h:%s:%d", session, i%payloads+1), Source: eventpb.Source_SOURCE_HAMUSTRO,
		ReceivedAt: now, ClientTime: now, Session: session, Category: c.GetClientId(), Name: "screen_view",
		Data: []byte(`{"device_id":"` + c.GetDeviceId() + `","client_id":"app.example","system_version":"14.1","product_version":"2.3.0","system":"android","at":1700000001,"nr":1,"user_id":42,"parameters":"{\"screen\":\"home\"}"}`),
		Ip:   "203.0.113.7", Edge: "bench", Rule: "hamustro@000000000000",
	}
}
