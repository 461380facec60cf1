package edge_test

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/internal/tlsconf/tlsconftest"
)

// TestTLSOnEveryListener runs an aggregator and an edge with HTTPS on all
// four listeners, the edge trusting the aggregator through
// edge.aggregator_ca_file: an event posted over HTTPS is forwarded and
// pulled rules are followed over HTTPS, the page links say https, plain HTTP
// is not answered, and a renewed certificate is served after ReloadTLS.
func TestTLSOnEveryListener(t *testing.T) {
	ca := tlsconftest.NewCA(t)
	edgeDir, aggDir := t.TempDir(), t.TempDir()
	edgeLeaf, aggLeaf := ca.Issue(edgeDir), ca.Issue(aggDir)
	aggTLS := config.TLS{CertFile: aggLeaf.CertFile, KeyFile: aggLeaf.KeyFile}
	edgeTLS := config.TLS{CertFile: edgeLeaf.CertFile, KeyFile: edgeLeaf.KeyFile}

	dir := t.TempDir()
	agg := startAggregator(t, dir, func(c *config.Aggregator) { c.TLS, c.AdminTLS = aggTLS, aggTLS })
	cfg := edgeConfig(t)
	cfg.TLS, cfg.AdminTLS = edgeTLS, edgeTLS
	cfg.AggregatorURL = "https://" + agg.Addr()
	cfg.AggregatorCAFile = ca.File
	cfg.Rules.Pull = true
	cfg.Forward.BatchMaxAge = config.Duration(20 * time.Millisecond)
	e, _ := runEdge(t, cfg)

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}, DisableKeepAlives: true}}
	call := func(method, url, body string, header map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	now := time.Now().UTC().Format("2006-01-02 15:04:05.000000")
	event := func(id string) string {
		return `{"session_id":"tls-session","category":"page_interaction","name":"page_view","data":{"host":"www.example.com","path":"/"},"timestamp":"` + now + `","event_id":"` + id + `"}`
	}
	for i, id := range []string{"tls-1", "tls-2"} {
		ev := event(id)
		if resp, body := call("POST", "https://"+e.Addr()+"/events", ev, map[string]string{"Content-Type": "application/json"}); resp.StatusCode != 201 {
			t.Fatalf("event %d over HTTPS: %d %s", i, resp.StatusCode, body)
		}
	}

	var page struct {
		Count int
		Next  *string
	}
	query := "https://" + agg.Addr() + "/events?session_id=tls-session&page_size=1"
	deadline := time.Now().Add(30 * time.Second)
	for page.Count < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("events never reached the aggregator over HTTPS (count %d)", page.Count)
		}
		time.Sleep(20 * time.Millisecond)
		resp, body := call("GET", query, "", map[string]string{"Authorization": "Bearer query-token"})
		if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &page) != nil {
			t.Fatalf("query over HTTPS: %d %s", resp.StatusCode, body)
		}
	}
	if page.Next == nil || !strings.HasPrefix(*page.Next, "https://"+agg.Addr()+"/events?") {
		t.Errorf("next link %v; want one on https://%s", page.Next, agg.Addr())
	}

	// The edge follows the registry over HTTPS: it reports its rules.
	deadline = time.Now().Add(30 * time.Second)
	for {
		_, body := call("GET", "https://"+agg.AdminAddr()+"/rules", "", map[string]string{"Authorization": "Bearer registry-admin"})
		if strings.Contains(body, e.ID()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edge never reported to the registry over HTTPS: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}

	for _, u := range []string{"https://" + e.AdminAddr() + "/metrics", "https://" + agg.AdminAddr() + "/metrics", "https://" + e.Addr() + "/readyz"} {
		if resp, body := call("GET", u, "", nil); resp.StatusCode != 200 {
			t.Errorf("GET %s: %d %.200s", u, resp.StatusCode, body)
		}
	}

	// Plain HTTP to an HTTPS listener gets no answer a client could take
	// for a stored event.
	plain := &http.Client{Timeout: 5 * time.Second}
	for _, u := range []string{"http://" + e.Addr() + "/events", "http://" + agg.Addr() + "/v1/ingest"} {
		resp, err := plain.Post(u, "application/json", strings.NewReader(`{}`))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Errorf("plain HTTP POST %s: %d", u, resp.StatusCode)
			}
		}
	}

	// Renewal: new files, ReloadTLS, new connections get the new
	// certificate; events still flow to the renewed aggregator.
	renewedEdge, renewedAgg := ca.Issue(edgeDir), ca.Issue(aggDir)
	if err := e.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	if err := agg.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{e.Addr(): renewedEdge.Serial.String(), agg.Addr(): renewedAgg.Serial.String(), agg.AdminAddr(): renewedAgg.Serial.String()} {
		resp, err := client.Get("https://" + addr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.TLS.PeerCertificates[0].SerialNumber.String(); got != want {
			t.Errorf("%s after ReloadTLS serves serial %s, want the renewed %s", addr, got, want)
		}
	}
	ev := event("tls-after-renewal")
	if resp, body := call("POST", "https://"+e.Addr()+"/events", ev, map[string]string{"Content-Type": "application/json"}); resp.StatusCode != 201 {
		t.Fatalf("event after renewal: %d %s", resp.StatusCode, body)
	}
	for page.Count < 3 {
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("the event sent after renewal never reached the aggregator (count %d)", page.Count)
		}
		time.Sleep(20 * time.Millisecond)
		_, body := call("GET", query, "", map[string]string{"Authorization": "Bearer query-token"})
		json.Unmarshal([]byte(body), &page)
	}
}
