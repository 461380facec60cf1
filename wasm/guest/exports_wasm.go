//go:build wasm

package guest

import (
	"unsafe"

	"github.com/edgetrack/edgetrack/wasm/abi"
)

var (
	factory abi.Factory
	rule    abi.Rule
	in      []byte // the host writes Config and Request bytes here
	out     []byte // the last Verdict, valid until the next call
	req     abi.Request
)

// Register sets the rule this module serves. Call it from an init function of
// the TinyGo main package.
func Register(f abi.Factory) { factory = f }

//go:wasmexport edgetrack_abi_version
func abiVersion() uint32 { return abi.Version }

// reserve makes the input buffer at least size bytes and returns its address.
//
//go:wasmexport edgetrack_reserve
func reserve(size uint32) uint32 {
	if int(size) > cap(in) {
		in = make([]byte, size)
	}
	in = in[:cap(in)]
	if len(in) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(&in[0])))
}

// configure decodes the Config the host wrote to the input buffer and builds
// the rule. It returns a packed Verdict: status 0 on success, else 500 with
// the reason.
//
//go:wasmexport edgetrack_configure
func configure(size uint32) uint64 {
	v := abi.Verdict{}
	cfg, err := abi.DecodeConfig(in[:size])
	switch {
	case err != nil:
		v = abi.Verdict{Status: 500, Message: "decode config: " + err.Error()}
	case factory == nil:
		v = abi.Verdict{Status: 500, Message: "no rule registered (call guest.Register in init)"}
	default:
		rule, err = factory(cfg, wasmHost{})
		if err != nil {
			v = abi.Verdict{Status: 500, Message: err.Error()}
		}
	}
	return emit(&v)
}

// handle decodes the Request in the input buffer, runs the rule and returns
// the packed address and length of the encoded Verdict.
//
//go:wasmexport edgetrack_handle
func handle(size uint32) uint64 {
	var v abi.Verdict
	if rule == nil {
		v = abi.Verdict{Status: 500, Message: "rule not configured"}
	} else if err := abi.DecodeRequest(in[:size], &req); err != nil {
		v = abi.Verdict{Status: 500, Message: "decode request: " + err.Error()}
	} else {
		v = rule.Handle(&req)
	}
	return emit(&v)
}

func emit(v *abi.Verdict) uint64 {
	// One allocation of the right size: growing a large buffer by doubling
	// is slow under TinyGo's allocator.
	if need := abi.SizeHint(v); need > cap(out) {
		out = make([]byte, 0, need)
	}
	out = abi.AppendVerdict(out[:0], v)
	if len(out) == 0 {
		return 0
	}
	return uint64(uintptr(unsafe.Pointer(&out[0])))<<32 | uint64(len(out))
}
