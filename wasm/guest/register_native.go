//go:build !wasm

package guest

import "github.com/edgetrack/edgetrack/wasm/abi"

// Register is a no-op outside wasm: natively, tests call the rule's factory
// with Native directly.
func Register(abi.Factory) {}
