package store

import (
	"fmt"
	"time"
)

// Bucket is the width of a rollup bucket. Buckets are aligned to the unix
// epoch, so hours and days start at whole UTC hours and midnights: bucket i
// of a width w holds the event times [i·w, (i+1)·w).
type Bucket uint8

// Bucket widths, finest first.
const (
	Minute Bucket = iota + 1
	Hour
	Day
)

// Duration is the width of b.
func (b Bucket) Duration() time.Duration {
	switch b {
	case Minute:
		return time.Minute
	case Hour:
		return time.Hour
	case Day:
		return 24 * time.Hour
	}
	return 0
}

func (b Bucket) String() string {
	switch b {
	case Minute:
		return "minute"
	case Hour:
		return "hour"
	case Day:
		return "day"
	}
	return fmt.Sprintf("Bucket(%d)", uint8(b))
}

// Valid reports whether b is one of the widths above.
func (b Bucket) Valid() bool { return b >= Minute && b <= Day }

// Floor returns the start of the bucket holding t, in UTC.
func (b Bucket) Floor(t time.Time) time.Time {
	return b.Start(b.Index(UnixNano(t)))
}

// Index returns the index of the bucket holding the event time t (unix
// nanoseconds): t floor-divided by the width. b must be valid.
func (b Bucket) Index(t int64) int64 {
	n := int64(b.Duration())
	q := t / n
	if t%n != 0 && t < 0 {
		q--
	}
	return q
}

// Start returns the start of the bucket with index idx, in UTC. The seconds
// of a bucket start always fit in int64, also where its nanoseconds do not.
func (b Bucket) Start(idx int64) time.Time {
	return time.Unix(idx*int64(b.Duration()/time.Second), 0).UTC()
}

// StatsQuery asks for event counts per bucket of time.
type StatsQuery struct {
	Bucket Bucket
	// Start and End select the buckets that overlap [Start, End); a zero
	// time leaves that side unbounded. Counts are of whole buckets: see
	// Bucket.Floor to align a range.
	Start, End time.Time
	// Category and Name are exact-match filters ("" = any).
	Category, Name string
	// ByCategory and ByName choose the series: one per category, per name,
	// per category and name, or (both false) one in total.
	ByCategory, ByName bool
}

// Series is the counts of one group, oldest bucket first, without empty
// buckets.
type Series struct {
	Category string // "" when not grouped by category
	Name     string // "" when not grouped by name
	Points   []Point
}

// Point is the number of events in one bucket.
type Point struct {
	Start time.Time // UTC
	Count int64
}
