package main

import (
	"crypto/tls"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/internal/freeport"
	"github.com/edgetrack/edgetrack/internal/tlsconf/tlsconftest"
)

// TestSIGHUPReloadsCertificates runs the aggregator binary with HTTPS and
// renews its certificate in place: after SIGHUP new connections get the new
// one; a broken key file on the next SIGHUP keeps it and logs why; an edge
// without TLS, trusting the aggregator through edge.aggregator_ca_file,
// forwards to it over HTTPS and survives SIGHUP too.
func TestSIGHUPReloadsCertificates(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	ca := tlsconftest.NewCA(t)
	certDir := t.TempDir()
	first := ca.Issue(certDir)
	aggAddr, aggAdmin, edgeAddr, edgeAdmin := freeport.Addr(t), freeport.Addr(t), freeport.Addr(t), freeport.Addr(t)
	agg := start(t, dir, []string{
		"EDGETRACK_LOG_LEVEL=info",
		"EDGETRACK_AGGREGATOR_LISTEN=" + aggAddr, "EDGETRACK_AGGREGATOR_ADMIN_LISTEN=" + aggAdmin,
		"EDGETRACK_AGGREGATOR_DATA_DIR=" + filepath.Join(dir, "agg"),
		"EDGETRACK_AGGREGATOR_TOKENS_EDGE=" + e2eEdgeToken, "EDGETRACK_AGGREGATOR_TOKENS_QUERY=" + e2eQueryToken,
		"EDGETRACK_AGGREGATOR_TLS_CERT_FILE=" + first.CertFile, "EDGETRACK_AGGREGATOR_TLS_KEY_FILE=" + first.KeyFile,
	}, "aggregator")

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool}, DisableKeepAlives: true}}
	// served waits until the aggregator presents the certificate with the
	// given serial number on a new connection.
	served := func(serial, what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		got := "none"
		for time.Now().Before(deadline) {
			select {
			case <-agg.done:
				t.Fatalf("the aggregator exited:\n%s", agg.out)
			default:
			}
			if resp, err := client.Get("https://" + aggAddr + "/readyz"); err == nil {
				resp.Body.Close()
				if got = resp.TLS.PeerCertificates[0].SerialNumber.String(); got == serial && resp.StatusCode == 200 {
					return
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("%s: the aggregator serves serial %s, want %s; log:\n%s", what, got, serial, agg.out)
	}
	served(first.Serial.String(), "at start")

	renewed := ca.Issue(certDir)
	agg.cmd.Process.Signal(syscall.SIGHUP)
	served(renewed.Serial.String(), "after SIGHUP")

	if err := os.WriteFile(renewed.KeyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	agg.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(agg.out.String(), "reloading TLS certificates failed") {
		if time.Now().After(deadline) {
			t.Fatalf("no log line about the failed reload:\n%s", agg.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	served(renewed.Serial.String(), "after a SIGHUP with a broken key")

	edge := start(t, dir, []string{
		"EDGETRACK_EDGE_LISTEN=" + edgeAddr, "EDGETRACK_EDGE_ADMIN_LISTEN=" + edgeAdmin,
		"EDGETRACK_EDGE_DATA_DIR=" + filepath.Join(dir, "edge"),
		"EDGETRACK_EDGE_AGGREGATOR_URL=https://" + aggAddr, "EDGETRACK_EDGE_AGGREGATOR_CA_FILE=" + ca.File,
		"EDGETRACK_EDGE_TOKEN=" + e2eEdgeToken, "EDGETRACK_EDGE_HAMUSTRO_SECRETS=" + e2eSecret,
		"EDGETRACK_EDGE_FORWARD_BATCH_MAX_AGE=50ms", "EDGETRACK_EDGE_SPOOL_MIN_FREE_BYTES=0",
	}, "edge")
	edgeURL := "http://" + edgeAddr
	waitReady(t, edge, edgeURL)
	edge.cmd.Process.Signal(syscall.SIGHUP) // no TLS: nothing to reload, and it keeps running
	l := &ledger{sent: map[string]bool{}, acked: map[string]bool{}, sess: map[string]bool{}}
	if code, err := l.send(t, edgeURL, "tls-dev", 1, 3); err != nil || code != 200 {
		t.Fatalf("send: %d %v", code, err)
	}
	var session string
	for s := range l.sess {
		session = s
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest("GET", "https://"+aggAddr+"/events?session_id="+session, nil)
		req.Header.Set("Authorization", "Bearer "+e2eQueryToken)
		var page struct{ Count int }
		if resp, err := client.Do(req); err == nil {
			json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
		}
		if page.Count == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edge stored %d of 3 events through the HTTPS aggregator; edge log:\n%s", page.Count, edge.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	edge.stop()
	agg.stop()
}
