package aggregator_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/internal/wasmbin"
	"github.com/edgetrack/edgetrack/wasm/dist"
	"github.com/edgetrack/edgetrack/wasm/rules/hamustro/hamustrotest"
)

// Types of the registry's answers, as a client decodes them.
type (
	uploaded struct {
		Name       string    `json:"name"`
		Hash       string    `json:"hash"`
		Size       int       `json:"size"`
		UploadedAt time.Time `json:"uploaded_at"`
		Active     bool      `json:"active"`
	}
	listing struct {
		Version int64 `json:"version"`
		Rules   map[string]struct {
			Active   string `json:"active"`
			Builtin  string `json:"builtin"`
			Versions []struct {
				Hash       string    `json:"hash"`
				Size       int       `json:"size"`
				UploadedAt time.Time `json:"uploaded_at"`
				UploadedBy string    `json:"uploaded_by"`
				Active     bool      `json:"active"`
			} `json:"versions"`
			Edges []struct {
				Edge     string    `json:"edge"`
				Active   string    `json:"active"`
				Failed   string    `json:"failed"`
				Error    string    `json:"error"`
				LastSeen time.Time `json:"last_seen"`
			} `json:"edges"`
		} `json:"rules"`
	}
	manifest struct {
		Version int64 `json:"version"`
		Rules   map[string]struct {
			Hash   string `json:"hash"`
			Source string `json:"source"`
			Size   int    `json:"size"`
		} `json:"rules"`
	}
	activation struct {
		Name     string `json:"name"`
		Active   string `json:"active"`
		Previous string `json:"previous"`
		Version  int64  `json:"version"`
		Changed  bool   `json:"changed"`
	}
	auditEntry struct {
		Time     time.Time `json:"time"`
		Actor    string    `json:"actor"`
		Action   string    `json:"action"`
		Rule     string    `json:"rule"`
		Hash     string    `json:"hash"`
		Previous string    `json:"previous"`
		Reason   string    `json:"reason"`
	}
)

func decode[T any](tb testing.TB, resp response) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(resp.body, &v); err != nil {
		tb.Fatalf("decoding %s: %v", resp.body, err)
	}
	return v
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// fingerprint is what the audit log and uploaded_by show for a token.
func fingerprint(token string) string { return sha(([]byte)(token))[:8] }

func builtinHamustro(tb testing.TB) []byte {
	tb.Helper()
	b, ok := dist.Rule("hamustro")
	if !ok {
		tb.Fatal("no built-in hamustro module")
	}
	return b
}

// misbehave answers 200 with an event to almost any request: a module that
// meets the ABI and accepts everything.
func misbehave(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile("../wasm/host/testdata/misbehave.wasm")
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// hamustroVectors is a vectors file with the built-in rule's settings.
func hamustroVectors(vectors string) []byte {
	return []byte(`{"settings": {"secrets": ["` + hamustrotest.Secret + `"]}, "vectors": [` + vectors + `]}`)
}

// upload sends a module with optional vectors as multipart/form-data.
func (r *running) upload(name string, wasm, vectors []byte) response {
	r.tb.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, _ := mw.CreateFormFile("module", "rule.wasm")
	part.Write(wasm)
	if vectors != nil {
		part, _ = mw.CreateFormFile("vectors", "vectors.json")
		part.Write(vectors)
	}
	mw.Close()
	return r.do(http.MethodPut, r.admin+"/rules/"+name, adminToken, body.Bytes(), "Content-Type", mw.FormDataContentType())
}

func (r *running) list() listing {
	r.tb.Helper()
	resp := r.do(http.MethodGet, r.admin+"/rules", adminToken, nil)
	resp.wantStatus(r.tb, http.StatusOK)
	return decode[listing](r.tb, resp)
}

func (r *running) manifest() manifest {
	r.tb.Helper()
	resp := r.do(http.MethodGet, r.base+"/v1/rules/manifest", edgeToken, nil)
	resp.wantStatus(r.tb, http.StatusOK)
	return decode[manifest](r.tb, resp)
}

func (r *running) activate(name, hash string) response {
	r.tb.Helper()
	return r.do(http.MethodPost, r.admin+"/rules/"+name+"/activate", adminToken, []byte(`{"hash":"`+hash+`"}`))
}

func readAudit(tb testing.TB, cfgDir string) []auditEntry {
	tb.Helper()
	f, err := os.Open(filepath.Join(cfgDir, "rules", "audit.log"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []auditEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e auditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			tb.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

func TestRulesUploadRejections(t *testing.T) {
	cfg := testConfig(t)
	r := start(t, cfg)

	// A good version is active, so that "nothing changed" means something.
	good := withCustomSection(builtinHamustro(t), "v1")
	r.upload("hamustro", good, nil).wantStatus(t, http.StatusCreated)
	r.activate("hamustro", sha(good)).wantStatus(t, http.StatusOK)
	before := r.manifest()

	okBody := abiModule(verdictStatus(200))
	wrongImport := abiModule(nil)
	wrongImport.imports = []wImport{{module: "env", name: "open_socket", params: []byte{wI32}, results: []byte{wI32}}}
	wrongSignature := abiModule(nil)
	wrongSignature.imports = []wImport{{module: "edgetrack", name: "sha256", params: []byte{wI32}}}
	noHandle := abiModule(nil)
	noHandle.funcs = noHandle.funcs[:4]
	noMemory := abiModule(nil)
	noMemory.noExport = true
	hugeMemory := abiModule(nil)
	hugeMemory.memPages = 1024 // 64 MiB, over the 16 MiB cap
	trapInit := abiModule(nil)
	trapInit.funcs[0].body = unreachable
	wrongVersion := abiModule(nil)
	wrongVersion.funcs[1].body = i32Const(2)

	tests := []struct {
		name     string
		rule     string
		wasm     []byte
		vectors  []byte
		status   int
		reason   string // metric label
		contains []string
	}{
		{"not wasm", "hamustro", []byte("#!/bin/sh\necho hi\n"), nil, 400, "not_wasm", []string{"does not compile"}},
		{"empty module", "hamustro", nil, nil, 400, "not_wasm", []string{"does not compile"}},
		{"import outside the ABI", "hamustro", wrongImport.bytes(), nil, 400, "imports", []string{`env.open_socket from module "env"`}},
		{"host import with the wrong signature", "hamustro", wrongSignature.bytes(), nil, 400, "imports", []string{"edgetrack.sha256 with signature"}},
		{"missing export", "hamustro", noHandle.bytes(), nil, 400, "exports", []string{"does not export edgetrack_handle"}},
		{"memory not exported", "hamustro", noMemory.bytes(), nil, 400, "exports", []string{`does not export its memory as "memory"`}},
		{"memory minimum over the cap", "hamustro", hugeMemory.bytes(), nil, 400, "memory", []string{"memory", "16 Mi"}},
		{"traps in _initialize", "hamustro", trapInit.bytes(), nil, 400, "init", []string{"_initialize", "unreachable"}},
		{"another ABI version", "hamustro", wrongVersion.bytes(), nil, 400, "init", []string{"speaks ABI version 2"}},
		{"fails an uploaded vector", "hamustro", builtinHamustro(t),
			hamustroVectors(`{"name": "unsigned is fine (it is not)", "request": {"path": "/api/v1/track", "body": "x"}, "expect": {"status": 202}}`),
			400, "uploaded_vectors", []string{"uploaded vectors", "unsigned is fine (it is not)", "want 202"}},
		{"vectors that do not parse", "hamustro", builtinHamustro(t), []byte(`{"vectors": [{"expect": {"status": 7}}]}`),
			400, "vectors_file", []string{"expect.status must be an HTTP status"}},
		{"module that accepts everything fails the built-in vectors", "hamustro", misbehave(t), nil,
			400, "builtin_vectors", []string{"built-in vectors of route hamustro", "built-in hamustro/"}},
		{"another route's module refuses the route's configuration", "eye", builtinHamustro(t), nil,
			400, "config", []string{`refuses the configuration of suite "built-in eye"`, "no secrets"}},
		{"module that answers 200 without events fails the built-in vectors", "hamustro", okBody.bytes(), nil,
			400, "builtin_vectors", []string{"built-in vectors of route hamustro"}},
		{"too large", "hamustro", make([]byte, 8<<20+1), nil, 413, "too_large", []string{"larger than 8388608 bytes"}},
		// These took the aggregator down before the module limits: out of
		// memory in wazero's decoder, and compiles of minutes.
		{"4e9 locals", "hamustro", wasmbin.ManyLocals(4_000_000_000), nil, 400, "limit", []string{"locals per function: 4000000000, over the limit of 50000"}},
		{"2.5M nested blocks", "hamustro", wasmbin.NestedBlocks(2_500_000), nil, 400, "limit", []string{"function body size in bytes"}},
		{"br_table of 1.5M targets", "hamustro", wasmbin.BrTable(1_500_000), nil, 400, "limit", []string{"function body size in bytes"}},
		{"br_table of 100k targets", "hamustro", wasmbin.BrTable(100_000), nil, 400, "limit", []string{"targets of a br_table: 100000, over the limit of 16384"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := r.upload(tt.rule, tt.wasm, tt.vectors)
			resp.wantStatus(t, tt.status)
			msg := resp.errorMessage(t)
			for _, want := range tt.contains {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
			// Nothing changed: same manifest, same versions.
			if after := r.manifest(); after.Version != before.Version || after.Rules["hamustro"] != before.Rules["hamustro"] {
				t.Errorf("manifest changed after a rejection: %+v, was %+v", after, before)
			}
			l := r.list()
			if hr := l.Rules["hamustro"]; hr.Active != sha(good) || len(hr.Versions) != 1 {
				t.Errorf("hamustro is %+v after a rejection; want only %s, active", hr, sha(good)[:12])
			}
			if er := l.Rules["eye"]; er.Active != "builtin" || len(er.Versions) != 0 {
				t.Errorf("eye is %+v after a rejection; want the built-in module only", er)
			}
			if tt.wasm != nil && len(tt.wasm) < 8<<20 {
				if _, err := os.Stat(filepath.Join(cfg.DataDir, "rules", "modules", sha(tt.wasm)+".wasm")); err == nil {
					t.Error("a rejected module was stored")
				}
			}
			audit := readAudit(t, cfg.DataDir)
			last := audit[len(audit)-1]
			if last.Action != "reject" || last.Rule != tt.rule || last.Actor != fingerprint(adminToken) || last.Reason == "" {
				t.Errorf("last audit entry %+v, want a reject of %s by %s with a reason", last, tt.rule, fingerprint(adminToken))
			}
			m := r.do(http.MethodGet, r.admin+"/metrics", "", nil)
			if line := `edgetrack_rule_uploads_total{reason="` + tt.reason + `",result="rejected"} `; !bytes.Contains(m.body, []byte(line)) ||
				bytes.Contains(m.body, []byte(line+"0\n")) {
				t.Errorf("metrics do not count a rejection for %s", tt.reason)
			}
		})
	}

	t.Run("raw body", func(t *testing.T) {
		resp := r.do(http.MethodPut, r.admin+"/rules/hamustro", adminToken, noHandle.bytes(), "Content-Type", "application/wasm")
		resp.wantStatus(t, http.StatusBadRequest)
	})
	t.Run("unknown rule", func(t *testing.T) {
		resp := r.upload("nope", builtinHamustro(t), nil)
		resp.wantStatus(t, http.StatusNotFound)
		if msg := resp.errorMessage(t); !strings.Contains(msg, "cookiesync, eye, hamustro") {
			t.Errorf("error %q does not list the rules", msg)
		}
	})
	t.Run("other content type", func(t *testing.T) {
		r.do(http.MethodPut, r.admin+"/rules/hamustro", adminToken, builtinHamustro(t), "Content-Type", "text/plain").
			wantStatus(t, http.StatusUnsupportedMediaType)
	})
	t.Run("unexpected part", func(t *testing.T) {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		p, _ := mw.CreateFormFile("modul", "x.wasm")
		p.Write(good)
		mw.Close()
		r.do(http.MethodPut, r.admin+"/rules/hamustro", adminToken, body.Bytes(), "Content-Type", mw.FormDataContentType()).
			wantStatus(t, http.StatusBadRequest)
	})
}

func TestRulesUploadListActivateRollback(t *testing.T) {
	cfg := testConfig(t)
	r := start(t, cfg)
	v1 := withCustomSection(builtinHamustro(t), "v1")
	v2 := withCustomSection(builtinHamustro(t), "v2")
	h1, h2, hb := sha(v1), sha(v2), sha(builtinHamustro(t))

	m0 := r.manifest()
	if got := m0.Rules["hamustro"]; got.Source != "builtin" || got.Hash != hb || got.Size != len(builtinHamustro(t)) {
		t.Fatalf("manifest before any upload: hamustro %+v, want the built-in module %s", got, hb[:12])
	}

	resp := r.upload("hamustro", v1, hamustroVectors(`{"name": "unsigned", "request": {"path": "/api/v1/track", "body": "x"}, "expect": {"status": 401}}`))
	resp.wantStatus(t, http.StatusCreated)
	u := decode[uploaded](t, resp)
	if u.Name != "hamustro" || u.Hash != h1 || u.Size != len(v1) || u.Active || u.UploadedAt.IsZero() {
		t.Fatalf("upload answered %+v", u)
	}
	if m := r.manifest(); m.Version != m0.Version || m.Rules["hamustro"].Source != "builtin" {
		t.Fatalf("an upload changed the manifest: %+v", m)
	}
	again := r.do(http.MethodPut, r.admin+"/rules/hamustro", adminToken, v1, "Content-Type", "application/wasm")
	again.wantStatus(t, http.StatusOK)
	if u2 := decode[uploaded](t, again); u2.Hash != h1 || !u2.UploadedAt.Equal(u.UploadedAt) {
		t.Fatalf("re-upload answered %+v, want the existing version %+v", u2, u)
	}
	r.upload("hamustro", v2, nil).wantStatus(t, http.StatusCreated)

	l := r.list()
	hr := l.Rules["hamustro"]
	if hr.Active != "builtin" || hr.Builtin != hb || len(hr.Versions) != 2 || hr.Versions[0].Hash != h1 || hr.Versions[1].Hash != h2 {
		t.Fatalf("listing %+v", hr)
	}
	if v := hr.Versions[0]; v.UploadedBy != fingerprint(adminToken) || v.Size != len(v1) || v.Active {
		t.Errorf("version %+v", v)
	}
	for _, name := range []string{"eye", "cookiesync"} {
		if _, ok := l.Rules[name]; !ok {
			t.Errorf("listing has no rule %s", name)
		}
	}

	step := func(resp response, active, previous string, version int64) {
		t.Helper()
		resp.wantStatus(t, http.StatusOK)
		a := decode[activation](t, resp)
		if a.Active != active || a.Previous != previous || a.Version != version || !a.Changed {
			t.Fatalf("activation %+v, want active %s previous %s version %d", a, active, previous, version)
		}
		m := r.manifest()
		want := "registry"
		wantHash := active
		if active == "builtin" {
			want, wantHash = "builtin", hb
		}
		if got := m.Rules["hamustro"]; m.Version != version || got.Hash != wantHash || got.Source != want {
			t.Fatalf("manifest %+v after activating %s", m, active)
		}
	}
	rollback := func() response {
		return r.do(http.MethodPost, r.admin+"/rules/hamustro/rollback", adminToken, nil)
	}

	step(r.activate("hamustro", h1), h1, "builtin", m0.Version+1)
	step(r.activate("hamustro", h2[:10]), h2, h1, m0.Version+2) // a unique prefix will do
	if a := decode[activation](t, r.activate("hamustro", h2)); a.Changed || a.Version != m0.Version+2 {
		t.Fatalf("activating the active version: %+v, want no change", a)
	}
	r.activate("hamustro", strings.Repeat("ab", 32)).wantStatus(t, http.StatusNotFound)
	r.activate("hamustro", "xyz").wantStatus(t, http.StatusNotFound)
	r.activate("eye", h1).wantStatus(t, http.StatusNotFound) // a version of another rule
	r.activate("nope", h1).wantStatus(t, http.StatusNotFound)
	r.do(http.MethodPost, r.admin+"/rules/hamustro/activate", adminToken, []byte(`{"hash":1}`)).wantStatus(t, http.StatusBadRequest)

	if hr := r.list().Rules["hamustro"]; hr.Active != h2 || !hr.Versions[1].Active || hr.Versions[0].Active {
		t.Fatalf("listing after activation: %+v", hr)
	}

	step(rollback(), h1, h2, m0.Version+3)
	step(rollback(), "builtin", h1, m0.Version+4)
	// Two rollbacks went back through every activation: the answer must
	// not claim the rule never had another version.
	if resp := rollback(); resp.status != http.StatusConflict || !strings.Contains(string(resp.body), "no earlier version to roll back to") ||
		strings.Contains(string(resp.body), "only ever") {
		t.Fatalf("rollback with no earlier version: %d %s, want 409 saying there is no earlier version", resp.status, resp.body)
	}
	step(r.activate("hamustro", h2), h2, "builtin", m0.Version+5)

	// A restart keeps versions, the active one, the manifest version and
	// the rollback history (replayed from the audit log).
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	r = start(t, cfg)
	if m := r.manifest(); m.Version != m0.Version+5 || m.Rules["hamustro"].Hash != h2 {
		t.Fatalf("manifest after a restart: %+v", m)
	}
	if hr := r.list().Rules["hamustro"]; len(hr.Versions) != 2 || hr.Active != h2 {
		t.Fatalf("listing after a restart: %+v", hr)
	}
	step(rollback(), "builtin", h2, m0.Version+6)

	type act struct{ action, hash, previous string }
	var got []act
	for _, e := range readAudit(t, cfg.DataDir) {
		if e.Rule != "hamustro" || e.Actor != fingerprint(adminToken) || e.Time.IsZero() {
			t.Errorf("audit entry %+v", e)
		}
		got = append(got, act{e.Action, e.Hash, e.Previous})
	}
	want := []act{
		{"upload", h1, ""}, {"upload", h2, ""},
		{"activate", h1, "builtin"}, {"activate", h2, h1},
		{"rollback", h1, h2}, {"rollback", "builtin", h1},
		{"activate", h2, "builtin"}, {"rollback", "builtin", h2},
	}
	if !slices.Equal(got, want) {
		t.Errorf("audit log\n%v\nwant\n%v", got, want)
	}
}

// metricValue returns the value of the sample line that starts with
// series, or "" when there is none.
func (r *running) metricValue(series string) string {
	r.tb.Helper()
	body := r.do(http.MethodGet, r.admin+"/metrics", "", nil).body
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}

func TestRulesManifestLongPoll(t *testing.T) {
	r := start(t, testConfig(t))
	v1 := withCustomSection(builtinHamustro(t), "v1")
	r.upload("hamustro", v1, nil).wantStatus(t, http.StatusCreated)
	m := r.manifest()
	since := strconv.FormatInt(m.Version, 10)

	t.Run("304 when nothing changes", func(t *testing.T) {
		resp := r.do(http.MethodGet, r.base+"/v1/rules/manifest?since="+since+"&wait=20ms", edgeToken, nil)
		resp.wantStatus(t, http.StatusNotModified)
		if len(resp.body) != 0 {
			t.Errorf("304 with a body: %q", resp.body)
		}
	})
	t.Run("at once when since is another version", func(t *testing.T) {
		resp := r.do(http.MethodGet, r.base+"/v1/rules/manifest?since=0&wait=60s", edgeToken, nil)
		resp.wantStatus(t, http.StatusOK)
		if got := decode[manifest](t, resp); got.Version != m.Version {
			t.Errorf("version %d, want %d", got.Version, m.Version)
		}
	})
	t.Run("bad parameters", func(t *testing.T) {
		r.do(http.MethodGet, r.base+"/v1/rules/manifest?since=x", edgeToken, nil).wantStatus(t, http.StatusBadRequest)
		r.do(http.MethodGet, r.base+"/v1/rules/manifest?since=1&wait=soon", edgeToken, nil).wantStatus(t, http.StatusBadRequest)
	})
	t.Run("returns early on activation", func(t *testing.T) {
		got := make(chan response, 1)
		go func() {
			// The longest wait: if the activation did not end it, the
			// answer would be a 304.
			got <- r.do(http.MethodGet, r.base+"/v1/rules/manifest?since="+since+"&wait=60s", edgeToken, nil)
		}()
		// Activate only once the poll waits, so that it is the
		// activation that ends it.
		for r.metricValue("edgetrack_rule_manifest_waiting") != "1" {
			time.Sleep(5 * time.Millisecond)
		}
		r.activate("hamustro", sha(v1)).wantStatus(t, http.StatusOK)
		resp := <-got
		resp.wantStatus(t, http.StatusOK)
		nm := decode[manifest](t, resp)
		if nm.Version != m.Version+1 || nm.Rules["hamustro"].Hash != sha(v1) || nm.Rules["hamustro"].Source != "registry" {
			t.Errorf("manifest %+v, want version %d with %s from the registry", nm, m.Version+1, sha(v1)[:12])
		}
	})
	t.Run("shutdown ends waiting polls", func(t *testing.T) {
		since := strconv.FormatInt(m.Version+1, 10)
		got := make(chan response, 1)
		go func() {
			got <- r.do(http.MethodGet, r.base+"/v1/rules/manifest?since="+since+"&wait=60s", edgeToken, nil)
		}()
		for r.metricValue("edgetrack_rule_manifest_waiting") != "1" {
			time.Sleep(5 * time.Millisecond)
		}
		stopped := make(chan error, 1)
		go func() { stopped <- r.stop() }()
		(<-got).wantStatus(t, http.StatusNotModified)
		if err := <-stopped; err != nil {
			t.Errorf("stop: %v", err)
		}
	})
}

func TestRulesModuleDownload(t *testing.T) {
	r := start(t, testConfig(t))
	v1 := withCustomSection(builtinHamustro(t), "v1")
	r.upload("hamustro", v1, nil).wantStatus(t, http.StatusCreated)
	for name, want := range map[string][]byte{"built-in": builtinHamustro(t), "uploaded": v1} {
		t.Run(name, func(t *testing.T) {
			resp := r.do(http.MethodGet, r.base+"/v1/rules/modules/"+sha(want), edgeToken, nil)
			resp.wantStatus(t, http.StatusOK)
			if got := sha(resp.body); got != sha(want) {
				t.Errorf("body hashes to %s, want %s", got, sha(want))
			}
			if ct := resp.header.Get("Content-Type"); ct != "application/wasm" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	r.do(http.MethodGet, r.base+"/v1/rules/modules/"+strings.Repeat("0", 64), edgeToken, nil).wantStatus(t, http.StatusNotFound)
	r.do(http.MethodGet, r.base+"/v1/rules/modules/..%2f..%2fetc%2fpasswd", edgeToken, nil).wantStatus(t, http.StatusNotFound)
	// A rejected module is not downloadable.
	r.upload("hamustro", misbehave(t), nil).wantStatus(t, http.StatusBadRequest)
	r.do(http.MethodGet, r.base+"/v1/rules/modules/"+sha(misbehave(t)), edgeToken, nil).wantStatus(t, http.StatusNotFound)
}

func TestRulesStatusReports(t *testing.T) {
	cfg := testConfig(t)
	r := start(t, cfg)
	hb := sha(builtinHamustro(t))
	report := func(body string) response {
		return r.do(http.MethodPost, r.base+"/v1/rules/status", edgeToken, []byte(body), "Content-Type", "application/json")
	}
	report(`{"edge": "edge-b", "rules": {"hamustro": {"active": "`+hb+`"}}}`).wantStatus(t, http.StatusNoContent)
	report(`{"edge": "edge-a", "rules": {"hamustro": {"active": "`+hb+`", "failed": "`+strings.Repeat("ab", 32)+`", "error": "fails the built-in vectors"}, "nope": {"active": "x"}}}`).
		wantStatus(t, http.StatusNoContent)
	report(`{"rules": {}}`).wantStatus(t, http.StatusBadRequest)
	report(`not json`).wantStatus(t, http.StatusBadRequest)

	edges := r.list().Rules["hamustro"].Edges
	if len(edges) != 2 || edges[0].Edge != "edge-a" || edges[1].Edge != "edge-b" {
		t.Fatalf("edges %+v, want edge-a and edge-b", edges)
	}
	if e := edges[0]; e.Active != hb || e.Failed != strings.Repeat("ab", 32) || e.Error != "fails the built-in vectors" || e.LastSeen.IsZero() {
		t.Errorf("edge-a %+v", e)
	}
	// A poll moves last_seen forward.
	seen := edges[1].LastSeen
	r.do(http.MethodGet, r.base+"/v1/rules/manifest", edgeToken, nil, "X-Edgetrack-Edge", "edge-b").wantStatus(t, http.StatusOK)
	if after := r.list().Rules["hamustro"].Edges[1].LastSeen; after.Before(seen) {
		t.Errorf("last_seen went back from %v to %v", seen, after)
	}

	// Reports survive a restart.
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	r2 := start(t, cfg)
	if edges := r2.list().Rules["hamustro"].Edges; len(edges) != 2 {
		t.Fatalf("edges after a restart: %+v", edges)
	}
}

func TestRulesAuth(t *testing.T) {
	r := start(t, testConfig(t))
	endpoints := []struct {
		method, url string
		kind        string // the token it needs
	}{
		{http.MethodGet, r.admin + "/rules", adminToken},
		{http.MethodPut, r.admin + "/rules/hamustro", adminToken},
		{http.MethodPost, r.admin + "/rules/hamustro/activate", adminToken},
		{http.MethodPost, r.admin + "/rules/hamustro/rollback", adminToken},
		{http.MethodGet, r.base + "/v1/rules/manifest", edgeToken},
		{http.MethodGet, r.base + "/v1/rules/modules/" + sha(builtinHamustro(t)), edgeToken},
		{http.MethodPost, r.base + "/v1/rules/status", edgeToken},
	}
	for _, e := range endpoints {
		t.Run(e.method+" "+e.url, func(t *testing.T) {
			resp := r.do(e.method, e.url, "", []byte("{}"))
			resp.wantStatus(t, http.StatusUnauthorized)
			if resp.header.Get("Www-Authenticate") != "Bearer" {
				t.Error("401 without WWW-Authenticate: Bearer")
			}
			for _, other := range []string{adminToken, edgeToken, queryToken} {
				if other == e.kind {
					continue
				}
				r.do(e.method, e.url, other, []byte("{}")).wantStatus(t, http.StatusForbidden)
			}
			r.do(e.method, e.url, "no-such-token", []byte("{}")).wantStatus(t, http.StatusForbidden)
		})
	}
	// The admin endpoints are not on the public listener, nor the edges'
	// on the admin one.
	r.do(http.MethodGet, r.base+"/rules", adminToken, nil).wantStatus(t, http.StatusNotFound)
	r.do(http.MethodGet, r.admin+"/v1/rules/manifest", edgeToken, nil).wantStatus(t, http.StatusNotFound)
	r.do(http.MethodDelete, r.admin+"/rules/hamustro", adminToken, nil).wantStatus(t, http.StatusMethodNotAllowed)
}

// TestShutdownEndsValidation uploads a module whose every call runs until
// its deadline (the built-in vectors would take a minute), stops the
// aggregator while it is being validated, and checks that the upload is
// answered 503 "shutting down" — the validation was stopped, not waited for
// — and that Run returns without error.
func TestShutdownEndsValidation(t *testing.T) {
	r := start(t, testConfig(t))
	slow := abiModule(nil)
	slow.funcs[4].body = []byte{0x03, 0x40, 0x0c, 0x00, 0x0b, 0x42, 0x00} // loop br 0 end; i64.const 0
	answer := make(chan response, 1)
	go func() { answer <- r.upload("hamustro", slow.bytes(), nil) }()
	hang := time.Now().Add(time.Minute) // a guard against hanging, not a timing assertion
	for r.metricValue("edgetrack_rule_validations_in_progress") != "1" {
		if time.Now().After(hang) {
			t.Fatal("the upload never started validating")
		}
		time.Sleep(5 * time.Millisecond)
	}
	done := make(chan error, 1)
	go func() { done <- r.stop() }()
	resp := <-answer
	if resp.status != http.StatusServiceUnavailable || !strings.Contains(string(resp.body), "shutting down") {
		t.Fatalf("upload during shutdown: %d %s, want 503 saying the aggregator is shutting down", resp.status, resp.body)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
