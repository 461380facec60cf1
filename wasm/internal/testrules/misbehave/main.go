// Command misbehave is a test rule whose behaviour is chosen by the request
// path, to prove the host contains bad guests: /ok answers 200 with one
// event, /loop never returns, /grow allocates until the memory cap stops it,
// /panic panics, /recurse recurses without end, /unstorable answers 200 with an event the aggregator could
// never store (see unstorable). Built by `make wasm` into
// wasm/host/testdata/misbehave.wasm.
package main

import (
	"strings"

	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/guest"
)

var (
	spins uint64
	hold  [][]byte
	depth uint64
)

// recurse calls itself n deep; the work after the call keeps it from being
// turned into a loop.
func recurse(n uint64) uint64 {
	if n == 0 {
		return 0
	}
	r := recurse(n - 1)
	depth += r
	return r + 1
}

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
	case "/recurse":
		recurse(1 << 40)
	case "/unstorable":
		return unstorable(req.Query)
	}
	return abi.Verdict{Status: 200, Events: []abi.Event{{ID: "ok:" + req.Path, Name: "ok", Data: []byte(`{}`)}}}
}

// unstorable answers 200 with two events, the second broken as the query
// asks: "id=empty", "id=nul", "id=long", "session=nul", "category=long",
// "name=utf8" or "ip=utf8". Any other query leaves both events storable.
func unstorable(query string) abi.Verdict {
	good := abi.Event{ID: "unstorable:1", Name: "ok", Data: []byte(`{}`)}
	bad := abi.Event{ID: "unstorable:2", Name: "ok", Data: []byte(`{}`)}
	switch query {
	case "id=empty":
		bad.ID = ""
	case "id=nul":
		bad.ID = "unstorable:\x00"
	case "id=long":
		bad.ID = strings.Repeat("x", 257)
	case "session=nul":
		bad.Session = "s\x00"
	case "category=long":
		bad.Category = strings.Repeat("c", 257)
	case "name=utf8":
		bad.Name = "ok\xff"
	case "ip=utf8":
		bad.IP = "203.0.113.\xc3"
	}
	return abi.Verdict{Status: 200, Events: []abi.Event{good, bad}}
}

func init() {
	guest.Register(func(cfg *abi.Config, _ abi.Host) (abi.Rule, error) { return rule{}, nil })
}

func main() {}
