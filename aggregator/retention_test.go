package aggregator_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgetrack/edgetrack/aggregator"
	"github.com/edgetrack/edgetrack/internal/config"
	"github.com/edgetrack/edgetrack/internal/syncbuf"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// TestRetentionPass runs an aggregator that keeps form_interaction events
// 30 days and everything else forever: after a pass the old form events are
// gone from /events, /stats and /v1/export, every other event is there as
// before, the metric counts the removed ones and the log says what each
// pass did. It runs on each store backend.
func TestRetentionPass(t *testing.T) { eachBackend(t, testRetentionPass) }

func testRetentionPass(t *testing.T, cfg config.Aggregator) {
	cfg.Retention.Categories = config.CategoryDurations{"form_interaction": config.Duration(720 * time.Hour)}
	logs := &syncbuf.Buffer{}
	reg := prometheus.NewRegistry()
	agg, err := aggregator.New(aggregator.Options{Config: cfg, Registerer: reg, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{tb: t, agg: agg, cancel: cancel, done: make(chan error, 1), base: "http://" + agg.Addr(), admin: "http://" + agg.AdminAddr()}
	go func() { r.done <- agg.Run(ctx) }()
	t.Cleanup(func() { r.stop() })

	now := time.Now()
	events := append(eyeEvents(300), // 2022: the form events among them are past 30 days
		eyeEvent("recent-form", "sess9", "form_interaction", "submit", now.Add(-time.Hour)),
		eyeEvent("recent-view", "sess9", "page_interaction", "page_view", now.Add(-time.Hour)))
	r.ingestAll(events)
	var kept []*eventpb.Event
	old := 0
	for _, ev := range events {
		if ev.GetCategory() == "form_interaction" && ev.GetId() != "recent-form" {
			old++
		} else {
			kept = append(kept, ev)
		}
	}
	if old == 0 {
		t.Fatal("no old form events: the test proves nothing")
	}
	if _, err := agg.ExpireNow(context.Background()); err != nil { // besides the one at start
		t.Fatal(err)
	}
	if n, err := agg.ExpireNow(context.Background()); err != nil || n != 0 {
		t.Fatalf("a second pass removed %d, %v; want 0", n, err)
	}

	if got := r.pageIDs(url.Values{"category": {"form_interaction"}}, 50); !slices.Equal(got, []string{"recent-form"}) {
		t.Fatalf("form events after the pass: %v, want [recent-form]", got)
	}
	want := eyeReference(kept, eyeFilter{})
	if got := r.pageIDs(url.Values{}, 50); !slices.Equal(got, want) {
		t.Fatalf("events after the pass: %d, want the %d kept", len(got), len(want))
	}
	for _, bucket := range []struct {
		name string
		d    time.Duration
	}{{"minute", time.Minute}, {"hour", time.Hour}, {"day", 24 * time.Hour}} {
		params := url.Values{"bucket": {bucket.name}, "group_by": {"category,name"}, "start_time": {"2022-04-01"}, "end_time": {"2022-05-01"}}
		resp, st := r.stats(params)
		resp.wantStatus(t, http.StatusOK)
		want := bruteStats(kept, bucket.d, true, true, "", "", time.Date(2022, 4, 1, 0, 0, 0, 0, time.UTC), time.Date(2022, 5, 1, 0, 0, 0, 0, time.UTC))
		if got := st.flat(); !reflect.DeepEqual(got, want) || len(got) == 0 {
			t.Fatalf("stats by %s after the pass: %d cells, want %d", bucket.name, len(got), len(want))
		}
	}
	var exported []string
	after := ""
	for {
		resp, a := r.export(t, url.Values{"after": {after}, "limit": {"50"}})
		resp.wantStatus(t, http.StatusOK)
		for _, ev := range a.Events {
			exported = append(exported, ev.ID)
		}
		if len(a.Events) == 0 {
			break
		}
		after = a.Next
	}
	var keptIDs []string
	for _, ev := range kept {
		keptIDs = append(keptIDs, ev.GetId())
	}
	if !slices.Equal(exported, keptIDs) {
		t.Fatalf("export feed: %d events, want the %d kept in the order stored", len(exported), len(keptIDs))
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	removed := -1.0
	for _, mf := range mfs {
		if mf.GetName() == "edgetrack_retention_removed_total" {
			removed = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if removed != float64(old) {
		t.Fatalf("edgetrack_retention_removed_total = %v, want %d", removed, old)
	}
	if l := logs.String(); !strings.Contains(l, "msg=\"retention pass\"") || !strings.Contains(l, "category.form_interaction=") || !strings.Contains(l, "msg=\"retention on\"") {
		t.Fatalf("the log does not tell of the passes:\n%s", l)
	}
}

// TestExpireNowOff: without retention, a pass is an error that says so.
func TestExpireNowOff(t *testing.T) {
	r := start(t, testConfig(t))
	if _, err := r.agg.ExpireNow(context.Background()); err == nil || !strings.Contains(err.Error(), "retention is off") {
		t.Fatalf("ExpireNow without retention: %v", err)
	}
}
