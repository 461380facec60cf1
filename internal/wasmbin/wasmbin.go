// Package wasmbin writes WebAssembly binaries by hand, for tests that need
// modules no compiler would emit: hostile shapes, malformed encodings, the
// largest module a limit lets through.
package wasmbin

import "encoding/binary"

// Module assembles a module from sections, each its id followed by its
// contents (as Sec returns).
func Module(sections ...[]byte) []byte {
	out := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range sections {
		out = append(out, s[0])
		out = binary.AppendUvarint(out, uint64(len(s)-1))
		out = append(out, s[1:]...)
	}
	return out
}

// Sec is a section: its id, then parts concatenated.
func Sec(id byte, parts ...[]byte) []byte {
	out := []byte{id}
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// Vec is a vector: its length in LEB128, then the items.
func Vec(items ...[]byte) []byte {
	out := binary.AppendUvarint(nil, uint64(len(items)))
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}

// Body is a function body of the code section: its size, the encoded local
// declarations, then code (which must end with 0x0b).
func Body(locals []byte, code ...byte) []byte {
	b := append(append([]byte{}, locals...), code...)
	return append(binary.AppendUvarint(nil, uint64(len(b))), b...)
}

// Name is a name as the binary format writes it.
func Name(s string) []byte {
	return append(binary.AppendUvarint(nil, uint64(len(s))), s...)
}

// U is n in unsigned LEB128.
func U(n uint64) []byte { return binary.AppendUvarint(nil, n) }

// Common pieces.
var (
	NoLocals = []byte{0}
	TypeVoid = []byte{0x60, 0, 0} // () -> ()
)

// Hostile modules: each has one function of type () -> () whose body has a
// shape that costs a decoder or compiler in proportion to n.

// ManyLocals declares n i64 locals in one declaration.
func ManyLocals(n uint64) []byte {
	locals := append(append([]byte{1}, U(n)...), 0x7e)
	return oneFunction(Body(locals, 0x0b))
}

// NestedBlocks nests n blocks.
func NestedBlocks(n int) []byte {
	code := make([]byte, 0, 3*n+1)
	for range n {
		code = append(code, 0x02, 0x40) // block
	}
	for range n {
		code = append(code, 0x0b)
	}
	return oneFunction(Body(NoLocals, append(code, 0x0b)...))
}

// BrTable is a br_table of n targets, all the function's own block.
func BrTable(n int) []byte {
	code := append([]byte{0x41, 0x00, 0x0e}, U(uint64(n))...) // i32.const 0, br_table
	for range n + 1 {
		code = append(code, 0x00)
	}
	return oneFunction(Body(NoLocals, append(code, 0x0b)...))
}

func oneFunction(body []byte) []byte {
	return Module(Sec(1, Vec(TypeVoid)), Sec(3, Vec([]byte{0})), Sec(10, Vec(body)))
}
