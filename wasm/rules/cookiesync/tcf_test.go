package cookiesync_test

import (
	"encoding/base64"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/edgetrack/edgetrack/wasm/rules/cookiesync"
	"github.com/edgetrack/edgetrack/wasm/rules/cookiesync/cookiesynctest"
)

// referenceStrings were encoded and decoded by other implementations; the
// fields are what those implementations read.
//
// github.com/prebid/go-gdpr (vendorconsent/tcf2) could not be fetched from
// the module proxy here, so the cross-check uses its test strings and the
// values its tests assert, and strings made with the IAB's own JavaScript
// library, @iabtcf/core 1.5.6 (TCModel → TCString.encode, read back with
// TCString.decode), from a vendor list with vendors 1–max.
var referenceStrings = []struct {
	name     string
	tc       string
	cmpID    int
	maxID    int
	ranges   bool
	purposes []int
	vendors  []int
}{
	{"go-gdpr TestBitField", "COwGVJOOwGVJOADACHENAOCAAO6as_-AAAhoAFNLAAoAAAA", 3, 10, false,
		[]int{1, 2, 3, 5, 6, 7, 9, 12, 13, 15, 17, 19, 20, 23, 24}, []int{1, 2, 4, 7, 9, 10}},
	{"go-gdpr TestRangeSectionConsent", "COyiILmOyiILmADACHENAPCAAAAAAAAAAAAAE5QBgALgAqgD8AQACSwEygJyAAAAAA", 3, 626, true,
		nil, []int{23, 42, 126, 127, 128, 587, 613, 626}},
	{"iabtcf bit field", "CP3wuNyP3wuNyEsACBENAwCgAOAAAAAAAAAAAVNLAAAAAQAAAAAA.YAAAAAAAAAAA", 300, 42, false,
		[]int{1, 2, 3}, []int{1, 2, 4, 7, 9, 10, 42}},
	{"iabtcf no purpose 1", "CP3wuNyP3wuNyEsACBENAwCgAHAAAAAAAAAAAVOAAAAAAQAAAAAA.YAAAAAAAAAAA", 300, 42, false,
		[]int{2, 3, 4}, []int{1, 2, 3, 42}},
	{"iabtcf ranges", "CP3wuNyP3wuNyEsACBENAwCgAIAAAAAAAAAAPoQAwAVQK8AsYD6AAAAAAAAA.YAAAAAAAAAAA", 300, 2000, true,
		[]int{1}, []int{42, 700, 701, 702, 703, 704, 705, 706, 707, 708, 709, 710, 2000}},
	{"iabtcf ranges without 42", "CP3wuNyP3wuNyEsACBENAwCgAMAAAAAAAAAALzQAgADwXcBeYAAAAAAA.YAAAAAAAAAAA", 300, 1510, true,
		[]int{1, 2}, []int{7, 1500, 1501, 1502, 1503, 1504, 1505, 1506, 1507, 1508, 1509, 1510}},
	{"iabtcf no vendors", "CP3wuNyP3wuNyEsACBENAwCgAIAAAAAAAAAAAAAAAAAA.YAAAAAAAAAAA", 300, 0, false,
		[]int{1}, nil},
	{"iabtcf all purposes", "CP3wuNyP3wuNyEsACBENAwCgAP_AAAAAAAAAAVAAAAAAAQAAAAAA.YAAAAAAAAAAA", 300, 42, false,
		[]int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, []int{42}},
}

func TestConsentReferenceStrings(t *testing.T) {
	for _, c := range referenceStrings {
		t.Run(c.name, func(t *testing.T) {
			got, err := cookiesync.ParseConsent(c.tc)
			if err != nil {
				t.Fatal(err)
			}
			if got.Version != 2 || got.CMPID != c.cmpID || got.MaxVendorID != c.maxID || got.RangeEncoded != c.ranges {
				t.Fatalf("version %d cmp %d max %d ranges %v, want 2 %d %d %v",
					got.Version, got.CMPID, got.MaxVendorID, got.RangeEncoded, c.cmpID, c.maxID, c.ranges)
			}
			checkConsent(t, &got, c.purposes, c.vendors)
			if d := compareReference(c.tc); d != "" {
				t.Fatal(d)
			}
		})
	}
}

func checkConsent(t *testing.T, c *cookiesync.Consent, purposes, vendors []int) {
	t.Helper()
	for p := 0; p <= 25; p++ {
		if want := slices.Contains(purposes, p); c.Purpose(p) != want {
			t.Errorf("purpose %d: %v, want %v", p, !want, want)
		}
	}
	set := map[int]bool{}
	for _, id := range vendors {
		set[id] = true
	}
	for _, id := range probeIDs(c.MaxVendorID, set) {
		if want := set[id]; c.Vendor(id) != want {
			t.Errorf("vendor %d: %v, want %v", id, !want, want)
		}
	}
}

// TestConsentRoundTrip encodes random consents with cookiesynctest's encoder,
// both ways, and reads them back.
func TestConsentRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 100; i++ {
		var purposes, vendors []int
		for p := 1; p <= 24; p++ {
			if rng.IntN(2) == 0 {
				purposes = append(purposes, p)
			}
		}
		n := 1 + rng.IntN(3000)
		density := rng.Float64()
		for id := 1; id <= n; id++ {
			if rng.Float64() < density*density {
				vendors = append(vendors, id)
			}
		}
		for _, ranges := range []bool{false, true} {
			s := cookiesynctest.TCString(purposes, vendors, ranges, 0)
			c, err := cookiesync.ParseConsent(s)
			if err != nil {
				t.Fatalf("%s: %v", s, err)
			}
			if c.RangeEncoded != ranges {
				t.Fatalf("RangeEncoded %v, want %v", c.RangeEncoded, ranges)
			}
			checkConsent(t, &c, purposes, vendors)
			if d := compareReference(s); d != "" {
				t.Fatal(d)
			}
			if t.Failed() {
				t.FailNow()
			}
		}
	}
}

func TestConsentUndecodable(t *testing.T) {
	good := cookiesynctest.TCString([]int{1}, []int{10, 11, 12}, true, 0)
	bitfield := cookiesynctest.TCString([]int{1}, []int{3000}, false, 0)
	edit := func(s string, off, n, v int) string {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			panic(err)
		}
		for i := 0; i < n; i++ {
			bit := off + i
			if v>>(n-1-i)&1 == 1 {
				b[bit/8] |= 0x80 >> (bit % 8)
			} else {
				b[bit/8] &^= 0x80 >> (bit % 8)
			}
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	const entry = 242 // first range entry: IsARange 1, start 16, end 16
	for name, s := range map[string]string{
		"empty":                  "",
		"not base64url":          "CP3wuNyP3wuNyEsA+BENAwCgAIAA",
		"standard alphabet":      strings.ReplaceAll(good, "_", "/") + "/",
		"a char too many":        good + strings.Repeat("A", (5-len(good)%4)%4),
		"short":                  good[:38],
		"version 1":              edit(good, 0, 6, 1),
		"version 3":              edit(good, 0, 6, 3),
		"bit field cut short":    bitfield[:200],
		"range entries cut":      good[:41],
		"range start after end":  edit(good, entry+17, 16, 5),
		"range starting at 0":    edit(good, entry+1, 16, 0),
		"range past MaxVendorId": edit(good, entry+17, 16, 13),
		"more entries than fit":  edit(good, 230, 12, 40),
		"single id 0":            edit(edit(good, entry, 1, 0), entry+1, 16, 0),
	} {
		if _, err := cookiesync.ParseConsent(s); err == nil {
			t.Errorf("%s: %q decoded", name, s)
		}
		if d := compareReference(s); d != "" {
			t.Errorf("%s: %s", name, d)
		}
	}
	for name, s := range map[string]string{
		"padded":            good + strings.Repeat("=", (4-len(good)%4)%4),
		"further segments":  good + ".YAAAAAAAAAAA.IDKQA4AAgAKAGQAygAAA",
		"range of one":      edit(good, entry+17, 16, 10),
		"trailing garbage":  good + "AAAA",
		"no vendors, range": cookiesynctest.TCString([]int{1}, nil, true, 0),
	} {
		if _, err := cookiesync.ParseConsent(s); err != nil {
			t.Errorf("%s: %q: %v", name, s, err)
		}
	}
}

func FuzzParseConsent(f *testing.F) {
	for _, c := range referenceStrings {
		f.Add(c.tc)
	}
	f.Add(cookiesynctest.TCString([]int{1}, []int{5, 6, 7, 42}, true, 0))
	f.Add(cookiesynctest.TCString([]int{1}, []int{5, 6, 7, 42}, false, 0))
	f.Fuzz(func(t *testing.T, s string) {
		if d := compareReference(s); d != "" {
			t.Fatal(d)
		}
	})
}

// compareReference decodes s with the rule and with refDecode, and describes
// any difference.
func compareReference(s string) string {
	c, err := cookiesync.ParseConsent(s)
	ref, ok := refDecode(s)
	if (err == nil) != ok {
		return "rule error " + errString(err) + ", reference ok " + boolString(ok) + " for " + s
	}
	if !ok {
		return ""
	}
	if c.MaxVendorID != ref.max || c.CMPID != ref.cmp || c.RangeEncoded != ref.ranges {
		return "fields differ from the reference for " + s
	}
	for p := 1; p <= 24; p++ {
		if c.Purpose(p) != ref.purposes[p] {
			return "purposes differ from the reference for " + s
		}
	}
	for _, id := range probeIDs(c.MaxVendorID, ref.vendors) {
		if c.Vendor(id) != ref.vendor(id) {
			return "vendor consents differ from the reference for " + s
		}
	}
	return ""
}

// probeIDs returns the vendor ids worth asking about: the ends, every
// consented id and its neighbours (at most 500), and 200 ids spread over the
// range. Asking about every id of a large range-encoded string is slow.
func probeIDs(max int, consented map[int]bool) []int {
	ids := []int{0, 1, max, max + 1}
	for id := range consented {
		if len(ids) > 1500 {
			break
		}
		ids = append(ids, id-1, id, id+1)
	}
	for id := 0; id <= max; id += max/200 + 1 {
		ids = append(ids, id)
	}
	return ids
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// refConsent is a TC string decoded the plain way, independently of the
// rule: base64 to bytes with encoding/base64, then bits from bytes, and
// vendor consents expanded into a set.
type refConsent struct {
	cmp, max int
	ranges   bool
	purposes [25]bool
	vendors  map[int]bool
}

func (r *refConsent) vendor(id int) bool { return r.vendors[id] }

func refDecode(s string) (*refConsent, bool) {
	core, _, _ := strings.Cut(s, ".")
	for i := 0; i < 2 && strings.HasSuffix(core, "="); i++ {
		core = core[:len(core)-1]
	}
	b, err := base64.RawURLEncoding.DecodeString(core)
	if err != nil || strings.ContainsAny(core, "\r\n") { // encoding/base64 skips newlines
		return nil, false
	}
	n := len(b) * 8
	get := func(off, bits int) int {
		v := 0
		for i := off; i < off+bits; i++ {
			v = v<<1 | int(b[i/8]>>(7-i%8)&1)
		}
		return v
	}
	if n < 230 || get(0, 6) != 2 {
		return nil, false
	}
	r := &refConsent{cmp: get(78, 12), max: get(213, 16), ranges: get(229, 1) == 1, vendors: map[int]bool{}}
	for p := 1; p <= 24; p++ {
		r.purposes[p] = get(152+p-1, 1) == 1
	}
	if !r.ranges {
		if 230+r.max > n {
			return nil, false
		}
		for id := 1; id <= r.max; id++ {
			if get(230+id-1, 1) == 1 {
				r.vendors[id] = true
			}
		}
		return r, true
	}
	if 242 > n {
		return nil, false
	}
	entries, off := get(230, 12), 242
	for i := 0; i < entries; i++ {
		if off+17 > n {
			return nil, false
		}
		isRange, start := get(off, 1) == 1, get(off+1, 16)
		end := start
		off += 17
		if isRange {
			if off+16 > n {
				return nil, false
			}
			end = get(off, 16)
			off += 16
		}
		if start < 1 || end < start || end > r.max {
			return nil, false
		}
		for id := start; id <= end; id++ {
			r.vendors[id] = true
		}
	}
	return r, true
}

// BenchmarkConsent measures the largest range section a string can hold:
// 4095 entries, our vendor in none, so Vendor walks them all.
func BenchmarkConsent(b *testing.B) {
	var vendors []int
	for id := 2; len(vendors) < 4095; id += 2 {
		vendors = append(vendors, id)
	}
	s := cookiesynctest.TCString([]int{1}, vendors, true, 0)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		c, err := cookiesync.ParseConsent(s)
		if err != nil || c.Vendor(1) {
			b.Fatal(err)
		}
	}
}
