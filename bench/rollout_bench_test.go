package bench

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/aggregator"
	"github.com/edgetrack/edgetrack/edge"
	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/wasm/host"
	"github.com/edgetrack/edgetrack/wasm/rules/hamustro/hamustrotest"
)

// BenchmarkActivation measures the time from a rule activation answered by
// the aggregator's registry to the first request an edge answers with the
// new version (hamustro, alternating two valid versions). It includes the
// edge's long-poll wake-up, fetching the module, validating it against the
// route's built-in vectors, loading it and the atomic swap.
func BenchmarkActivation(b *testing.B) {
	dir := b.TempDir()
	cfg := config.Default()
	cfg.Aggregator.Listen, cfg.Aggregator.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Aggregator.DataDir = filepath.Join(dir, "agg")
	cfg.Aggregator.Tokens.Edge, cfg.Aggregator.Tokens.Query, cfg.Aggregator.Tokens.Admin = []string{edgeToken}, []string{queryToken}, []string{"bench-admin"}
	agg, err := aggregator.New(aggregator.Options{Config: cfg.Aggregator, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go agg.Run(ctx)
	ecfg := cfg.Edge
	ecfg.Listen, ecfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	ecfg.DataDir = filepath.Join(dir, "edge")
	ecfg.AggregatorURL = "http://" + agg.Addr()
	ecfg.Token = edgeToken
	ecfg.Hamustro.Secrets = []string{hamustrotest.Secret}
	ecfg.Spool.MinFreeBytes = 0
	e, err := edge.New(ctx, edge.Options{Config: ecfg, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	go e.Run(ctx)

	alt, err := os.ReadFile("../wasm/host/testdata/hamustroguest.wasm")
	if err != nil {
		b.Fatal(err)
	}
	admin := func(method, path, ctype string, body []byte) {
		req, _ := http.NewRequest(method, "http://"+agg.AdminAddr()+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer bench-admin")
		req.Header.Set("Content-Type", ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			b.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, msg)
		}
	}
	admin("PUT", "/rules/hamustro", "application/wasm", alt)
	c := hamustrotest.Collection(1)
	body, _ := proto.Marshal(c)
	served := func() string {
		req, _ := http.NewRequest("POST", "http://"+e.Addr()+"/api/v1/track", bytes.NewReader(body))
		ts := time.Now().Unix()
		req.Header.Set("X-Hamustro-Time", strconv.FormatInt(ts, 10))
		req.Header.Set("X-Hamustro-Signature", hamustrotest.Sign(strconv.FormatInt(ts, 10), body, hamustrotest.Secret))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Header.Get("X-Edgetrack-Rule")
	}
	versions := []struct{ ref, hash string }{{host.Hash(alt), host.Hash(alt)}, {"builtin", ""}}
	builtinVersion := served() // the edge starts on the built-in
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		v := versions[i%2]
		want := "hamustro@" + v.hash
		if v.hash == "" {
			want = builtinVersion
		} else {
			want = want[:len("hamustro@")+12]
		}
		start := time.Now()
		admin("POST", "/rules/hamustro/activate", "application/json", []byte(`{"hash":"`+v.ref+`"}`))
		for served() != want {
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/activation")
}
