// Command cookiesync is the TinyGo main of the built-in cookie-sync rule; the
// logic is in wasm/rules/cookiesync. Built with
//
//	tinygo build -target=wasip1 -buildmode=c-shared -scheduler=none -no-debug -opt=2 \
//	    -o wasm/dist/cookiesync.wasm ./wasm/cmd/cookiesync
package main

import (
	"github.com/edgetrack/edgetrack/wasm/guest"
	"github.com/edgetrack/edgetrack/wasm/rules/cookiesync"
)

func init() { guest.Register(cookiesync.New) }

func main() {}
