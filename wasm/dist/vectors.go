package dist

import (
	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/vectors"
)

// Vectors returns the built-in test vectors of the route a rule named name
// serves, or nil when it is no built-in rule. Any module that is to serve
// that route — the built-in one or an upload — must pass them.
func Vectors(name string) []vectors.Suite {
	if b, ok := Lookup(name); ok {
		return b.Vectors()
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
