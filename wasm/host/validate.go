package host

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/edgetrack/edgetrack/wasm/abi"
)

const wasiModule = "wasi_snapshot_preview1"

const i64 = api.ValueTypeI64

// requiredExports are the functions every ABI v1 module exports, with their
// signatures.
var requiredExports = []struct {
	name            string
	params, results []api.ValueType
}{
	{abi.ExportInit, nil, nil},
	{abi.ExportVersion, nil, []api.ValueType{i32}},
	{abi.ExportReserve, []api.ValueType{i32}, []api.ValueType{i32}},
	{abi.ExportConfigure, []api.ValueType{i32}, []api.ValueType{i64}},
	{abi.ExportHandle, []api.ValueType{i32}, []api.ValueType{i64}},
}

// validate checks a compiled module against ABI version 1: it imports only
// the host module's functions (with their signatures) and WASI, which the
// runtime provides with no filesystem, environment or arguments; it imports no
// memory, table or global; it exports the required functions and its memory;
// and its memory's minimum fits the cap. It returns a *ModuleError listing
// every problem, classified by the first.
func validate(cm wazero.CompiledModule, memoryLimit uint64) error {
	var found problems
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		switch mod {
		case wasiModule:
		case abi.HostModule:
			i := slices.IndexFunc(hostFuncs, func(h hostFunc) bool { return h.name == name })
			if i < 0 {
				found.add(ProblemImports, fmt.Sprintf("imports %s.%s, which ABI v%d does not have", mod, name, abi.Version))
			} else if !slices.Equal(f.ParamTypes(), hostFuncs[i].params) || !slices.Equal(f.ResultTypes(), hostFuncs[i].results) {
				found.add(ProblemImports, fmt.Sprintf("imports %s.%s with signature %s, want %s", mod, name,
					sig(f.ParamTypes(), f.ResultTypes()), sig(hostFuncs[i].params, hostFuncs[i].results)))
			}
		default:
			found.add(ProblemImports, fmt.Sprintf("imports %s.%s from module %q, which is not provided", mod, name, mod))
		}
	}
	for _, m := range cm.ImportedMemories() {
		mod, name, _ := m.Import()
		found.add(ProblemImports, fmt.Sprintf("imports memory %s.%s; a rule must define its own", mod, name))
	}
	exports := cm.ExportedFunctions()
	for _, want := range requiredExports {
		f, ok := exports[want.name]
		switch {
		case !ok:
			found.add(ProblemExports, fmt.Sprintf("does not export %s", want.name))
		case !slices.Equal(f.ParamTypes(), want.params) || !slices.Equal(f.ResultTypes(), want.results):
			found.add(ProblemExports, fmt.Sprintf("exports %s with signature %s, want %s", want.name,
				sig(f.ParamTypes(), f.ResultTypes()), sig(want.params, want.results)))
		}
	}
	mem, ok := cm.ExportedMemories()[abi.ExportMemory]
	if !ok {
		found.add(ProblemExports, "does not export its memory as \"memory\"")
	} else if minBytes := uint64(mem.Min()) * 65536; minBytes > memoryLimit {
		found.add(ProblemMemory, fmt.Sprintf("needs %d bytes of memory at start, over the %d-byte cap", minBytes, memoryLimit))
	}
	return found.err()
}

func sig(params, results []api.ValueType) string {
	names := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return strings.Join(s, ",")
	}
	return "(" + names(params) + ")->(" + names(results) + ")"
}
