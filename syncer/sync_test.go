package syncer

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestProgress: OnProgress hears of every batch, its Done never goes back,
// and a --once run ends with everything counted and Done at 1.
func TestProgress(t *testing.T) {
	agg := startAggregator(t, t.TempDir())
	agg.ingest(testEvents(0, 95)...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer srv.Close()
	var seen []Progress
	o := Options{From: agg.url, Token: queryToken, Target: srv.URL, StateDir: t.TempDir(), Once: true, Batch: 10, Logger: quiet,
		OnProgress: func(p Progress) { seen = append(seen, p) }}
	syncWith(t, o, nil)
	if len(seen) != 11 {
		t.Fatalf("%d progress calls, want 10 batches and the end", len(seen))
	}
	for i, p := range seen[:10] {
		if p.Final || p.Events != min(95, (i+1)*10) || p.Lag <= 0 || (i > 0 && p.Done < seen[i-1].Done) {
			t.Errorf("call %d: %+v", i, p)
		}
	}
	if last := seen[10]; !last.Final || last.Events != 95 || last.Done != 1 {
		t.Errorf("the last call: %+v, want final, 95 events, done 1", last)
	}
}
