package query

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
)

// StatsParams are the parameters GET /stats reads.
var StatsParams = []string{"start_time", "end_time", "bucket", "group_by", "category", "name"}

// MaxStatsBuckets is the most buckets one GET /stats may span: about 34 days
// by minute, 5.7 years by hour, 136 years by day.
const MaxStatsBuckets = 50_000

// StatsRequest is a parsed GET /stats request.
type StatsRequest struct {
	Query store.StatsQuery
}

var bucketNames = map[string]store.Bucket{"minute": store.Minute, "hour": store.Hour, "day": store.Day}

// ParseStats turns the parameters of GET /stats into a request.
// start_time and end_time are required (same forms and meaning as for
// events; the counts are of the whole buckets they overlap); bucket is
// minute, hour (default) or day; group_by is category, name or
// category,name (default); category and name filter. Errors are
// *ParamError.
func ParseStats(values url.Values) (StatsRequest, error) {
	return parseStats(newParams(values, StatsParams))
}

func parseStats(p *params) (StatsRequest, error) {
	if err := p.check(); err != nil {
		return StatsRequest{}, err
	}
	start, end, err := p.timeRange()
	if err != nil {
		return StatsRequest{}, err
	}
	switch { // (a zero time is 0001-01-01, which is valid)
	case p.get("start_time") == "":
		return StatsRequest{}, &ParamError{"start_time", "is required"}
	case p.get("end_time") == "":
		return StatsRequest{}, &ParamError{"end_time", "is required"}
	case !end.After(start):
		return StatsRequest{}, &ParamError{"end_time", fmt.Sprintf("must be after start_time (%s), got %s",
			start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano))}
	}
	q := store.StatsQuery{Start: start, End: end, Category: p.get("category"), Name: p.get("name"), Bucket: store.Hour}
	if s := p.get("bucket"); s != "" {
		b, ok := bucketNames[s]
		if !ok {
			return StatsRequest{}, &ParamError{"bucket", fmt.Sprintf("must be minute, hour or day, got %q", s)}
		}
		q.Bucket = b
	}
	q.ByCategory, q.ByName = true, true
	if s := p.get("group_by"); s != "" {
		parts := strings.Split(s, ",")
		slices.Sort(parts)
		switch strings.Join(parts, ",") {
		case "category":
			q.ByName = false
		case "name":
			q.ByCategory = false
		case "category,name":
		default:
			return StatsRequest{}, &ParamError{"group_by", fmt.Sprintf("must be category, name or category,name, got %q", s)}
		}
	}
	first, last := q.Bucket.Floor(start), q.Bucket.Floor(end.Add(-1))
	if n := last.Sub(first)/q.Bucket.Duration() + 1; n > MaxStatsBuckets || n <= 0 {
		return StatsRequest{}, &ParamError{"end_time", fmt.Sprintf("is too far from start_time: at most %d buckets of a %s, asked for %d",
			MaxStatsBuckets, q.Bucket, n)}
	}
	return StatsRequest{Query: q}, nil
}

// Stats is the JSON answer to GET /stats. start_time and end_time are the
// range actually counted: the requested one widened to whole buckets.
type Stats struct {
	Bucket    string        `json:"bucket"`
	StartTime string        `json:"start_time"`
	EndTime   string        `json:"end_time"`
	Series    []StatsSeries `json:"series"` // never null
}

// StatsSeries is the counts of one group, oldest first, without empty
// buckets. Category and Name are present when the series is grouped by them
// (an event without a category has the category "").
type StatsSeries struct {
	Category *string      `json:"category,omitempty"`
	Name     *string      `json:"name,omitempty"`
	Points   []StatsPoint `json:"points"`
}

// StatsPoint is the number of events in the bucket that starts at Time.
type StatsPoint struct {
	Time  string `json:"time"` // RFC 3339, UTC, whole seconds
	Count int64  `json:"count"`
}

// NewStats returns the answer to req.
func NewStats(req StatsRequest, series []store.Series) Stats {
	q := req.Query
	out := Stats{
		Bucket:    q.Bucket.String(),
		StartTime: q.Bucket.Floor(q.Start).Format(time.RFC3339),
		EndTime:   q.Bucket.Floor(q.End.Add(-1)).Add(q.Bucket.Duration()).Format(time.RFC3339),
		Series:    make([]StatsSeries, len(series)),
	}
	for i, s := range series {
		ss := StatsSeries{Points: make([]StatsPoint, len(s.Points))}
		if q.ByCategory {
			ss.Category = &s.Category
		}
		if q.ByName {
			ss.Name = &s.Name
		}
		for j, pt := range s.Points {
			ss.Points[j] = StatsPoint{Time: pt.Start.UTC().Format(time.RFC3339), Count: pt.Count}
		}
		out.Series[i] = ss
	}
	return out
}
