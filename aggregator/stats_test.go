package aggregator_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// statsAnswer is GET /stats decoded.
type statsAnswer struct {
	Bucket    string `json:"bucket"`
	StartTime string `json:"start_time"`
	EndTime   string `json:"end_time"`
	Series    []struct {
		Category *string `json:"category"`
		Name     *string `json:"name"`
		Points   []struct {
			Time  string `json:"time"`
			Count int64  `json:"count"`
		} `json:"points"`
	} `json:"series"`
}

// flat is an answer as "category/name@time" → count; an absent field is "-".
func (a statsAnswer) flat() map[string]int64 {
	out := map[string]int64{}
	for _, s := range a.Series {
		c, n := "-", "-"
		if s.Category != nil {
			c = *s.Category
		}
		if s.Name != nil {
			n = *s.Name
		}
		for i, p := range s.Points {
			if p.Count <= 0 || i > 0 && p.Time <= s.Points[i-1].Time {
				return map[string]int64{"unsorted or empty point": 1}
			}
			out[c+"/"+n+"@"+p.Time] = p.Count
		}
	}
	return out
}

// bruteStats counts events the slow way, as flat does.
func bruteStats(events []*eventpb.Event, bucket time.Duration, byCategory, byName bool, category, name string, start, end time.Time) map[string]int64 {
	out := map[string]int64{}
	for _, ev := range events {
		t := time.Unix(0, ev.GetClientTime()).UTC()
		b := t.Truncate(bucket) // buckets are aligned to the unix epoch, as Truncate is
		if b.Before(start.Truncate(bucket)) || !b.Before(end) ||
			category != "" && ev.GetCategory() != category || name != "" && ev.GetName() != name {
			continue
		}
		c, n := "-", "-"
		if byCategory {
			c = ev.GetCategory()
		}
		if byName {
			n = ev.GetName()
		}
		out[c+"/"+n+"@"+b.Format(time.RFC3339)]++
	}
	return out
}

func (r *running) stats(params url.Values) (response, statsAnswer) {
	r.tb.Helper()
	resp := r.do(http.MethodGet, r.base+"/stats?"+params.Encode(), queryToken, nil)
	var a statsAnswer
	if resp.status == http.StatusOK {
		if err := json.Unmarshal(resp.body, &a); err != nil {
			r.tb.Fatalf("decoding stats %s: %v", resp.body, err)
		}
	}
	return resp, a
}

func TestStats(t *testing.T) {
	r := start(t, testConfig(t))
	events := eyeEvents(500)
	r.ingestAll(events)
	check := func(t *testing.T) {
		t.Helper()
		for _, tc := range []struct {
			start, end         string
			startTime, endTime time.Time // what they mean
		}{
			{"2022-04-10", "2022-04-12", eyeStart, eyeStart.Add(72 * time.Hour)},
			{"2022-04-11T01:08:01.407119", "2022-04-11 13:30:00", time.Date(2022, 4, 11, 1, 8, 1, 407119000, time.UTC), time.Date(2022, 4, 11, 13, 30, 0, 0, time.UTC)},
			{"2022-04-11 23:59:00", "2022-04-12T00:00:00.000000001", time.Date(2022, 4, 11, 23, 59, 0, 0, time.UTC), time.Date(2022, 4, 12, 0, 0, 0, 1, time.UTC)},
		} {
			for _, bucket := range []struct {
				name string
				d    time.Duration
			}{{"minute", time.Minute}, {"hour", time.Hour}, {"day", 24 * time.Hour}, {"", time.Hour}} {
				for _, g := range []struct {
					groupBy            string
					byCategory, byName bool
				}{{"category", true, false}, {"name", false, true}, {"category,name", true, true}, {"", true, true}} {
					for _, f := range [][2]string{{"", ""}, {"page_interaction", ""}, {"", "submit"}, {"page_interaction", "cta_click"}} {
						params := url.Values{"start_time": {tc.start}, "end_time": {tc.end}}
						for k, v := range map[string]string{"bucket": bucket.name, "group_by": g.groupBy, "category": f[0], "name": f[1]} {
							if v != "" {
								params.Set(k, v)
							}
						}
						resp, a := r.stats(params)
						resp.wantStatus(t, http.StatusOK)
						want := bruteStats(events, bucket.d, g.byCategory, g.byName, f[0], f[1], tc.startTime, tc.endTime)
						if got := a.flat(); !reflect.DeepEqual(got, want) {
							t.Fatalf("%v: got %v, want %v", params, got, want)
						}
						wantStart := tc.startTime.Truncate(bucket.d).Format(time.RFC3339)
						wantEnd := tc.endTime.Add(-1).Truncate(bucket.d).Add(bucket.d).Format(time.RFC3339)
						if a.StartTime != wantStart || a.EndTime != wantEnd || a.Bucket != cmpOr(bucket.name, "hour") {
							t.Fatalf("%v: bucket %s from %s to %s, want %s, %s", params, a.Bucket, a.StartTime, a.EndTime, wantStart, wantEnd)
						}
					}
				}
			}
		}
	}
	check(t)
	// Sending everything again (as an edge that lost the acknowledgements
	// does) changes nothing.
	r.ingestAll(events)
	check(t)
	// One new event counts once.
	late := eyeEvent("late", "sess1", "page_interaction", "page_view", time.Date(2022, 4, 11, 7, 0, 0, 0, time.UTC))
	r.ingest(batch(late, late))
	events = append(events, late)
	check(t)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestStatsBadRequests(t *testing.T) {
	r := start(t, testConfig(t))
	for _, tc := range []struct {
		query, msg string
	}{
		{"end_time=2022-01-02", "start_time is required"},
		{"start_time=2022-01-01", "end_time is required"},
		{"start_time=2022-01-01&end_time=2022-01-02&bucket=week", `bucket must be minute, hour or day, got "week"`},
		{"start_time=2022-01-01&end_time=2022-01-02&group_by=session", `group_by must be category, name or category,name, got "session"`},
		{"start_time=2022-01-02T00:00:00&end_time=2022-01-01", "end_time must be after start_time"},
		{"start_time=2022-01-01&end_time=2023-01-01&bucket=minute", "end_time is too far from start_time: at most 50000 buckets of a minute"},
		{"start_time=2022-01-01T10&end_time=2022-01-02", "start_time must be a time like"},
		{"start_time=%zz", "malformed query string"},
	} {
		resp := r.do(http.MethodGet, r.base+"/stats?"+tc.query, queryToken, nil)
		resp.wantStatus(t, http.StatusBadRequest)
		if msg := resp.errorMessage(t); !strings.HasPrefix(msg, tc.msg) {
			t.Errorf("%s: error %q, want it to start with %q", tc.query, msg, tc.msg)
		}
	}
	// An empty range of a store with nothing: no series, not null.
	resp, a := r.stats(url.Values{"start_time": {"2022-01-01"}, "end_time": {"2022-01-01"}})
	resp.wantStatus(t, http.StatusOK)
	if a.Series == nil || len(a.Series) != 0 || !strings.Contains(string(resp.body), `"series":[]`) {
		t.Errorf("empty stats: %s", resp.body)
	}
}
