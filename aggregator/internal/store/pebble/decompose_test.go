package pebble

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestDecompose(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	const day = int64(24 * time.Hour)
	points := []int64{negInf, posInf, 0, -1, 1, day, -day, negInf + 1, posInf - 1}
	for range 2000 {
		base := []int64{0, 1_700_000_000e9, posInf - 3*day, negInf + 3*day}[r.IntN(4)]
		points = append(points, base+r.Int64N(6*day)-3*day)
	}
	for range 20000 {
		s := span{points[r.IntN(len(points))], points[r.IntN(len(points))]}
		if r.IntN(2) == 0 {
			s.lo = floorTo(s.lo, buckets[r.IntN(3)])
		}
		segs := decompose(s)
		if s.lo >= s.hi {
			if len(segs) != 0 {
				t.Fatalf("%v: %v for an empty span", s, segs)
			}
			continue
		}
		// Newest first, adjacent, covering s exactly.
		if segs[0].hi != s.hi || segs[len(segs)-1].lo != s.lo {
			t.Fatalf("%v: %v does not cover it", s, segs)
		}
		levels := 0
		for i, seg := range segs {
			if seg.lo >= seg.hi {
				t.Fatalf("%v: empty segment %d in %v", s, i, segs)
			}
			if i > 0 && segs[i-1].lo != seg.hi {
				t.Fatalf("%v: segments %d and %d not adjacent in %v", s, i-1, i, segs)
			}
			if seg.level > 0 {
				n := buckets[seg.level-1]
				for _, b := range []int64{seg.lo, seg.hi} {
					if b != negInf && b != posInf && floorTo(b, n) != b {
						t.Fatalf("%v: segment %v not aligned to %v", s, seg, buckets[seg.level-1])
					}
				}
			} else {
				levels++
			}
		}
		if levels > 2 {
			t.Fatalf("%v: %d segments of index keys in %v", s, levels, segs)
		}
	}
}
