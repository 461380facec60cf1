package aggregator

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/edgetrack/edgetrack/aggregator/internal/registry"
	"github.com/edgetrack/edgetrack/wasm/vectors"
)

// RuleRejection is why CheckRule (or an upload to the registry) refuses a
// module: a reason (as in the metric edgetrack_rule_uploads_total), a
// one-line detail, and the failing vectors.
type RuleRejection = registry.Rejection

// RuleNames returns the names of the rules the registry accepts uploads for.
func RuleNames() []string { return registry.KnownRules() }

// CheckRule runs on wasm the checks of an upload to the rule registry as
// the module of rule: host validation (compiles, imports only the ABI,
// required exports, memory cap, initialises), the vectors in vectorsJSON
// (wasm/vectors.File; nil for none), and the built-in vectors of the route.
// It returns nil, a *RuleRejection, or another error when the check could
// not run. `edgetrack rules test` is this function.
func CheckRule(ctx context.Context, rule string, wasm, vectorsJSON []byte) error {
	known := false
	for _, n := range registry.KnownRules() {
		known = known || n == rule
	}
	if !known {
		return fmt.Errorf("unknown rule %q; the registry serves %v", rule, registry.KnownRules())
	}
	var file *vectors.File
	if len(vectorsJSON) > 0 {
		f, err := vectors.Parse(vectorsJSON)
		if err != nil {
			return &RuleRejection{Reason: registry.ReasonVectorsFile, Detail: "uploaded vectors: " + err.Error()}
		}
		file = f
	}
	v, err := registry.NewValidator(ctx, registry.ValidatorOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer v.Close(context.WithoutCancel(ctx))
	return v.Check(ctx, rule, wasm, file)
}
