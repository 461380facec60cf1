package guest

const hexDigits = "0123456789abcdef"

// AppendHex appends the lower-case hex encoding of src to dst.
func AppendHex(dst, src []byte) []byte {
	for _, c := range src {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return dst
}

// Hex returns the lower-case hex encoding of src.
func Hex(src []byte) string { return string(AppendHex(make([]byte, 0, 2*len(src)), src)) }
