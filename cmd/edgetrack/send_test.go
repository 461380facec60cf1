package main

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/client"
	"github.com/edgetrack/edgetrack/internal/freeport"
)

// TestSendCommand runs `edgetrack send` as an operator would, against an
// aggregator and an edge running as processes: events from flags, then JSON
// lines on stdin; a bad line is refused before anything is sent.
func TestSendCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	aggAddr, aggAdmin, edgeAddr, edgeAdmin := freeport.Addr(t), freeport.Addr(t), freeport.Addr(t), freeport.Addr(t)
	agg := start(t, dir, []string{
		"EDGETRACK_AGGREGATOR_LISTEN=" + aggAddr, "EDGETRACK_AGGREGATOR_ADMIN_LISTEN=" + aggAdmin,
		"EDGETRACK_AGGREGATOR_DATA_DIR=" + filepath.Join(dir, "agg"),
		"EDGETRACK_AGGREGATOR_TOKENS_EDGE=" + e2eEdgeToken, "EDGETRACK_AGGREGATOR_TOKENS_QUERY=" + e2eQueryToken,
	}, "aggregator")
	waitReady(t, agg, "http://"+aggAddr)
	edge := start(t, dir, []string{
		"EDGETRACK_EDGE_LISTEN=" + edgeAddr, "EDGETRACK_EDGE_ADMIN_LISTEN=" + edgeAdmin,
		"EDGETRACK_EDGE_DATA_DIR=" + filepath.Join(dir, "edge"), "EDGETRACK_EDGE_AGGREGATOR_URL=http://" + aggAddr,
		"EDGETRACK_EDGE_TOKEN=" + e2eEdgeToken, "EDGETRACK_EDGE_HAMUSTRO_SECRETS=" + e2eSecret,
		"EDGETRACK_EDGE_FORWARD_BATCH_MAX_AGE=20ms", "EDGETRACK_EDGE_SPOOL_MIN_FREE_BYTES=0",
	}, "edge")
	waitReady(t, edge, "http://"+edgeAddr)

	send := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(selfPath(t), append([]string{"-test.run=^$", "--", "send",
			"--url", "http://" + edgeAddr, "--dir", filepath.Join(dir, "sdk"),
			"--device-id", "ops-device", "--client-id", "ops", "--system-version", "1", "--product-version", "1"}, args...)...)
		cmd.Env = append(cmd.Environ(), "E2E_EDGETRACK_MAIN=1", "EDGETRACK_SEND_SECRET="+e2eSecret)
		cmd.Dir = dir
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := send("", "--event", "deploy", "--event", "restart"); err != nil || !strings.Contains(out, "sent 2 events") {
		t.Fatalf("send with flags: %v\n%s", err, out)
	}
	if out, err := send("{\"event\":\"a\"}\nnot json\n"); err == nil || !strings.Contains(out, "line 2") {
		t.Fatalf("a bad line must fail naming it, got %v\n%s", err, out)
	}
	lines := "{\"event\":\"login\",\"user_id\":7}\n{\"event\":\"logout\",\"params\":\"{\\\"why\\\":\\\"idle\\\"}\",\"is_testing\":true}\n"
	if out, err := send(lines); err != nil || !strings.Contains(out, "sent 2 events") {
		t.Fatalf("send from stdin: %v\n%s", err, out)
	}

	session := client.SessionID("ops-device", "ops", "1", "1")
	var names []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		req, _ := http.NewRequest("GET", "http://"+aggAddr+"/events?session_id="+session+"&limit=100", nil)
		req.Header.Set("Authorization", "Bearer "+e2eQueryToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Results []struct {
				Name string `json:"name"`
				Data struct {
					Nr int `json:"nr"`
				} `json:"data"`
			} `json:"results"`
		}
		json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		names = names[:0]
		for _, r := range page.Results {
			names = append(names, r.Name)
		}
		if len(names) == 4 {
			break
		}
	}
	got := strings.Join(names, ",")
	for _, want := range []string{"deploy", "restart", "login", "logout"} {
		if !strings.Contains(got, want) {
			t.Fatalf("stored %q, want deploy, restart, login and logout (the refused input sent nothing)", got)
		}
	}
	if len(names) != 4 {
		t.Fatalf("stored %v, want exactly 4 events", names)
	}
}

func selfPath(t *testing.T) string {
	p, err := exec.LookPath(osArgs0())
	if err != nil {
		t.Fatal(err)
	}
	return p
}
