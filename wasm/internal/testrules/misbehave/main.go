// Command misbehave is a test rule whose behaviour is chosen by the request
// path, to prove the host contains bad guests: /ok answers 200 with one
// event, /loop never returns, /grow allocates until the memory cap stops it,
// /panic panics. Built by `make wasm` into wasm/host/testdata/misbehave.wasm.
package main

import (
	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/guest"
)

var (
	spins uint64
	hold  [][]byte
)

type rule struct{}

func (rule) Handle(req *abi.Request) abi.Verdict {
	switch req.Path {
	case "/loop":
		for {
			spins++
		}
	case "/grow":
		for {
			hold = append(hold, make([]byte, 1<<20))
		}
	case "/panic":
		panic("misbehave: asked to panic")
	}
	return abi.Verdict{Status: 200, Events: []abi.Event{{ID: "ok:" + req.Path, Name: "ok", Data: []byte(`{}`)}}}
}

func init() {
	guest.Register(func(cfg *abi.Config, _ abi.Host) (abi.Rule, error) { return rule{}, nil })
}

func main() {}
