package dist

import (
	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/rules/cookiesync/cookiesynctest"
	"github.com/edgetrack/edgetrack/wasm/rules/eye/eyetest"
	"github.com/edgetrack/edgetrack/wasm/rules/hamustro/hamustrotest"
	"github.com/edgetrack/edgetrack/wasm/vectors"
)

// Vectors returns the built-in test vectors of the route a rule named name
// serves. Any module that is to serve that route — the built-in one or an
// upload — must pass them.
func Vectors(name string) []vectors.Suite {
	switch name {
	case "hamustro":
		return suite("hamustro", hamustrotest.Config(), hamustrotest.Vectors(),
			func(v hamustrotest.Vector) (string, *abi.Config, *abi.Request) { return v.Name, v.Config, v.Request }, hamustrotest.Diff)
	case "eye":
		return suite("eye", eyetest.Config(), eyetest.Vectors(),
			func(v eyetest.Vector) (string, *abi.Config, *abi.Request) { return v.Name, v.Config, v.Request }, eyetest.Diff)
	case "cookiesync":
		return suite("cookiesync", cookiesynctest.Config(), cookiesynctest.Vectors(),
			func(v cookiesynctest.Vector) (string, *abi.Config, *abi.Request) { return v.Name, v.Config, v.Request }, cookiesynctest.Diff)
	}
	return nil
}

// suite turns a rule's test vectors into one Suite under cfg. Vectors with
// settings of their own (clock skew, masking, …) are run by the rule's own
// tests; these are the ones that hold under the shared configuration.
func suite[V any](rule string, cfg *abi.Config, vs []V, parts func(V) (string, *abi.Config, *abi.Request), diff func(V, abi.Verdict) string) []vectors.Suite {
	s := vectors.Suite{Name: "built-in " + rule, Config: cfg}
	for _, v := range vs {
		name, vcfg, req := parts(v)
		if !sameConfig(vcfg, cfg) {
			continue
		}
		s.Cases = append(s.Cases, vectors.Case{Name: name, Request: req, Check: func(got abi.Verdict) string { return diff(v, got) }})
	}
	return []vectors.Suite{s}
}

func sameConfig(a, b *abi.Config) bool {
	return string(abi.AppendConfig(nil, a)) == string(abi.AppendConfig(nil, b))
}
