package guest

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"

	"github.com/edgetrack/edgetrack/wasm/abi"
)

// Native is an abi.Host computed in the calling program: what the edge's host
// functions compute, for running rule logic under `go test` and for guests
// that prefer not to call out.
type Native struct{}

var _ abi.Host = Native{}

func (Native) SHA256(data []byte) [32]byte { return sha256.Sum256(data) }
func (Native) MD5(data []byte) [16]byte    { return md5.Sum(data) }
func (Native) HMACSHA256(key, data []byte) (out [32]byte) {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	m.Sum(out[:0])
	return out
}
func (Native) Base64(src []byte) string { return base64.StdEncoding.EncodeToString(src) }
func (Native) Base64Decode(s string) ([]byte, bool) {
	b, err := base64.StdEncoding.DecodeString(s)
	return b, err == nil
}
func (Native) ConstantTimeEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
func (Native) Random(b []byte)                    { _, _ = rand.Read(b) }
