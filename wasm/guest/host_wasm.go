//go:build wasm

package guest

import (
	"unsafe"

	"github.com/edgetrack/edgetrack/wasm/abi"
)

//go:wasmimport edgetrack sha256
func hostSHA256(ptr unsafe.Pointer, size uint32, out unsafe.Pointer)

//go:wasmimport edgetrack md5
func hostMD5(ptr unsafe.Pointer, size uint32, out unsafe.Pointer)

//go:wasmimport edgetrack hmac_sha256
func hostHMACSHA256(key unsafe.Pointer, keySize uint32, ptr unsafe.Pointer, size uint32, out unsafe.Pointer)

//go:wasmimport edgetrack base64_encode
func hostBase64Encode(ptr unsafe.Pointer, size uint32, out unsafe.Pointer) uint32

//go:wasmimport edgetrack base64_decode
func hostBase64Decode(ptr unsafe.Pointer, size uint32, out unsafe.Pointer, outCap uint32) int32

//go:wasmimport edgetrack ct_equal
func hostCTEqual(a unsafe.Pointer, aSize uint32, b unsafe.Pointer, bSize uint32) uint32

//go:wasmimport edgetrack random
func hostRandom(ptr unsafe.Pointer, size uint32)

// wasmHost is abi.Host backed by the edge's host functions.
type wasmHost struct{}

func ptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

func strPtr(s string) unsafe.Pointer {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Pointer(unsafe.StringData(s))
}

func n(l int) uint32 { return uint32(l) }

func (wasmHost) SHA256(data []byte) (out [32]byte) {
	hostSHA256(ptr(data), n(len(data)), unsafe.Pointer(&out[0]))
	return out
}

func (wasmHost) MD5(data []byte) (out [16]byte) {
	hostMD5(ptr(data), n(len(data)), unsafe.Pointer(&out[0]))
	return out
}

func (wasmHost) HMACSHA256(key, data []byte) (out [32]byte) {
	hostHMACSHA256(ptr(key), n(len(key)), ptr(data), n(len(data)), unsafe.Pointer(&out[0]))
	return out
}

func (wasmHost) Base64(src []byte) string {
	dst := make([]byte, (len(src)+2)/3*4)
	w := hostBase64Encode(ptr(src), n(len(src)), ptr(dst))
	return unsafe.String(unsafe.SliceData(dst), int(w))
}

func (wasmHost) Base64Decode(s string) ([]byte, bool) {
	dst := make([]byte, len(s)/4*3+3)
	w := hostBase64Decode(strPtr(s), n(len(s)), ptr(dst), n(len(dst)))
	if w < 0 {
		return nil, false
	}
	return dst[:w], true
}

func (wasmHost) ConstantTimeEqual(a, b []byte) bool {
	return hostCTEqual(ptr(a), n(len(a)), ptr(b), n(len(b))) == 1
}

func (wasmHost) Random(b []byte) {
	if len(b) > 0 {
		hostRandom(ptr(b), n(len(b)))
	}
}

var _ abi.Host = wasmHost{}
