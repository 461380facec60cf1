// Package dist holds the table of built-in rules: for each, the route it
// decides at the edge, its module compiled by TinyGo from wasm/cmd/<name>,
// the test vectors any module serving that route must pass, and its native
// twin (the same logic compiled into the binary, the baseline of bench/).
// Everything else that lists the built-in rules — the edge's routes, the
// registry's rule names, `rules new --kind`, the native modules, `make wasm`
// — derives from this table; TestTheTableIsTheTruth checks the files.
//
// The .wasm files are committed so that building and testing edgetrack needs
// only Go; `make wasm` rebuilds them and `make check` fails when they differ
// from a fresh build. Each was built with:
//
//	tinygo build -target=wasip1 -buildmode=c-shared -scheduler=none -no-debug -opt=2 \
//	    -o wasm/dist/<name>.wasm ./wasm/cmd/<name>
//
// Adding a route with a rule is the recipe in docs/ARCHITECTURE.md ("A new
// built-in route"): the rule's package, its command, its vectors, one row
// below, and the edge's settings for it.
package dist

import (
	_ "embed"

	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/rules/cookiesync"
	"github.com/edgetrack/edgetrack/wasm/rules/cookiesync/cookiesynctest"
	"github.com/edgetrack/edgetrack/wasm/rules/eye"
	"github.com/edgetrack/edgetrack/wasm/rules/eye/eyetest"
	"github.com/edgetrack/edgetrack/wasm/rules/hamustro"
	"github.com/edgetrack/edgetrack/wasm/rules/hamustro/hamustrotest"
	"github.com/edgetrack/edgetrack/wasm/vectors"
)

// A Builtin is one built-in rule and the route it decides.
type Builtin struct {
	// Name is the rule's name: the registry's key, the manifest's, and the
	// directories wasm/rules/<Name> (its logic) and wasm/cmd/<Name> (its
	// wasm main).
	Name string
	// Paths are the edge paths the rule decides, Methods the HTTP methods
	// they accept, and CORS whether browsers on other origins may call them.
	Paths   []string
	Methods []string
	CORS    bool
	// Module is the compiled rule, wasm/dist/<Name>.wasm.
	Module []byte
	// Native is the rule's logic compiled into the binary.
	Native abi.Factory
	// Vectors are the route's test vectors (see Vectors).
	Vectors func() []vectors.Suite
}

var (
	//go:embed hamustro.wasm
	hamustroWasm []byte
	//go:embed eye.wasm
	eyeWasm []byte
	//go:embed cookiesync.wasm
	cookiesyncWasm []byte
)

// table is the source of truth, in the order the edge registers routes.
var table = []Builtin{
	{
		Name: "hamustro", Paths: []string{"/api/v1/track"}, Methods: []string{"POST"},
		Module: hamustroWasm, Native: hamustro.New,
		Vectors: func() []vectors.Suite {
			return suite("hamustro", hamustrotest.Config(), hamustrotest.Vectors(),
				func(v hamustrotest.Vector) (string, *abi.Config, *abi.Request) { return v.Name, v.Config, v.Request }, hamustrotest.Diff)
		},
	},
	{
		Name: "eye", Paths: []string{"/events"}, Methods: []string{"POST"}, CORS: true,
		Module: eyeWasm, Native: eye.New,
		Vectors: func() []vectors.Suite {
			return suite("eye", eyetest.Config(), eyetest.Vectors(),
				func(v eyetest.Vector) (string, *abi.Config, *abi.Request) { return v.Name, v.Config, v.Request }, eyetest.Diff)
		},
	},
	{
		Name:    "cookiesync",
		Paths:   []string{"/cookiesync/i", "/cookiesync/sync", "/cookiesync/done", "/cs/i", "/cs/s", "/cs/d"},
		Methods: []string{"GET"},
		Module:  cookiesyncWasm, Native: cookiesync.New,
		Vectors: func() []vectors.Suite {
			return suite("cookiesync", cookiesynctest.Config(), cookiesynctest.Vectors(),
				func(v cookiesynctest.Vector) (string, *abi.Config, *abi.Request) { return v.Name, v.Config, v.Request }, cookiesynctest.Diff)
		},
	},
}

// Builtins returns the table of built-in rules. The caller must not modify
// what it returns.
func Builtins() []Builtin { return table }

// Lookup returns the built-in rule named name.
func Lookup(name string) (Builtin, bool) {
	for _, b := range table {
		if b.Name == name {
			return b, true
		}
	}
	return Builtin{}, false
}

// Rule returns the module of the built-in rule named name.
func Rule(name string) ([]byte, bool) {
	b, ok := Lookup(name)
	return b.Module, ok
}

// Names returns the names of the built-in rules, in the table's order.
func Names() []string {
	names := make([]string, len(table))
	for i, b := range table {
		names[i] = b.Name
	}
	return names
}
