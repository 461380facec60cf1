package instrument

// secMemory is the memory section's id.
const secMemory = 5

// Memory is the memory a module defines in its memory section, in 64 KiB
// pages.
type Memory struct {
	Min    uint32
	Max    uint32 // meaningful when HasMax
	HasMax bool
}

// DeclaredMemory returns the memory the module's memory section defines.
// ok is false when the module has no such section, when the section
// defines no memory or more than one, when the memory is shared, or when
// the module does not parse as far as the section's end: then it defines
// no memory a host could give it.
func DeclaredMemory(wasm []byte) (mem Memory, ok bool) {
	if len(wasm) < wasmHeader || string(wasm[:4]) != "\x00asm" {
		return Memory{}, false
	}
	for r := (reader{b: wasm, off: wasmHeader}); !r.done(); {
		id := r.byte()
		body := r.bytes(int(r.u32()))
		if r.err != nil || id != secMemory {
			continue
		}
		s := reader{b: body}
		if s.u32() != 1 {
			return Memory{}, false
		}
		switch flags := s.byte(); flags {
		case 0x00:
			mem.Min = s.u32()
		case 0x01:
			mem.Min = s.u32()
			mem.Max, mem.HasMax = s.u32(), true
		default: // shared (0x02, 0x03) or not limits at all
			return Memory{}, false
		}
		if s.err != nil {
			return Memory{}, false
		}
		return mem, true
	}
	return Memory{}, false
}
