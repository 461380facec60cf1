// Package tracker holds the browser tracker that edges serve at /et.js:
// et.js, plain JavaScript written to be read as served (no build step), and
// optout.js, the script served instead to a browser that carries the edge's
// optout cookie. docs/TRACKER.md describes what the tracker sends.
package tracker

import _ "embed"

// Path is where edges serve the tracker.
const Path = "/et.js"

// Script is the tracker.
//
//go:embed et.js
var Script []byte

// OptedOut is the script for browsers that opted out: it defines
// edgetrack() as a function that does nothing and clears what the tracker
// kept in the page's storage.
//
//go:embed optout.js
var OptedOut []byte
