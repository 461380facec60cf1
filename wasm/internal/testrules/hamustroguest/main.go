// Command hamustroguest is the hamustro rule with every hash computed inside
// the guest (guest.Native) instead of by host functions. It exists to measure
// what the host functions save; see BenchmarkHamustro in wasm/host.
package main

import (
	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/guest"
	"github.com/edgetrack/edgetrack/wasm/rules/hamustro"
)

func init() {
	guest.Register(func(cfg *abi.Config, _ abi.Host) (abi.Rule, error) { return hamustro.New(cfg, guest.Native{}) })
}

func main() {}
