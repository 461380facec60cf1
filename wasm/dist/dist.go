// Package dist embeds the built-in rules, compiled by TinyGo from wasm/cmd.
//
// The .wasm files are committed so that building and testing edgetrack needs
// only Go; `make wasm` rebuilds them and `make check` fails when they differ
// from a fresh build. Each was built with:
//
//	tinygo build -target=wasip1 -buildmode=c-shared -scheduler=none -no-debug -opt=2 \
//	    -o wasm/dist/<name>.wasm ./wasm/cmd/<name>
package dist

import _ "embed"

var (
	//go:embed hamustro.wasm
	hamustro []byte
	//go:embed eye.wasm
	eye []byte
	//go:embed cookiesync.wasm
	cookiesync []byte
)

// builtin lists the embedded rules by name.
var builtin = map[string][]byte{
	"hamustro":   hamustro,
	"eye":        eye,
	"cookiesync": cookiesync,
}

// Rule returns the built-in module named name.
func Rule(name string) ([]byte, bool) {
	b, ok := builtin[name]
	return b, ok
}

// Names returns the names of the built-in rules.
func Names() []string { return []string{"hamustro", "eye", "cookiesync"} }
