package aggregator_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// The Eye's query API: filters, timestamp forms, page numbers and cursors,
// each checked against a brute-force answer over the ingested events.

// eyeStart is the first day of eyeEvents.
var eyeStart = time.Date(2022, 4, 10, 0, 0, 0, 0, time.UTC)

// eyeEvent is an Eye-like event at ts.
func eyeEvent(id, session, category, name string, ts time.Time) *eventpb.Event {
	return &eventpb.Event{
		Id: id, Source: eventpb.Source_SOURCE_EYE, Session: session, Category: category, Name: name,
		ClientTime: ts.UnixNano(), ReceivedAt: ts.Add(time.Second).UnixNano(),
		Data: []byte(`{"host":"www.consumeraffairs.com","path":"/"}`), Edge: "edge-1", Rule: "eye@1",
	}
}

// eyeEvents makes n events over three days, some sharing a time, plus
// events exactly at the times the tests use as bounds.
func eyeEvents(n int) []*eventpb.Event {
	r := rand.New(rand.NewPCG(7, 7))
	kinds := [][2]string{{"page_interaction", "page_view"}, {"page_interaction", "cta_click"}, {"form_interaction", "submit"}}
	var events []*eventpb.Event
	var last time.Time
	for i := range n {
		ts := eyeStart.Add(time.Duration(r.Int64N(int64(72 * time.Hour))))
		if i%7 == 0 && i > 0 {
			ts = last // equal times are ordered by id
		}
		last = ts
		k := kinds[r.IntN(len(kinds))]
		events = append(events, eyeEvent(fmt.Sprintf("ev%04d", i), "sess"+strconv.Itoa(r.IntN(4)), k[0], k[1], ts))
	}
	for _, b := range []struct {
		id string
		ts time.Time
	}{
		{"b-exact", time.Date(2022, 4, 11, 1, 8, 1, 407119000, time.UTC)},
		{"b-midnight", time.Date(2022, 4, 12, 0, 0, 0, 0, time.UTC)},
		{"b-last-of-day", time.Date(2022, 4, 11, 23, 59, 59, 999999999, time.UTC)},
	} {
		events = append(events, eyeEvent(b.id, "sess1", "page_interaction", "page_view", b.ts))
	}
	return events
}

// ingestAll ingests events in batches well under the test's batch limit.
func (r *running) ingestAll(events []*eventpb.Event) {
	r.tb.Helper()
	for i := 0; i < len(events); i += 100 {
		r.ingest(batch(events[i:min(i+100, len(events))]...))
	}
}

type eyeFilter struct {
	session, category, name string
	start, end              time.Time // zero = unbounded; end exclusive
}

// eyeReference is the ids of the events f selects, newest first, ties by id.
func eyeReference(events []*eventpb.Event, f eyeFilter) []string {
	var match []*eventpb.Event
	for _, ev := range events {
		t := time.Unix(0, ev.GetClientTime())
		if f.session != "" && ev.GetSession() != f.session || f.category != "" && ev.GetCategory() != f.category ||
			f.name != "" && ev.GetName() != f.name || !f.start.IsZero() && t.Before(f.start) || !f.end.IsZero() && !t.Before(f.end) {
			continue
		}
		match = append(match, ev)
	}
	slices.SortFunc(match, func(a, b *eventpb.Event) int {
		return cmp.Or(cmp.Compare(b.GetClientTime(), a.GetClientTime()), cmp.Compare(a.GetId(), b.GetId()))
	})
	ids := make([]string, len(match))
	for i, ev := range match {
		ids[i] = ev.GetId()
	}
	return ids
}

// pageIDs pages through params by page number with the given page size,
// checking count and the links of every page, and returns the ids.
func (r *running) pageIDs(params url.Values, size int) []string {
	r.tb.Helper()
	params.Set("page_size", strconv.Itoa(size))
	var ids []string
	u := r.base + "/events?" + params.Encode()
	count := -1
	for page := 1; ; page++ {
		if page > 1000 {
			r.tb.Fatal("paging does not end")
		}
		resp, p := r.eventsAt(u)
		resp.wantStatus(r.tb, http.StatusOK)
		if count >= 0 && p.Count != count {
			r.tb.Fatalf("page %d: count %d, page 1 said %d", page, p.Count, count)
		}
		count = p.Count
		// The previous link of page N is page N-1 (page 1 without a page).
		want := url.Values{}
		for k, v := range params {
			want[k] = v
		}
		if page > 2 {
			want.Set("page", strconv.Itoa(page-1))
		}
		if wantPrev := r.base + "/events?" + want.Encode(); page == 1 && p.Previous != nil ||
			page > 1 && (p.Previous == nil || *p.Previous != wantPrev) {
			r.tb.Fatalf("page %d: previous %v, want %q", page, p.Previous, wantPrev)
		}
		ids = append(ids, p.ids()...)
		if p.Next == nil {
			if len(ids) != count {
				r.tb.Fatalf("paged through %d events, count %d", len(ids), count)
			}
			return ids
		}
		want.Set("page", strconv.Itoa(page+1))
		if *p.Next != r.base+"/events?"+want.Encode() {
			r.tb.Fatalf("page %d: next %q, want page %d with the same parameters", page, *p.Next, page+1)
		}
		if len(p.Results) != size {
			r.tb.Fatalf("page %d has %d events and a next link", page, len(p.Results))
		}
		u = *p.Next
	}
}

func TestEventsFilters(t *testing.T) {
	r := start(t, testConfig(t))
	events := eyeEvents(300)
	r.ingestAll(events)
	at := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	for _, tc := range []struct {
		name   string
		params url.Values
		want   eyeFilter
	}{
		{"none", url.Values{}, eyeFilter{}},
		{"session", url.Values{"session_id": {"sess2"}}, eyeFilter{session: "sess2"}},
		{"category", url.Values{"category": {"form_interaction"}}, eyeFilter{category: "form_interaction"}},
		{"name", url.Values{"name": {"cta_click"}}, eyeFilter{name: "cta_click"}},
		{"category and name", url.Values{"category": {"page_interaction"}, "name": {"page_view"}},
			eyeFilter{category: "page_interaction", name: "page_view"}},
		{"session and category", url.Values{"session_id": {"sess1"}, "category": {"page_interaction"}},
			eyeFilter{session: "sess1", category: "page_interaction"}},
		{"empty values are no filter", url.Values{"session_id": {""}, "category": {""}, "start_time": {""}}, eyeFilter{}},
		{"dates as in The Eye's README", url.Values{"start_time": {"2022-04-11"}, "end_time": {"2022-04-11"}},
			eyeFilter{start: at("2022-04-11T00:00:00Z"), end: at("2022-04-12T00:00:00Z")}},
		{"all four", url.Values{"session_id": {"sess1"}, "category": {"page_interaction"}, "start_time": {"2022-04-11"}, "end_time": {"2022-04-12"}},
			eyeFilter{session: "sess1", category: "page_interaction", start: at("2022-04-11T00:00:00Z"), end: at("2022-04-13T00:00:00Z")}},
		{"ISO start, inclusive", url.Values{"start_time": {"2022-04-11T01:08:01.407119"}},
			eyeFilter{start: at("2022-04-11T01:08:01.407119Z")}},
		{"space start, inclusive", url.Values{"start_time": {"2022-04-11 01:08:01.407119"}},
			eyeFilter{start: at("2022-04-11T01:08:01.407119Z")}},
		{"ISO end, exclusive", url.Values{"end_time": {"2022-04-11T01:08:01.407119"}},
			eyeFilter{end: at("2022-04-11T01:08:01.407119Z")}},
		{"space end without fraction", url.Values{"end_time": {"2022-04-11 01:08:02"}},
			eyeFilter{end: at("2022-04-11T01:08:02Z")}},
		{"end at midnight with a time excludes midnight", url.Values{"end_time": {"2022-04-12 00:00:00"}},
			eyeFilter{end: at("2022-04-12T00:00:00Z")}},
		{"end as a date includes the whole day", url.Values{"end_time": {"2022-04-11"}},
			eyeFilter{end: at("2022-04-12T00:00:00Z")}},
		{"offset", url.Values{"start_time": {"2022-04-11T03:08:01.407119+02:00"}, "end_time": {"2022-04-11T12:00:00Z"}},
			eyeFilter{start: at("2022-04-11T01:08:01.407119Z"), end: at("2022-04-11T12:00:00Z")}},
		{"name in a range", url.Values{"name": {"submit"}, "start_time": {"2022-04-10 12:00"}, "end_time": {"2022-04-12T06:00"}},
			eyeFilter{name: "submit", start: at("2022-04-10T12:00:00Z"), end: at("2022-04-12T06:00:00Z")}},
		{"nothing", url.Values{"session_id": {"nobody"}}, eyeFilter{session: "nobody"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := eyeReference(events, tc.want)
			if len(want) == 0 && tc.want.session != "nobody" {
				t.Fatal("the test selects nothing")
			}
			if got := r.pageIDs(clone(tc.params), 7); !slices.Equal(got, want) {
				t.Errorf("by page: %d ids %.4q…, want %d %.4q…", len(got), got, len(want), want)
			}
			if got := r.cursorIDs(clone(tc.params)); !slices.Equal(got, want) {
				t.Errorf("by cursor: %d ids, want %d", len(got), len(want))
			}
		})
	}
}

func clone(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// TestEventsPages checks that page N is the N-th slice of the whole ordered
// list, also when jumped to directly, and the answer past the last page.
func TestEventsPages(t *testing.T) {
	r := start(t, testConfig(t))
	events := eyeEvents(400)
	r.ingestAll(events)
	for _, params := range []url.Values{
		{},
		{"category": {"page_interaction"}},
		{"session_id": {"sess3"}},
		{"session_id": {"sess0"}, "name": {"submit"}},
		{"category": {"form_interaction"}, "name": {"submit"}, "start_time": {"2022-04-10 06:30:00"}, "end_time": {"2022-04-12"}},
	} {
		f := eyeFilter{session: params.Get("session_id"), category: params.Get("category"), name: params.Get("name")}
		if s := params.Get("start_time"); s != "" {
			f.start = time.Date(2022, 4, 10, 6, 30, 0, 0, time.UTC)
			f.end = time.Date(2022, 4, 13, 0, 0, 0, 0, time.UTC)
		}
		all := eyeReference(events, f)
		for _, size := range []int{1, 9, 50} {
			pages := (len(all) + size - 1) / size
			for _, page := range []int{1, 2, pages / 2, pages - 1, pages} {
				if page < 1 || page > pages {
					continue
				}
				p := clone(params)
				p.Set("page", strconv.Itoa(page))
				p.Set("page_size", strconv.Itoa(size))
				resp, got := r.events(p)
				resp.wantStatus(t, http.StatusOK)
				want := all[(page-1)*size : min(page*size, len(all))]
				if !slices.Equal(got.ids(), want) || got.Count != len(all) {
					t.Errorf("%v page %d of %d: %q count %d, want %q count %d", params, page, size, got.ids(), got.Count, want, len(all))
				}
				if (got.Next == nil) != (page == pages) || (got.Previous == nil) != (page == 1) {
					t.Errorf("%v page %d of %d (of %d pages): next %v, previous %v", params, page, size, pages, got.Next, got.Previous)
				}
			}
			p := clone(params)
			p.Set("page", strconv.Itoa(pages+1))
			p.Set("page_size", strconv.Itoa(size))
			if resp, _ := r.events(p); resp.status != http.StatusNotFound {
				t.Errorf("%v page %d of %d, past the end: %d", params, pages+1, size, resp.status)
			}
		}
	}
	// The limit of earlier clients is page_size.
	resp, p := r.events(url.Values{"limit": {"3"}, "page": {"2"}})
	resp.wantStatus(t, http.StatusOK)
	if all := eyeReference(events, eyeFilter{}); !slices.Equal(p.ids(), all[3:6]) {
		t.Errorf("limit=3&page=2: %q, want %q", p.ids(), all[3:6])
	}
}

// TestEventsCursor pages by cursor while events arrive: every event present
// at the start is visited exactly once, in order.
func TestEventsCursor(t *testing.T) {
	r := start(t, testConfig(t))
	events := eyeEvents(250)
	r.ingestAll(events)
	want := eyeReference(events, eyeFilter{category: "page_interaction"})
	params := url.Values{"category": {"page_interaction"}, "page_size": {"11"}, "cursor": {""}}
	u := r.base + "/events?" + params.Encode()
	var got []string
	for i := 0; ; i++ {
		resp, p := r.eventsAt(u)
		resp.wantStatus(t, http.StatusOK)
		if p.Count < len(want) || p.Previous != nil {
			t.Fatalf("page %d: count %d (want at least %d), previous %v", i, p.Count, len(want), p.Previous)
		}
		got = append(got, p.ids()...)
		if i == 2 { // newer than everything: not on later pages
			r.ingest(batch(eyeEvent("late", "sess9", "page_interaction", "page_view", eyeStart.Add(100*time.Hour))))
		}
		if p.Next == nil {
			break
		}
		u = *p.Next
	}
	if !slices.Equal(got, want) {
		t.Errorf("by cursor: %d ids, want %d", len(got), len(want))
	}
}
