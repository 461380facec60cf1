package server

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgetrack/edgetrack/edge/internal/rollout"
	"github.com/edgetrack/edgetrack/edge/internal/spool"
	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/dist"
	"github.com/edgetrack/edgetrack/wasm/rules/hamustro/hamustrotest"
)

const testAdminToken = "admin-test-token"

// startAdmin serves an admin listener over f's spool and rule on loopback
// and returns its base URL.
func startAdmin(t *testing.T, f *fixture, tokens ...string) string {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	wasm, _ := dist.Rule("hamustro")
	roll, err := rollout.New(rollout.Options{
		Runtime: f.rt,
		Rules:   map[string]rollout.Rule{"hamustro": {Slot: f.slot, Config: hamustrotest.Config()}},
		Logger:  quiet,
	}, map[string][]byte{"hamustro": wasm})
	if err != nil {
		t.Fatal(err)
	}
	a := NewAdmin(AdminOptions{Tokens: tokens, Spool: f.sp, Rollout: roll, Gatherer: prometheus.NewRegistry(), Logger: quiet})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go a.Serve(ln)
	t.Cleanup(func() { a.Shutdown(t.Context()) })
	return "http://" + ln.Addr().String()
}

// adminCall sends one request to the admin listener, with token unless it
// is empty.
func adminCall(t *testing.T, method, url, token string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

type deadLetterPage struct {
	DeadLetters []deadLetterJSON `json:"dead_letters"`
	Next        string           `json:"next"`
}

func TestAdminDeadLetters(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	url := startAdmin(t, f, testAdminToken)
	var values [][]byte
	for _, id := range []string{"dl-1", "dl-2", "dl-3"} {
		values = append(values, abi.AppendEvent(nil, &abi.Event{ID: id, Session: "s-" + id, Category: "c", Name: "n"}))
	}
	if _, err := f.sp.Append(values...); err != nil {
		t.Fatal(err)
	}
	entries, err := f.sp.Read(spool.Position{}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.sp.DeadLetter(entries, []string{"r1", "r2", "r3"}); err != nil {
		t.Fatal(err)
	}

	list := func(query string) deadLetterPage {
		t.Helper()
		code, _, body := adminCall(t, "GET", url+"/v1/deadletters"+query, testAdminToken, nil)
		var page deadLetterPage
		if err := json.Unmarshal(body, &page); code != 200 || err != nil {
			t.Fatalf("list %s: %d %s (%v)", query, code, body, err)
		}
		return page
	}
	page := list("?limit=2")
	if len(page.DeadLetters) != 2 || page.DeadLetters[0].ID != "dl-1" || page.DeadLetters[1].Session != "s-dl-2" ||
		page.DeadLetters[1].Reason != "r2" || page.Next != entries[1].Pos.String() {
		t.Fatalf("first page %+v, want dl-1 and dl-2 with next %s", page, entries[1].Pos)
	}
	if page = list("?after=" + page.Next); len(page.DeadLetters) != 1 || page.DeadLetters[0].ID != "dl-3" || page.Next != "" {
		t.Fatalf("second page %+v, want dl-3 alone", page)
	}

	code, _, body := adminCall(t, "POST", url+"/v1/deadletters/replay", testAdminToken,
		[]byte(`{"positions": ["`+entries[0].Pos.String()+`"]}`))
	if code != 200 || strings.TrimSpace(string(body)) != `{"replayed":1}` {
		t.Fatalf("replay: %d %s", code, body)
	}
	if st := f.sp.Stats(); st.Depth != 1 || st.DeadLetters != 2 {
		t.Fatalf("after replay %+v, want one entry queued and two dead letters", st)
	}
	code, _, body = adminCall(t, "POST", url+"/v1/deadletters/purge", testAdminToken, []byte(`{"all": true}`))
	if code != 200 || strings.TrimSpace(string(body)) != `{"purged":2}` {
		t.Fatalf("purge: %d %s", code, body)
	}
	if st := f.sp.Stats(); st.Depth != 1 || st.DeadLetters != 0 {
		t.Fatalf("after purge %+v, want one entry queued and no dead letters", st)
	}
}

// TestAdminErrors: every error of the admin listener, whatever made it, is
// answered by the one writer: its status and {"error": message} as JSON.
func TestAdminErrors(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	url := startAdmin(t, f, testAdminToken)
	noTokens := startAdmin(t, f)
	for _, c := range []struct {
		name, method, url, token string
		body                     []byte
		status                   int
		message                  string
	}{
		{"no token", "GET", url + "/v1/rules", "", nil, 401, "missing bearer token"},
		{"not an admin token", "GET", url + "/v1/rules", "wrong", nil, 403, "token is not an admin token"},
		{"no admin tokens configured", "GET", noTokens + "/v1/rules", testAdminToken, nil, 403, "no admin tokens configured"},
		{"bad after", "GET", url + "/v1/deadletters?after=x", testAdminToken, nil, 400, "after: "},
		{"bad limit", "GET", url + "/v1/deadletters?limit=0", testAdminToken, nil, 400, "limit must be a number"},
		{"no positions", "POST", url + "/v1/deadletters/replay", testAdminToken, nil, 400, `give "positions"`},
		{"positions and all", "POST", url + "/v1/deadletters/purge", testAdminToken, []byte(`{"positions": ["1/1"], "all": true}`), 400, "not both"},
		{"unknown field", "POST", url + "/v1/deadletters/purge", testAdminToken, []byte(`{"everything": true}`), 400, "body: "},
		{"unknown rule", "PUT", url + "/v1/rules/nosuchrule", testAdminToken, []byte("x"), 404, "unknown rule"},
		{"module too large", "PUT", url + "/v1/rules/hamustro", testAdminToken, make([]byte, maxRuleBytes+1), 413, "module exceeds"},
		{"invalid module", "PUT", url + "/v1/rules/hamustro", testAdminToken, []byte("not wasm"), 400, "not a WebAssembly module"},
		{"no previous version", "POST", url + "/v1/rules/hamustro/rollback", testAdminToken, nil, 409, "no previous version"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, hdr, body := adminCall(t, c.method, c.url, c.token, c.body)
			checkAdminError(t, code, hdr, body, c.status, c.message)
		})
	}
	// A spool that fails is a 500 that shows the operator why.
	if err := f.sp.Close(); err != nil {
		t.Fatal(err)
	}
	code, hdr, body := adminCall(t, "GET", url+"/v1/deadletters", testAdminToken, nil)
	checkAdminError(t, code, hdr, body, 500, spool.ErrClosed.Error())
}

func checkAdminError(t *testing.T, code int, hdr http.Header, body []byte, status int, message string) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || code != status || e.Error == "" || !strings.Contains(e.Error, message) ||
		hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %s (%s), want %d with a JSON error containing %q", code, body, hdr.Get("Content-Type"), status, message)
	}
	if (status == 401) != (hdr.Get("WWW-Authenticate") == "Bearer") {
		t.Fatalf("status %d with WWW-Authenticate %q", code, hdr.Get("WWW-Authenticate"))
	}
}
