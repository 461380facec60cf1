package query

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
)

// EventsParams are the parameters GET /events reads.
var EventsParams = []string{
	"session_id", "category", "name", "start_time", "end_time",
	"page", "page_size", "limit", "cursor",
}

// DefaultPageSize is the page size when a request gives none.
const DefaultPageSize = 10

// Events is a parsed GET /events request. It pages one of two ways:
//
//   - by number (page, as The Eye and Django REST framework do): Query has
//     the Offset of the page, and the links of the answer name page numbers;
//   - by cursor, when the request has a cursor parameter (an empty one starts
//     at the first page): Query has the Cursor, and the next link carries
//     the store's cursor for the next page. There is no previous link.
//
// Skipping to page N does not read the events before it (see store.Query
// Offset), but a cursor is cheaper still for reading everything in order,
// and it does not shift when new events arrive.
type Events struct {
	Query  store.Query // filters, time range, Limit (the page size), Offset or Cursor
	Page   int         // 1-based page number; 0 when paging by cursor
	Cursor bool        // paging by cursor
}

// ParseEvents turns the parameters of GET /events into a request. Filters:
// session_id, category, name (exact, empty = any), start_time (inclusive),
// end_time (exclusive; a date alone includes that day). page_size (alias
// limit) is 1 to maxPageSize, default DefaultPageSize or maxPageSize when
// smaller; page is 1 or more, default 1; cursor cannot be combined with page.
// Any other parameter, or one given twice, is an error, and so is a
// start_time after end_time. Errors are *ParamError.
func ParseEvents(values url.Values, maxPageSize int) (Events, error) {
	return parseEvents(newParams(values, EventsParams), maxPageSize)
}

func parseEvents(p *params, maxPageSize int) (Events, error) {
	if err := p.check(); err != nil {
		return Events{}, err
	}
	maxPageSize = min(maxPageSize, store.MaxLimit) // the store caps Limit there
	start, end, err := p.timeRange()
	if err != nil {
		return Events{}, err
	}
	size, err := p.positive("page_size", min(DefaultPageSize, maxPageSize), maxPageSize)
	if err != nil {
		return Events{}, err
	}
	if p.get("limit") != "" {
		limit, err := p.positive("limit", size, maxPageSize)
		if err != nil {
			return Events{}, err
		}
		if p.get("page_size") != "" && limit != size {
			return Events{}, &ParamError{"limit", fmt.Sprintf("is another name of page_size; got both, %d and %d", limit, size)}
		}
		size = limit
	}
	page, err := p.positive("page", 1, maxInt)
	if err != nil {
		return Events{}, err
	}
	req := Events{
		Query: store.Query{
			Session:  p.get("session_id"),
			Category: p.get("category"),
			Name:     p.get("name"),
			Start:    start,
			End:      end,
			Limit:    size,
		},
	}
	if p.has("cursor") {
		if p.get("page") != "" {
			return Events{}, &ParamError{"cursor", "cannot be combined with page: follow the next links of one or the other"}
		}
		req.Cursor = true
		req.Query.Cursor = p.get("cursor")
		return req, nil
	}
	if page-1 > (maxInt-size)/size {
		return Events{}, &ParamError{"page", fmt.Sprintf("%d is past the last page", page)}
	}
	req.Page = page
	req.Query.Offset = (page - 1) * size
	return req, nil
}

// Page is the JSON answer to GET /events, shaped like a page of Django REST
// framework: count is the number of all matching events; next and previous
// are absolute URLs of the neighbouring pages, or null at the ends (previous
// is always null when paging by cursor).
type Page struct {
	Count    int     `json:"count"`
	Next     *string `json:"next"`
	Previous *string `json:"previous"`
	Results  []Event `json:"results"` // never null
}

// NewPage returns the answer to req: count matching events in all, res the
// page, self the absolute URL of the request (its parameters are kept in the
// links).
func NewPage(req Events, self *url.URL, count int, res store.Result) Page {
	p := Page{Count: count, Results: make([]Event, len(res.Events))}
	for i, ev := range res.Events {
		p.Results[i] = NewEvent(ev)
	}
	if req.Cursor {
		if res.Next != "" {
			p.Next = link(self, "cursor", res.Next)
		}
		return p
	}
	if res.Next != "" {
		p.Next = link(self, "page", strconv.Itoa(req.Page+1))
	}
	switch {
	case req.Page == 2: // page 1 is the URL without a page, as in Django REST framework
		p.Previous = link(self, "page", "")
	case req.Page > 2:
		p.Previous = link(self, "page", strconv.Itoa(req.Page-1))
	}
	return p
}

// link returns self with parameter name set to value, or removed when value
// is "".
func link(self *url.URL, name, value string) *string {
	u := *self
	q := u.Query()
	if value == "" {
		q.Del(name)
	} else {
		q.Set(name, value)
	}
	u.RawQuery = q.Encode()
	s := u.String()
	return &s
}
