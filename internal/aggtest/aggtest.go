// Package aggtest runs a real aggregator on loopback for tests of its
// clients (the sync client, the CLI), and ingests events into it as an edge
// does.
package aggtest

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"testing"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/aggregator"
	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// The tokens the aggregator accepts.
const (
	EdgeToken  = "aggtest-edge-token"
	QueryToken = "aggtest-query-token"
	AdminToken = "aggtest-admin-token"
)

// Aggregator is an aggregator serving on loopback until the test ends.
type Aggregator struct {
	URL   string // its public listener, http://127.0.0.1:port
	Admin string // its admin listener
	t     testing.TB
	cfg   config.Aggregator
	stop  func()
	seq   uint64
}

// Start runs an aggregator with its data in dir.
func Start(t testing.TB, dir string) *Aggregator {
	t.Helper()
	cfg := config.Default().Aggregator
	cfg.Listen, cfg.AdminListen, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", dir
	cfg.Tokens = config.Tokens{Edge: []string{EdgeToken}, Query: []string{QueryToken}, Admin: []string{AdminToken}}
	a := &Aggregator{t: t, cfg: cfg}
	a.start()
	t.Cleanup(func() { a.stop() })
	return a
}

func (a *Aggregator) start() {
	a.t.Helper()
	agg, err := aggregator.New(aggregator.Options{Config: a.cfg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		a.t.Fatal(err)
	}
	a.cfg.Listen, a.cfg.AdminListen = agg.Addr(), agg.AdminAddr() // the same ports after a restart
	a.URL, a.Admin = "http://"+agg.Addr(), "http://"+agg.AdminAddr()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { agg.Run(ctx); close(done) }()
	stopped := false
	a.stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
}

// Restart stops the aggregator and starts it again on the same port and data.
func (a *Aggregator) Restart() { a.stop(); a.start() }

// Ingest posts events as one edge batch and fails the test unless stored.
func (a *Aggregator) Ingest(events ...*eventpb.Event) {
	a.t.Helper()
	a.seq++
	raw, err := proto.Marshal(&eventpb.Batch{Edge: "edge-1", BootEpoch: 1, FirstSeq: a.seq, LastSeq: a.seq, Events: events})
	if err != nil {
		a.t.Fatal(err)
	}
	enc, _ := zstd.NewWriter(nil)
	body := enc.EncodeAll(raw, nil)
	enc.Close()
	req, _ := http.NewRequest("POST", a.URL+"/v1/ingest", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+EdgeToken)
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "zstd")
	req.Header.Set("X-Edgetrack-Edge", "edge-1")
	a.mustOK("ingest", req)
}

// Erase erases the subject kind=value (DELETE /v1/subjects) and fails the
// test unless it answers 200.
func (a *Aggregator) Erase(kind, value string) {
	a.t.Helper()
	req, _ := http.NewRequest("DELETE", a.Admin+"/v1/subjects?"+url.Values{kind: {value}}.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+AdminToken)
	a.mustOK("erase "+kind+"="+value, req)
}

// mustOK sends req and fails the test unless it answers 200.
func (a *Aggregator) mustOK(what string, req *http.Request) {
	a.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		a.t.Fatalf("%s: %d %s", what, resp.StatusCode, b)
	}
}
