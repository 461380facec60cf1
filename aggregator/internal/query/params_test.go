package query

import (
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

func TestParseTime(t *testing.T) {
	utc := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			panic(err)
		}
		return t.UTC()
	}
	for _, tc := range []struct {
		in       string
		want     time.Time
		dateOnly bool
		err      string // "" = parses; errTimeForm's text or the range problem
	}{
		{"2022-04-11T01:08:01.407119", utc("2022-04-11T01:08:01.407119Z"), false, ""},
		{"2022-04-11 01:08:01.407119", utc("2022-04-11T01:08:01.407119Z"), false, ""},
		{"2022-04-11 01:08:01", utc("2022-04-11T01:08:01Z"), false, ""},
		{"2022-04-11T01:08", utc("2022-04-11T01:08:00Z"), false, ""},
		{"2022-04-11T01:08:01Z", utc("2022-04-11T01:08:01Z"), false, ""},
		{"2022-04-11T01:08:01.5+02:00", utc("2022-04-10T23:08:01.5Z"), false, ""},
		{"2022-04-11 01:08:01-0130", utc("2022-04-11T02:38:01Z"), false, ""},
		{"2022-04-11T01:08:01+02", utc("2022-04-10T23:08:01Z"), false, ""},
		{"2022-04-11T01:08:01 02:00", utc("2022-04-10T23:08:01Z"), false, ""}, // unescaped '+'
		{"2022-04-11T01:08:01.123456789", utc("2022-04-11T01:08:01.123456789Z"), false, ""},
		{"2022-01-01", utc("2022-01-01T00:00:00Z"), true, ""},
		{"2022-13-01", time.Time{}, false, "month out of range"},
		{"2022-02-30 00:00:00", time.Time{}, false, "day out of range"},
		{"2022-04-11T25:00:00", time.Time{}, false, "hour out of range"},
		{"2022-4-11", time.Time{}, false, errTimeForm.Error()},
		{"yesterday", time.Time{}, false, errTimeForm.Error()},
		{"1649639281", time.Time{}, false, errTimeForm.Error()},
		{"2022-04-11X01:08:01", time.Time{}, false, errTimeForm.Error()},
		{"2022-04-11T01:08:01+", time.Time{}, false, errTimeForm.Error()},
		{"", time.Time{}, false, errTimeForm.Error()},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, dateOnly, err := ParseTime(tc.in)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("ParseTime = %v, %v; want error %q", got, err, tc.err)
				}
				return
			}
			if err != nil || !got.Equal(tc.want) || got.Location() != time.UTC || dateOnly != tc.dateOnly {
				t.Errorf("ParseTime = %v (%v), %v, %v; want %v, %v", got, got.Location(), dateOnly, err, tc.want, tc.dateOnly)
			}
		})
	}
}

func TestParseEvents(t *testing.T) {
	day := func(s string) time.Time { t, _ := time.Parse(time.DateOnly, s); return t }
	for _, tc := range []struct {
		query string
		max   int
		want  Events
		err   string
	}{
		{"", 100, Events{Query: store.Query{Limit: 10}, Page: 1}, ""},
		{"", 5, Events{Query: store.Query{Limit: 5}, Page: 1}, ""},
		{"session_id=s&category=c&name=n", 100, Events{Query: store.Query{Session: "s", Category: "c", Name: "n", Limit: 10}, Page: 1}, ""},
		{"session_id=&category=&start_time=", 100, Events{Query: store.Query{Limit: 10}, Page: 1}, ""},
		{"page=3&page_size=7", 100, Events{Query: store.Query{Limit: 7, Offset: 14}, Page: 3}, ""},
		{"page=2&limit=7", 100, Events{Query: store.Query{Limit: 7, Offset: 7}, Page: 2}, ""},
		{"limit=7&page_size=7", 100, Events{Query: store.Query{Limit: 7}, Page: 1}, ""},
		{"session_id=s&limit=100&cursor=abc", 100, Events{Query: store.Query{Session: "s", Limit: 100, Cursor: "abc"}, Cursor: true}, ""},
		{"cursor=", 100, Events{Query: store.Query{Limit: 10}, Cursor: true}, ""},
		{"start_time=2022-01-01&end_time=2022-01-31", 100,
			Events{Query: store.Query{Start: day("2022-01-01"), End: day("2022-02-01"), Limit: 10}, Page: 1}, ""},
		{"end_time=2022-01-31T00:00:00", 100, Events{Query: store.Query{End: day("2022-01-31"), Limit: 10}, Page: 1}, ""},
		{"page_size=101", 100, Events{}, `page_size must be an integer from 1 to 100, got "101"`},
		{"page_size=0", 100, Events{}, `page_size must be an integer from 1 to 100, got "0"`},
		{"limit=-1", 100, Events{}, `limit must be an integer from 1 to 100, got "-1"`},
		{"limit=ten", 100, Events{}, `limit must be an integer from 1 to 100, got "ten"`},
		{"limit=5&page_size=6", 100, Events{}, `limit is another name of page_size; got both, 5 and 6`},
		{"page=0", 100, Events{}, `page must be a positive integer, got "0"`},
		{"page=x", 100, Events{}, `page must be a positive integer, got "x"`},
		{"sesion_id=s", 100, Events{}, `sesion_id is not a parameter of this endpoint; did you mean session_id?`},
		{"colour=red", 100, Events{}, `colour is not a parameter of this endpoint; it takes session_id, category, name, start_time, end_time, page, page_size, limit, cursor`},
		{"session_id=a&session_id=b", 100, Events{}, `session_id is given 2 times; give it once`},
		{"start_time=2022-04-12&end_time=2022-04-11T00:00:00", 100, Events{}, `end_time must be after start_time ("2022-04-11T00:00:00" is before "2022-04-12")`},
		{"page=9223372036854775807&page_size=100", 100, Events{}, `page 9223372036854775807 is past the last page`},
		{"page=2&cursor=abc", 100, Events{}, `cursor cannot be combined with page`},
		{"start_time=soon", 100, Events{}, `start_time must be a time like`},
		{"end_time=2022-02-30", 100, Events{}, `end_time must be a time like 2022-04-11T01:08:01.407119 or 2022-04-11 01:08:01.407119 ` +
			`(UTC unless followed by Z or an offset like +02:00), or a date like 2022-04-11; got "2022-02-30" (day out of range)`},
	} {
		t.Run(tc.query, func(t *testing.T) {
			params, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseEvents(params, tc.max)
			if tc.err != "" {
				var pe *ParamError
				if !errors.As(err, &pe) || !strings.HasPrefix(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), pe.Param+" ") {
					t.Fatalf("ParseEvents = %v, want *ParamError %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("ParseEvents = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestParseStats(t *testing.T) {
	at := func(s string) time.Time { t, _ := time.Parse(time.RFC3339, s); return t }
	base := "start_time=2022-01-01&end_time=2022-01-02"
	for _, tc := range []struct {
		query string
		want  store.StatsQuery
		err   string
	}{
		{base, store.StatsQuery{Bucket: store.Hour, Start: at("2022-01-01T00:00:00Z"), End: at("2022-01-03T00:00:00Z"), ByCategory: true, ByName: true}, ""},
		{base + "&bucket=minute&group_by=category&category=c&name=n", store.StatsQuery{Bucket: store.Minute,
			Start: at("2022-01-01T00:00:00Z"), End: at("2022-01-03T00:00:00Z"), Category: "c", Name: "n", ByCategory: true}, ""},
		{base + "&bucket=day&group_by=name", store.StatsQuery{Bucket: store.Day,
			Start: at("2022-01-01T00:00:00Z"), End: at("2022-01-03T00:00:00Z"), ByName: true}, ""},
		{base + "&group_by=name,category", store.StatsQuery{Bucket: store.Hour,
			Start: at("2022-01-01T00:00:00Z"), End: at("2022-01-03T00:00:00Z"), ByCategory: true, ByName: true}, ""},
		{"start_time=2022-01-01 10:30:00&end_time=2022-01-01T11:00:00Z&bucket=minute", store.StatsQuery{Bucket: store.Minute,
			Start: at("2022-01-01T10:30:00Z"), End: at("2022-01-01T11:00:00Z"), ByCategory: true, ByName: true}, ""},
		{"end_time=2022-01-02", store.StatsQuery{}, "start_time is required"},
		{"start_time=2022-01-02", store.StatsQuery{}, "end_time is required"},
		{"start_time=2022-01-02&end_time=2022-01-01T12:00:00", store.StatsQuery{}, "end_time must be after start_time"},
		{"start_time=2022-01-02T00:00:00&end_time=2022-01-02T00:00:00", store.StatsQuery{}, "end_time must be after start_time"},
		{base + "&bucket=week", store.StatsQuery{}, `bucket must be minute, hour or day, got "week"`},
		{base + "&group_by=session_id", store.StatsQuery{}, `group_by must be category, name or category,name, got "session_id"`},
		{base + "&group_by=category,category", store.StatsQuery{}, `group_by must be`},
		{"start_time=2022-01-01&end_time=2022-03-01&bucket=minute", store.StatsQuery{}, "end_time is too far from start_time: at most 50000 buckets of a minute, asked for 86400"},
		{"start_time=0001-01-01&end_time=9999-12-31&bucket=day", store.StatsQuery{}, "end_time is too far from start_time"},
		{"start_time=x&end_time=2022-01-01", store.StatsQuery{}, "start_time must be a time like"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			params, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseStats(params)
			if tc.err != "" {
				var pe *ParamError
				if !errors.As(err, &pe) || !strings.HasPrefix(err.Error(), tc.err) {
					t.Fatalf("ParseStats = %v, want *ParamError %q", err, tc.err)
				}
				return
			}
			if err != nil || got.Query != tc.want {
				t.Errorf("ParseStats = %+v, %v;\nwant %+v", got.Query, err, tc.want)
			}
		})
	}
}

// TestParamsDeclared checks that the parsers read every parameter they
// declare (and, by params.get panicking, no other): the lists are what the
// OpenAPI document is checked against.
func TestParamsDeclared(t *testing.T) {
	for _, tc := range []struct {
		declared []string
		query    string // valid values for every declared parameter
		parse    func(*params) error
	}{
		{EventsParams, "session_id=s&category=c&name=n&start_time=2022-01-01&end_time=2022-01-02&page_size=5&limit=5&page=1",
			func(p *params) error { _, err := parseEvents(p, 100); return err }},
		{EventsParams, "session_id=s&category=c&name=n&start_time=2022-01-01&end_time=2022-01-02&page_size=5&limit=5&cursor=x",
			func(p *params) error { _, err := parseEvents(p, 100); return err }},
		{ExportParams, "after=&limit=5&wait=1s&session_id=s&category=c&name=n&name_prefix=a,b&start_time=2022-01-01&end_time=2022-01-02",
			func(p *params) error { _, err := parseExport(p, 100); return err }},
		{StatsParams, "start_time=2022-01-01&end_time=2022-01-02&bucket=day&group_by=name&category=c&name=n",
			func(p *params) error { _, err := parseStats(p); return err }},
	} {
		values, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		p := newParams(values, tc.declared)
		if err := tc.parse(p); err != nil {
			t.Fatalf("%s: %v", tc.query, err)
		}
		for name := range values {
			if !p.read[name] {
				t.Errorf("%s: parameter %s is declared but not read", tc.query, name)
			}
		}
	}
	all := slices.Concat(EventsParams, StatsParams)
	for _, name := range all {
		if name != strings.ToLower(name) {
			t.Errorf("parameter %q is not lower case", name)
		}
	}
}

func TestNewPage(t *testing.T) {
	self, err := url.Parse("http://agg.example:9090/events?category=view&page=2&page_size=2&x=y")
	if err != nil {
		t.Fatal(err)
	}
	ev := &eventpb.Event{Id: "a", ReceivedAt: 1}
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		name string
		req  Events
		res  store.Result
		want Page
	}{
		{"middle page", Events{Page: 2}, store.Result{Events: []*eventpb.Event{ev}, Next: "c"}, Page{
			Count: 9, Next: str("http://agg.example:9090/events?category=view&page=3&page_size=2&x=y"),
			Previous: str("http://agg.example:9090/events?category=view&page_size=2&x=y"),
		}},
		{"last page", Events{Page: 5}, store.Result{Events: []*eventpb.Event{ev}}, Page{
			Count: 9, Previous: str("http://agg.example:9090/events?category=view&page=4&page_size=2&x=y"),
		}},
		{"only page", Events{Page: 1}, store.Result{}, Page{Count: 9}},
		{"cursor", Events{Cursor: true}, store.Result{Events: []*eventpb.Event{ev}, Next: "c/+="}, Page{
			Count: 9, Next: str("http://agg.example:9090/events?category=view&cursor=c%2F%2B%3D&page=2&page_size=2&x=y"),
		}},
		{"last cursor page", Events{Cursor: true}, store.Result{Events: []*eventpb.Event{ev}}, Page{Count: 9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := NewPage(tc.req, self, 9, tc.res)
			if got.Count != tc.want.Count || !equalPtr(got.Next, tc.want.Next) || !equalPtr(got.Previous, tc.want.Previous) ||
				len(got.Results) != len(tc.res.Events) {
				t.Errorf("NewPage = %+v\nwant %+v", show(got), show(tc.want))
			}
		})
	}
	b, err := json.Marshal(NewPage(Events{Page: 1}, self, 0, store.Result{}))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"count":0,"next":null,"previous":null,"results":[]}` {
		t.Errorf("empty page = %s", b)
	}
}

func equalPtr(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func show(p Page) string {
	b, _ := json.Marshal(p)
	return string(b)
}

func TestNewStats(t *testing.T) {
	at := func(s string) time.Time { t, _ := time.Parse(time.RFC3339, s); return t }
	req := StatsRequest{Query: store.StatsQuery{Bucket: store.Hour, Start: at("2022-01-01T10:30:00Z"), End: at("2022-01-01T12:00:01Z"), ByCategory: true}}
	got := NewStats(req, []store.Series{
		{Category: "", Points: []store.Point{{Start: at("2022-01-01T10:00:00Z"), Count: 2}}},
		{Category: "view", Points: []store.Point{{Start: at("2022-01-01T11:00:00Z"), Count: 1}, {Start: at("2022-01-01T12:00:00Z"), Count: 5}}},
	})
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"bucket":"hour","start_time":"2022-01-01T10:00:00Z","end_time":"2022-01-01T13:00:00Z","series":[` +
		`{"category":"","points":[{"time":"2022-01-01T10:00:00Z","count":2}]},` +
		`{"category":"view","points":[{"time":"2022-01-01T11:00:00Z","count":1},{"time":"2022-01-01T12:00:00Z","count":5}]}]}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	b, _ = json.Marshal(NewStats(req, nil))
	if !strings.HasSuffix(string(b), `"series":[]}`) {
		t.Errorf("no series: %s", b)
	}
}
