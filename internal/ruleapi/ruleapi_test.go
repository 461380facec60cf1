package ruleapi

import (
	"encoding/json"
	"testing"
	"time"
)

// TestWireFormat pins the JSON of every type: the registry, the edges and
// `edgetrack rules` of other releases speak it, so a renamed field or tag
// must fail here.
func TestWireFormat(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	v := Version{Hash: "ab", Size: 3, UploadedAt: at, UploadedBy: "f1", Vectors: "cd", VectorCases: 2}
	st := RuleStatus{Active: "ab", Failed: "ef", Error: "no"}
	for _, tt := range []struct {
		name string
		v    any
		want string
	}{
		{"Version", v, `{"hash":"ab","size":3,"uploaded_at":"2026-01-02T03:04:05Z","uploaded_by":"f1","vectors":"cd","vector_cases":2}`},
		{"Version without vectors", Version{Hash: "ab"}, `{"hash":"ab","size":0,"uploaded_at":"0001-01-01T00:00:00Z","uploaded_by":"","vector_cases":0}`},
		{"Uploaded", Uploaded{Name: "eye", Hash: "ab", Size: 3, UploadedAt: at, Active: true},
			`{"name":"eye","hash":"ab","size":3,"uploaded_at":"2026-01-02T03:04:05Z","active":true}`},
		{"ActivateRequest", ActivateRequest{Hash: Builtin}, `{"hash":"builtin"}`},
		{"Activation", Activation{Name: "eye", Active: "ab", Previous: Builtin, Version: 4, Changed: true},
			`{"name":"eye","active":"ab","previous":"builtin","version":4,"changed":true}`},
		{"Manifest", Manifest{Version: 4, Rules: map[string]ManifestRule{"eye": {Hash: "ab", Source: SourceRegistry, Size: 3}}},
			`{"version":4,"rules":{"eye":{"hash":"ab","source":"registry","size":3}}}`},
		{"StatusReport", StatusReport{Edge: "e1", Rules: map[string]RuleStatus{"eye": st, "hamustro": {Active: "cd"}}},
			`{"edge":"e1","rules":{"eye":{"active":"ab","failed":"ef","error":"no"},"hamustro":{"active":"cd"}}}`},
		{"Listing", Listing{Version: 4, Rules: map[string]RuleListing{"eye": {
			Active: "ab", Builtin: "cd",
			Versions: []VersionListing{{Version: v, Active: true}},
			Edges:    []EdgeListing{{Edge: "e1", RuleStatus: st, ReportedAt: at, LastSeen: at}},
		}}}, `{"version":4,"rules":{"eye":{"active":"ab","builtin":"cd",` +
			`"versions":[{"hash":"ab","size":3,"uploaded_at":"2026-01-02T03:04:05Z","uploaded_by":"f1","vectors":"cd","vector_cases":2,"active":true}],` +
			`"edges":[{"edge":"e1","active":"ab","failed":"ef","error":"no","reported_at":"2026-01-02T03:04:05Z","last_seen":"2026-01-02T03:04:05Z"}]}}}`},
	} {
		b, err := json.Marshal(tt.v)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if string(b) != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, b, tt.want)
		}
	}
}
