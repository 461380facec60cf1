package aggregator_test

import "bytes"

// A tiny WebAssembly encoder for modules that break one rule of the ABI at
// a time, so each rejection reason of an upload has a module of its own
// without a toolchain. See the WebAssembly core specification, section 5
// (binary format).

const (
	wI32 = 0x7f
	wI64 = 0x7e
)

type wFunc struct {
	export          string // "" = not exported
	params, results []byte
	body            []byte // instructions, without the final end
}

type wImport struct {
	module, name    string
	params, results []byte
}

type wModule struct {
	imports  []wImport
	funcs    []wFunc
	memPages uint32 // 0 = no memory
	noExport bool   // do not export the memory
	data     []byte // bytes at address dataAt
}

// dataAt is where wModule.data is placed in memory.
const dataAt = 1024

func uleb(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			c |= 0x80
		}
		b = append(b, c)
		if v == 0 {
			return b
		}
	}
}

func sleb(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		done := v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0
		if !done {
			c |= 0x80
		}
		b = append(b, c)
		if done {
			return b
		}
	}
}

func wName(b []byte, s string) []byte { return append(uleb(b, uint64(len(s))), s...) }

func section(out []byte, id byte, content []byte) []byte {
	out = append(out, id)
	out = uleb(out, uint64(len(content)))
	return append(out, content...)
}

func (m wModule) bytes() []byte {
	out := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	// One type per import and function, in that order.
	var types []byte
	n := 0
	addType := func(params, results []byte) {
		types = append(types, 0x60)
		types = append(uleb(types, uint64(len(params))), params...)
		types = append(uleb(types, uint64(len(results))), results...)
		n++
	}
	for _, im := range m.imports {
		addType(im.params, im.results)
	}
	for _, f := range m.funcs {
		addType(f.params, f.results)
	}
	out = section(out, 1, append(uleb(nil, uint64(n)), types...))
	if len(m.imports) > 0 {
		b := uleb(nil, uint64(len(m.imports)))
		for i, im := range m.imports {
			b = wName(wName(b, im.module), im.name)
			b = uleb(append(b, 0x00), uint64(i))
		}
		out = section(out, 2, b)
	}
	b := uleb(nil, uint64(len(m.funcs)))
	for i := range m.funcs {
		b = uleb(b, uint64(len(m.imports)+i))
	}
	out = section(out, 3, b)
	if m.memPages > 0 {
		out = section(out, 5, uleb([]byte{0x01, 0x00}, uint64(m.memPages)))
	}
	var exports []byte
	ne := 0
	if m.memPages > 0 && !m.noExport {
		exports = append(wName(exports, "memory"), 0x02, 0x00)
		ne++
	}
	for i, f := range m.funcs {
		if f.export != "" {
			exports = uleb(append(wName(exports, f.export), 0x00), uint64(len(m.imports)+i))
			ne++
		}
	}
	out = section(out, 7, append(uleb(nil, uint64(ne)), exports...))
	code := uleb(nil, uint64(len(m.funcs)))
	for _, f := range m.funcs {
		body := append([]byte{0x00}, f.body...) // no locals
		body = append(body, 0x0b)
		code = append(uleb(code, uint64(len(body))), body...)
	}
	out = section(out, 10, code)
	if len(m.data) > 0 {
		d := []byte{0x01, 0x00, 0x41}
		d = sleb(d, dataAt)
		d = append(d, 0x0b)
		d = append(uleb(d, uint64(len(m.data))), m.data...)
		out = section(out, 11, d)
	}
	return out
}

// Instructions.
func i32Const(v int32) []byte { return sleb([]byte{0x41}, int64(v)) }
func i64Const(v int64) []byte { return sleb([]byte{0x42}, v) }

var unreachable = []byte{0x00}

// abiModule returns a module that meets ABI v1: it initialises, accepts
// any configuration (an empty Verdict has status 0) and answers every
// request with verdict, a protobuf Verdict (empty: status 0). Tests change
// one thing in it.
func abiModule(verdict []byte) wModule {
	handle := i64Const(0)
	if len(verdict) > 0 {
		handle = i64Const(int64(dataAt)<<32 | int64(len(verdict)))
	}
	return wModule{
		memPages: 3, // the input buffer at 64 KiB is 64 KiB long
		data:     verdict,
		funcs: []wFunc{
			{export: "_initialize"},
			{export: "edgetrack_abi_version", results: []byte{wI32}, body: i32Const(1)},
			{export: "edgetrack_reserve", params: []byte{wI32}, results: []byte{wI32}, body: i32Const(64 << 10)},
			{export: "edgetrack_configure", params: []byte{wI32}, results: []byte{wI64}, body: i64Const(0)},
			{export: "edgetrack_handle", params: []byte{wI32}, results: []byte{wI64}, body: handle},
		},
	}
}

// verdictStatus is a protobuf Verdict with only its status (field 1).
func verdictStatus(status uint64) []byte { return uleb([]byte{0x08}, status) }

// withCustomSection returns wasm with a custom section appended: another
// hash, the same behaviour.
func withCustomSection(wasm []byte, payload string) []byte {
	content := wName(nil, "edgetrack-test")
	content = append(content, payload...)
	return section(bytes.Clone(wasm), 0, content)
}
