package hamustro

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/edgetrack/edgetrack/wasm/rules/hamustro/hamustrotest"
)

// FuzzSkipField checks skipField against protowire.ConsumeFieldValue, the
// recursive skipper it replaces: on every input they agree on the length, or
// both refuse it, except that skipField refuses groups nested deeper than
// maxGroupDepth.
func FuzzSkipField(f *testing.F) {
	f.Add(hamustrotest.NestedGroups(9, 3, true))
	f.Add(hamustrotest.NestedGroups(9, maxGroupDepth, true))
	f.Add(hamustrotest.NestedGroups(9, maxGroupDepth+1, true))
	f.Add(hamustrotest.NestedGroups(9, 10, false))
	f.Add([]byte{0x4b, 0x08, 0x01, 0x52, 0x01, 'x', 0x55, 1, 2, 3, 4, 0x59, 1, 2, 3, 4, 5, 6, 7, 8, 0x4c})
	f.Add([]byte{0x4b, 0x54})    // closed by another field's end group
	f.Add([]byte{0x4b, 0x4e})    // reserved wire type inside a group
	f.Add([]byte{0x08, 0x96, 1}) // a varint
	f.Fuzz(func(t *testing.T, b []byte) {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return
		}
		b = b[n:]
		want := protowire.ConsumeFieldValue(num, typ, b)
		got, err := skipField(num, typ, b)
		switch {
		case err == errGroupsDepth:
		case err != nil && want >= 0:
			t.Fatalf("skipField refused a value protowire skips (%d bytes): %v", want, err)
		case err == nil && want < 0:
			t.Fatalf("skipField skipped %d bytes protowire refuses (%d)", got, want)
		case err == nil && got != want:
			t.Fatalf("skipField skipped %d bytes, protowire %d", got, want)
		}
	})
}
