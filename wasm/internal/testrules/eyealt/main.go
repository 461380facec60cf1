// Command eyealt is the built-in eye rule with one more response header,
// x-rule-variant: alt — a second valid version of the rule for hot-swap
// tests. Built by `make wasm` into wasm/host/testdata/eyealt.wasm.
package main

import (
	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/guest"
	"github.com/edgetrack/edgetrack/wasm/rules/eye"
)

type variant struct{ abi.Rule }

func (v variant) Handle(req *abi.Request) abi.Verdict {
	out := v.Rule.Handle(req)
	out.Headers = append(out.Headers, abi.Header{Name: "x-rule-variant", Value: "alt"})
	return out
}

func init() {
	guest.Register(func(cfg *abi.Config, h abi.Host) (abi.Rule, error) {
		r, err := eye.New(cfg, h)
		if err != nil {
			return nil, err
		}
		return variant{r}, nil
	})
}

func main() {}
