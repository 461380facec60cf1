// Package ruleapi is the wire format of the rule registry's HTTP API: the
// JSON bodies the aggregator's registry (aggregator/internal/registry,
// served by aggregator/internal/server) answers and accepts, which edges
// (edge/internal/rollout) and `edgetrack rules` (cmd/edgetrack) send and
// decode. It declares types and constants only; changing a field or tag
// here changes what every side speaks.
//
// Admin listener (admin token):
//
//	GET  /rules                  Listing
//	PUT  /rules/{name}           the module; 201 or 200 with Uploaded
//	POST /rules/{name}/activate  ActivateRequest; Activation
//	POST /rules/{name}/rollback  Activation
//
// Public listener (edge token):
//
//	GET  /v1/rules/manifest?since=&wait=  Manifest, or 304 when unchanged
//	GET  /v1/rules/modules/{hash}         the module's bytes
//	POST /v1/rules/status                 StatusReport; 204
//
// Errors are answered with the aggregator's error body, {"error": "..."}.
package ruleapi

import "time"

// Builtin names a rule's built-in module where a version hash is expected:
// in an ActivateRequest, an Activation, a RuleListing's Active.
const Builtin = "builtin"

// Sources of a ManifestRule.
const (
	SourceBuiltin  = "builtin"
	SourceRegistry = "registry"
)

// Version is one uploaded module of a rule.
type Version struct {
	Hash       string    `json:"hash"`
	Size       int       `json:"size"`
	UploadedAt time.Time `json:"uploaded_at"`
	UploadedBy string    `json:"uploaded_by"` // fingerprint of the admin token
	// Vectors is the hash of the vectors file uploaded with the module, ""
	// when none; VectorCases counts its cases.
	Vectors     string `json:"vectors,omitempty"`
	VectorCases int    `json:"vector_cases"`
}

// Uploaded is the answer to an upload. The status says whether the version
// is new (201) or the same bytes had been uploaded for the rule before
// (200: the existing version, with nothing checked or stored again).
type Uploaded struct {
	Name       string    `json:"name"`
	Hash       string    `json:"hash"`
	Size       int       `json:"size"`
	UploadedAt time.Time `json:"uploaded_at"`
	Active     bool      `json:"active"`
}

// ActivateRequest is the body of POST /rules/{name}/activate: Hash is a
// version's hash, a unique prefix of at least 8 hex digits, or Builtin.
type ActivateRequest struct {
	Hash string `json:"hash"`
}

// Activation is the answer to an activation or a rollback.
type Activation struct {
	Name     string `json:"name"`
	Active   string `json:"active"`   // hash or Builtin
	Previous string `json:"previous"` // hash or Builtin
	Version  int64  `json:"version"`  // manifest version after it
	// Changed is false when the version was already active: then nothing
	// was logged and the manifest version did not move.
	Changed bool `json:"changed"`
}

// Manifest is what edges follow: the module each rule runs.
type Manifest struct {
	Version int64                   `json:"version"`
	Rules   map[string]ManifestRule `json:"rules"`
}

// ManifestRule is the module a rule runs. Rules with neither an activated
// upload nor a built-in module are not listed.
type ManifestRule struct {
	Hash   string `json:"hash"`
	Source string `json:"source"` // SourceBuiltin or SourceRegistry
	Size   int    `json:"size"`
}

// RuleStatus is what an edge reports about one rule: the version it runs,
// and the last version it refused with why.
type RuleStatus struct {
	Active string `json:"active"`
	Failed string `json:"failed,omitempty"`
	Error  string `json:"error,omitempty"`
}

// StatusReport is the body of POST /v1/rules/status. Edge may be empty
// when the X-Edgetrack-Edge header names the edge.
type StatusReport struct {
	Edge  string                `json:"edge"`
	Rules map[string]RuleStatus `json:"rules"`
}

// Listing is the registry's state, for operators: GET /rules.
type Listing struct {
	Version int64                  `json:"version"` // manifest version
	Rules   map[string]RuleListing `json:"rules"`
}

// RuleListing is one rule in a Listing.
type RuleListing struct {
	Active   string           `json:"active"`  // hash or Builtin
	Builtin  string           `json:"builtin"` // the built-in module's hash; "" when there is none
	Versions []VersionListing `json:"versions"`
	Edges    []EdgeListing    `json:"edges"`
}

// VersionListing is one version in a RuleListing.
type VersionListing struct {
	Version
	Active bool `json:"active"`
}

// EdgeListing is what one edge runs of a rule.
type EdgeListing struct {
	Edge string `json:"edge"`
	RuleStatus
	ReportedAt time.Time `json:"reported_at"`
	LastSeen   time.Time `json:"last_seen"`
}
