package instrument

import (
	"testing"

	"github.com/edgetrack/edgetrack/internal/wasmbin"
)

func TestDeclaredMemory(t *testing.T) {
	typ := wasmbin.Sec(1, wasmbin.Vec(wasmbin.TypeVoid))
	mem := func(limits ...byte) []byte { return wasmbin.Sec(5, wasmbin.Vec(limits)) }
	for _, tt := range []struct {
		name string
		wasm []byte
		want Memory
		ok   bool
	}{
		{"minimum only", wasmbin.Module(typ, mem(0x00, 0x80, 0x08)), Memory{Min: 1024}, true},
		{"minimum and maximum", wasmbin.Module(mem(append([]byte{0x01, 0x02}, wasmbin.U(70000)...)...)), Memory{Min: 2, Max: 70000, HasMax: true}, true},
		{"no memory section", wasmbin.Module(typ), Memory{}, false},
		{"no memory in the section", wasmbin.Module(wasmbin.Sec(5, wasmbin.Vec())), Memory{}, false},
		{"two memories", wasmbin.Module(wasmbin.Sec(5, wasmbin.Vec([]byte{0x00, 0x01}, []byte{0x00, 0x01}))), Memory{}, false},
		{"shared", wasmbin.Module(mem(0x03, 0x01, 0x02)), Memory{}, false},
		{"cut short", wasmbin.Module(mem(0x01, 0x01)), Memory{}, false},
		{"section past the end", wasmbin.Module(mem(0x00, 0x01))[:11], Memory{}, false},
		{"not wasm", []byte("hello, world"), Memory{}, false},
	} {
		got, ok := DeclaredMemory(tt.wasm)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s: DeclaredMemory = %+v, %t; want %+v, %t", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}
