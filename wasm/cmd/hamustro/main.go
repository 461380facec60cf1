// Command hamustro is the TinyGo main of the built-in hamustro rule; the logic
// is in wasm/rules/hamustro. Built by `make wasm` into wasm/dist/hamustro.wasm.
package main

import (
	"github.com/edgetrack/edgetrack/wasm/guest"
	"github.com/edgetrack/edgetrack/wasm/rules/hamustro"
)

func init() { guest.Register(hamustro.New) }

func main() {}
