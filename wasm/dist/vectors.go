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
		s := vectors.Suite{Name: "built-in hamustro", Config: hamustrotest.Config()}
		for _, v := range hamustrotest.Vectors() {
			// Vectors with their own settings (skew, masking) are run by
			// the rule's own tests; these use the shared configuration.
			if !sameConfig(v.Config, s.Config) {
				continue
			}
			v := v
			s.Cases = append(s.Cases, vectors.Case{Name: v.Name, Request: v.Request, Check: func(got abi.Verdict) string { return hamustrotest.Diff(v, got) }})
		}
		return []vectors.Suite{s}
	case "eye":
		s := vectors.Suite{Name: "built-in eye", Config: eyetest.Config()}
		for _, v := range eyetest.Vectors() {
			if !sameConfig(v.Config, s.Config) {
				continue
			}
			v := v
			s.Cases = append(s.Cases, vectors.Case{Name: v.Name, Request: v.Request, Check: func(got abi.Verdict) string { return eyetest.Diff(v, got) }})
		}
		return []vectors.Suite{s}
	case "cookiesync":
		s := vectors.Suite{Name: "built-in cookiesync", Config: cookiesynctest.Config()}
		for _, v := range cookiesynctest.Vectors() {
			if !sameConfig(v.Config, s.Config) {
				continue
			}
			v := v
			s.Cases = append(s.Cases, vectors.Case{Name: v.Name, Request: v.Request, Check: func(got abi.Verdict) string { return cookiesynctest.Diff(v, got) }})
		}
		return []vectors.Suite{s}
	}
	return nil
}

func sameConfig(a, b *abi.Config) bool {
	return string(abi.AppendConfig(nil, a)) == string(abi.AppendConfig(nil, b))
}
