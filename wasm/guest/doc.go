// Package guest is the SDK for rule authors.
//
// A rule is a plain-Go package with an abi.Factory; its TinyGo main only
// registers it:
//
//	package main
//
//	import (
//		"github.com/edgetrack/edgetrack/wasm/guest"
//		"github.com/edgetrack/edgetrack/wasm/rules/hamustro"
//	)
//
//	func init() { guest.Register(hamustro.New) }
//
//	func main() {}
//
// Built with `tinygo build -target=wasip1 -buildmode=c-shared -scheduler=none
// -no-debug -opt=2`, the files of this package tagged for wasm provide the ABI's
// exports and bind abi.Host to the host functions. Natively (under `go test`)
// Native provides the same abi.Host from Go's crypto packages, so the same
// rule logic runs in both places and can be compared.
package guest
