package query

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/edgetrack/edgetrack/aggregator/internal/store"
)

// ExportParams are the parameters GET /v1/export reads.
var ExportParams = []string{
	"after", "limit", "wait",
	"session_id", "category", "name", "name_prefix", "start_time", "end_time",
}

// Export read sizes and waits.
const (
	DefaultExportLimit = 1000
	MaxExportWait      = 60 * time.Second
)

// ParseExport turns the parameters of GET /v1/export into a feed read:
// after (a cursor from a previous answer's next; absent or empty = from the
// first event stored), limit (1 to maxLimit, default 1000 or maxLimit when
// smaller), wait (a duration such as 30s, at most 60s: how long to wait when
// nothing new matches), the filters of GET /events, and name_prefix
// (comma-separated prefixes, any of which the name starts with). Unknown or
// repeated parameters, and a start_time after end_time, are errors, as for
// GET /events. Errors are *ParamError.
func ParseExport(values url.Values, maxLimit int) (store.ExportQuery, error) {
	return parseExport(newParams(values, ExportParams), maxLimit)
}

func parseExport(p *params, maxLimit int) (store.ExportQuery, error) {
	if err := p.check(); err != nil {
		return store.ExportQuery{}, err
	}
	maxLimit = min(maxLimit, store.MaxLimit)
	start, end, err := p.timeRange()
	if err != nil {
		return store.ExportQuery{}, err
	}
	limit, err := p.positive("limit", min(DefaultExportLimit, maxLimit), maxLimit)
	if err != nil {
		return store.ExportQuery{}, err
	}
	var wait time.Duration
	if s := p.get("wait"); s != "" {
		if wait, err = time.ParseDuration(s); err != nil || wait < 0 {
			return store.ExportQuery{}, &ParamError{"wait", fmt.Sprintf("%q is not a duration such as 30s", s)}
		}
		if wait > MaxExportWait {
			return store.ExportQuery{}, &ParamError{"wait", fmt.Sprintf("%s is longer than the most, %s", wait, MaxExportWait)}
		}
	}
	var prefixes []string
	if s := p.get("name_prefix"); s != "" {
		for _, pre := range strings.Split(s, ",") {
			if pre = strings.TrimSpace(pre); pre != "" {
				prefixes = append(prefixes, pre)
			}
		}
	}
	return store.ExportQuery{
		After:        p.get("after"),
		Limit:        limit,
		Wait:         wait,
		Session:      p.get("session_id"),
		Category:     p.get("category"),
		Name:         p.get("name"),
		NamePrefixes: prefixes,
		Start:        start,
		End:          end,
	}, nil
}

// Export is the JSON answer to GET /v1/export: the events in the order they
// were stored, and the cursor to pass as after to read on. next is always
// set; an answer without events means nothing new matched (within wait).
type Export struct {
	Events []Event `json:"events"` // never null
	Next   string  `json:"next"`
}

// NewExport returns the answer for res.
func NewExport(res store.ExportResult) Export {
	out := Export{Events: make([]Event, len(res.Events)), Next: res.Next}
	for i, ev := range res.Events {
		out.Events[i] = NewEvent(ev)
	}
	return out
}
