package server

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/edgetrack/edgetrack/aggregator/internal/erasure"
	"github.com/edgetrack/edgetrack/aggregator/internal/query"
	"github.com/edgetrack/edgetrack/internal/subject"
)

// openAPIDocument is the part of an OpenAPI 3.0 document the tests read.
type openAPIDocument struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		SecuritySchemes map[string]struct {
			Type   string `json:"type"`
			Scheme string `json:"scheme"`
		} `json:"securitySchemes"`
		Parameters map[string]openAPIParam    `json:"parameters"`
		Schemas    map[string]openAPISchema   `json:"schemas"`
		Responses  map[string]json.RawMessage `json:"responses"`
	} `json:"components"`
}

type openAPIOperation struct {
	Parameters []openAPIParam         `json:"parameters"`
	Security   *[]map[string][]string `json:"security"`
	Responses  map[string]json.RawMessage
}

type openAPIParam struct {
	Ref      string `json:"$ref"`
	Name     string `json:"name"`
	In       string `json:"in"`
	Required bool   `json:"required"`
}

type openAPISchema struct {
	Required   []string                   `json:"required"`
	Properties map[string]json.RawMessage `json:"properties"`
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

func loadOpenAPI(tb testing.TB) openAPIDocument {
	tb.Helper()
	var doc openAPIDocument
	dec := json.NewDecoder(bytes.NewReader(openAPIDoc))
	if err := dec.Decode(&doc); err != nil {
		tb.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		tb.Fatalf("openapi.json has more after the document")
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0.") {
		tb.Fatalf("openapi = %q, want 3.0.x", doc.OpenAPI)
	}
	return doc
}

// operations returns the operations of a path item by method.
func operations(tb testing.TB, item map[string]json.RawMessage) map[string]openAPIOperation {
	tb.Helper()
	ops := map[string]openAPIOperation{}
	for _, m := range httpMethods {
		raw, ok := item[m]
		if !ok {
			continue
		}
		var op openAPIOperation
		if err := json.Unmarshal(raw, &op); err != nil {
			tb.Fatalf("%s: %v", m, err)
		}
		ops[m] = op
	}
	return ops
}

// openAPIPath turns a mux pattern into an OpenAPI path: {id...} → {id}.
func openAPIPath(pattern string) string {
	return strings.ReplaceAll(pattern, "...}", "}")
}

func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	s := newTestServer(t)
	s.Public()
	s.Admin()
	for _, listener := range []string{"public", "admin"} {
		var registered []string
		for _, p := range s.routes.list(listener) {
			if p != "/" { // the 404 for everything else
				registered = append(registered, openAPIPath(p))
			}
		}
		if len(registered) < 2 {
			t.Fatalf("%s: only %v registered", listener, registered)
		}
		var documented []string
		for path, item := range doc.Paths {
			var listeners []string
			if err := json.Unmarshal(item["x-listeners"], &listeners); err != nil {
				t.Fatalf("%s: x-listeners: %v", path, err)
			}
			if slices.Contains(listeners, listener) {
				documented = append(documented, path)
			}
		}
		slices.Sort(registered)
		slices.Sort(documented)
		if !slices.Equal(registered, documented) {
			t.Errorf("%s listener: the mux registers %q, openapi.json documents %q", listener, registered, documented)
		}
	}
}

// TestOpenAPIParameters checks the parameters of each operation against what
// the handlers read (query.EventsParams, query.StatsParams, matchesParams;
// none elsewhere)
// and the path's wildcards.
func TestOpenAPIParameters(t *testing.T) {
	doc := loadOpenAPI(t)
	handlerParams := map[string][]string{
		"get /events":             query.EventsParams,
		"get /stats":              query.StatsParams,
		"get /matches":            matchesParams,
		"get /v1/export":          query.ExportParams,
		"delete /v1/subjects":     eraseParams,
		"get /v1/suppressions":    suppressionParams,
		"get /v1/export/erasures": exportErasuresParams,
	}
	seen := map[string]bool{}
	wildcard := regexp.MustCompile(`\{([^}]+)\}`)
	for path, item := range doc.Paths {
		ops := operations(t, item)
		if len(ops) == 0 {
			t.Errorf("%s: no operations", path)
		}
		for method, op := range ops {
			key := method + " " + path
			seen[key] = true
			byIn := map[string][]string{}
			for _, p := range op.Parameters {
				if p.Ref != "" {
					name := strings.TrimPrefix(p.Ref, "#/components/parameters/")
					ref, ok := doc.Components.Parameters[name]
					if !ok {
						t.Errorf("%s: parameter %s does not resolve", key, p.Ref)
						continue
					}
					p = ref
				}
				if slices.Contains(byIn[p.In], p.Name) {
					t.Errorf("%s: parameter %s in %s twice", key, p.Name, p.In)
				}
				byIn[p.In] = append(byIn[p.In], p.Name)
				if p.In == "path" && !p.Required {
					t.Errorf("%s: path parameter %s must be required", key, p.Name)
				}
			}
			want := slices.Sorted(slices.Values(handlerParams[key]))
			if got := slices.Sorted(slices.Values(byIn["query"])); !slices.Equal(got, want) {
				t.Errorf("%s: documents query parameters %q, the handler reads %q", key, got, want)
			}
			var wantPath []string
			for _, m := range wildcard.FindAllStringSubmatch(path, -1) {
				wantPath = append(wantPath, m[1])
			}
			if got := byIn["path"]; !slices.Equal(got, wantPath) {
				t.Errorf("%s: documents path parameters %q, the path has %q", key, got, wantPath)
			}
		}
	}
	for key := range handlerParams {
		if !seen[key] {
			t.Errorf("%s is not documented", key)
		}
	}
}

// TestOpenAPISchemas checks that the schemas of the JSON answers list the
// fields the Go types encode, and that every reference resolves.
func TestOpenAPISchemas(t *testing.T) {
	doc := loadOpenAPI(t)
	for name, typ := range map[string]reflect.Type{
		"Event":           reflect.TypeFor[query.Event](),
		"Page":            reflect.TypeFor[query.Page](),
		"Stats":           reflect.TypeFor[query.Stats](),
		"StatsSeries":     reflect.TypeFor[query.StatsSeries](),
		"StatsPoint":      reflect.TypeFor[query.StatsPoint](),
		"Error":           reflect.TypeFor[errorBody](),
		"ErasureResult":   reflect.TypeFor[erasure.Result](),
		"ErasureRecord":   reflect.TypeFor[erasure.Record](),
		"SuppressionList": reflect.TypeFor[subject.List](),
		"TombstonePage":   reflect.TypeFor[erasure.TombstonePage](),
	} {
		schema, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("schema %s is missing", name)
			continue
		}
		var fields, required []string
		for f := range typ.Fields() {
			tag, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			fields = append(fields, tag)
			if !strings.Contains(opts, "omitempty") {
				required = append(required, tag)
			}
		}
		slices.Sort(fields)
		slices.Sort(required)
		if got := slices.Sorted(maps.Keys(schema.Properties)); !slices.Equal(got, fields) {
			t.Errorf("schema %s has properties %q, %s encodes %q", name, got, typ, fields)
		}
		if got := slices.Sorted(slices.Values(schema.Required)); !slices.Equal(got, required) {
			t.Errorf("schema %s requires %q, %s always encodes %q", name, got, typ, required)
		}
	}
	refs := regexp.MustCompile(`"\$ref":\s*"#/components/(\w+)/(\w+)"`)
	for _, m := range refs.FindAllStringSubmatch(string(openAPIDoc), -1) {
		var ok bool
		switch m[1] {
		case "schemas":
			_, ok = doc.Components.Schemas[m[2]]
		case "parameters":
			_, ok = doc.Components.Parameters[m[2]]
		case "responses":
			_, ok = doc.Components.Responses[m[2]]
		}
		if !ok {
			t.Errorf("reference %s does not resolve", m[0])
		}
	}
}

// TestOpenAPISecurity sends each documented operation without a token and
// with a token of each kind: an operation without security must not ask for
// one, one with security must answer 401 without a token and 403 with a
// token of another kind, and let its own kind through.
func TestOpenAPISecurity(t *testing.T) {
	doc := loadOpenAPI(t)
	s := newTestServer(t)
	servers := map[string]*httptest.Server{"public": httptest.NewServer(s.Public()), "admin": httptest.NewServer(s.Admin())}
	for _, ts := range servers {
		t.Cleanup(ts.Close)
	}
	tokens := map[string]string{"edgeToken": "e", "queryToken": "q", "adminToken": "a"}
	for name, scheme := range doc.Components.SecuritySchemes {
		if _, ok := tokens[name]; !ok || scheme.Type != "http" || scheme.Scheme != "bearer" {
			t.Errorf("security scheme %s: %+v, want a bearer token of a known kind", name, scheme)
		}
	}
	wildcard := regexp.MustCompile(`\{[^}]+\}`)
	for path, item := range doc.Paths {
		var listeners []string
		json.Unmarshal(item["x-listeners"], &listeners)
		for method, op := range operations(t, item) {
			if op.Security == nil {
				t.Errorf("%s %s: no security (say [] for none)", method, path)
				continue
			}
			kind := ""
			switch sec := *op.Security; len(sec) {
			case 0:
			case 1:
				for k := range sec[0] {
					kind = k
				}
			default:
				t.Errorf("%s %s: more than one security requirement", method, path)
			}
			for _, listener := range listeners {
				url := servers[listener].URL + wildcard.ReplaceAllString(path, "x")
				do := func(token string) int {
					req, err := http.NewRequest(strings.ToUpper(method), url, nil)
					if err != nil {
						t.Fatal(err)
					}
					if token != "" {
						req.Header.Set("Authorization", "Bearer "+token)
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					return resp.StatusCode
				}
				if status := do(""); kind == "" && (status == 401 || status == 403 || status == 404 || status == 405) ||
					kind != "" && status != 401 {
					t.Errorf("%s %s on %s without a token: %d", method, path, listener, status)
				}
				for other, token := range tokens {
					status := do(token)
					if kind != "" && other != kind && status != 403 || (kind == "" || other == kind) && (status == 401 || status == 403) {
						t.Errorf("%s %s on %s with a %s: %d (documented: %q)", method, path, listener, other, status, kind)
					}
				}
			}
		}
	}
}

func TestOpenAPIServed(t *testing.T) {
	s := newTestServer(t)
	ts := httptest.NewServer(s.Public())
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/openapi.json") // no token
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || !bytes.Equal(body, openAPIDoc) {
		t.Errorf("GET /openapi.json: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	if !json.Valid(body) {
		t.Error("served document is not valid JSON")
	}
}
