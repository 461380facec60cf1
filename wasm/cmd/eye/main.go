// Command eye is the TinyGo main of the built-in eye rule (The Eye's POST
// /events); the logic is in wasm/rules/eye. Built by `make wasm` into
// wasm/dist/eye.wasm.
package main

import (
	"github.com/edgetrack/edgetrack/wasm/guest"
	"github.com/edgetrack/edgetrack/wasm/rules/eye"
)

func init() { guest.Register(eye.New) }

func main() {}
