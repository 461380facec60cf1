package edge_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/edge/internal/forward"
	"github.com/edgetrack/edgetrack/edge/internal/spool"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// TestPoisonedEventIsDeadLettered forwards a batch in which the real
// aggregator refuses one event (a NUL byte in its session can never be
// stored): the others are stored, and the poisoned one waits in the edge's
// dead-letter area with the aggregator's reason.
func TestPoisonedEventIsDeadLettered(t *testing.T) {
	dir := t.TempDir()
	agg := startAggregator(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	sp, err := spool.Open(spool.Options{Dir: filepath.Join(dir, "spool"), MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	now := time.Now().UnixNano()
	var values [][]byte
	for _, session := range []string{"good-1", "bad\x00session", "good-2"} {
		b, _ := proto.Marshal(&eventpb.Event{Id: "poison-test:" + strings.ReplaceAll(session, "\x00", "0"), Session: session, Name: "n", ReceivedAt: now, Source: eventpb.Source_SOURCE_EYE})
		values = append(values, b)
	}
	if _, err := sp.Append(values...); err != nil {
		t.Fatal(err)
	}

	fwd, err := forward.New(forward.Options{Spool: sp, URL: "http://" + agg.Addr(), Token: "edge-token", EdgeID: "poison-edge", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	fctx, stop := context.WithCancel(ctx)
	fdone := make(chan struct{})
	go func() { fwd.Run(fctx); close(fdone) }()
	if err := fwd.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
	<-fdone

	dls, err := sp.DeadLetters(spool.Position{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	var ev eventpb.Event
	if len(dls) != 1 || proto.Unmarshal(dls[0].Value, &ev) != nil || ev.Session != "bad\x00session" ||
		!strings.Contains(dls[0].Reason, "aggregator rejected event") || !strings.Contains(strings.ToLower(dls[0].Reason), "nul") {
		t.Fatalf("dead letters %+v, want the poisoned event with the aggregator's reason", dls)
	}
	if st := sp.Stats(); st.Depth != 0 || st.DeadLetters != 1 {
		t.Fatalf("spool %+v, want empty queue and one dead letter", st)
	}
	// The two good events are stored.
	for _, id := range []string{"poison-test:good-1", "poison-test:good-2"} {
		code, _ := queryEvent(t, "http://"+agg.Addr(), id)
		if code != 200 {
			t.Errorf("%s: %d, want stored", id, code)
		}
	}
	if code, _ := queryEvent(t, "http://"+agg.Addr(), "poison-test:bad0session"); code != 404 {
		t.Errorf("poisoned event: %d, want 404", code)
	}
}

func queryEvent(t *testing.T, base, id string) (int, string) {
	resp, body := do(t, "GET", base+"/events/"+id, "", map[string]string{"Authorization": "Bearer query-token"})
	return resp.StatusCode, body
}
