package spool

import (
	"testing"
	"time"
)

func FuzzParsePosition(f *testing.F) {
	for _, s := range []string{"0/0", "1/2", "18446744073709551615/18446744073709551615", "", "/", "1/", "01/2", "1/2/3", "-1/2", "+1/2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePosition(s)
		if err != nil {
			return
		}
		q, err := ParsePosition(p.String())
		if err != nil || q != p {
			t.Fatalf("%q parsed as %v, which round-trips to %v, %v", s, p, q, err)
		}
	})
}

func FuzzDeadRecord(f *testing.F) {
	f.Add([]byte{}, "reason", []byte("value"), int64(0))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0x80}, "", []byte{}, int64(1700000000000000000))
	f.Fuzz(func(t *testing.T, raw []byte, reason string, value []byte, nanos int64) {
		// Arbitrary bytes never panic, and the carried value is the whole
		// record unless the record decodes.
		_, _, v, ok := decodeDead(raw)
		if !ok && len(deadValue(raw)) != len(raw) {
			t.Fatalf("undecodable %q carries %d bytes", raw, len(deadValue(raw)))
		}
		if ok && len(v) > len(raw) {
			t.Fatalf("value longer than the record")
		}
		at := time.Unix(0, nanos)
		gotAt, gotReason, gotValue, ok := decodeDead(encodeDead(at, reason, value))
		if !ok || !gotAt.Equal(at) || gotReason != reason || string(gotValue) != string(value) {
			t.Fatalf("round trip: %v %q %q %v", gotAt, gotReason, gotValue, ok)
		}
	})
}
