package main

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgetrack/edgetrack/internal/aggtest"
	"github.com/edgetrack/edgetrack/internal/dbtest"
	"github.com/edgetrack/edgetrack/proto/eventpb"
)

// TestSyncSurvivesKill9 runs `edgetrack sync` into PostgreSQL and into
// MariaDB as a real process, kills it with SIGKILL at random moments while
// events keep being stored, restarts the aggregator under a running sync
// every other round, restarts the sync, and finishes with --once: every
// stored event is in the table exactly once.
func TestSyncSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	t.Run("postgres", func(t *testing.T) {
		syncSurvivesKill9(t, dbtest.Postgres(t), "MIN((data->>'i')::int), MAX((data->>'i')::int)")
	})
	t.Run("mariadb", func(t *testing.T) {
		syncSurvivesKill9(t, dbtest.MariaDB(t), "MIN(CAST(JSON_VALUE(data, '$.i') AS SIGNED)), MAX(CAST(JSON_VALUE(data, '$.i') AS SIGNED))")
	})
}

// syncSurvivesKill9 is TestSyncSurvivesKill9 on one database; minMax reads
// the lowest and highest data.i of the events table in its dialect.
func syncSurvivesKill9(t *testing.T, db dbtest.Database, minMax string) {
	agg := aggtest.Start(t, t.TempDir())
	dir := t.TempDir()
	total := 0
	ingest := func(n int) {
		evs := make([]*eventpb.Event, n)
		for i := range evs {
			evs[i] = &eventpb.Event{Id: fmt.Sprintf("k9-%d", total), Session: "s", Category: "c", Name: "n",
				ReceivedAt: time.Now().UnixNano(), Data: []byte(`{"i":` + fmt.Sprint(total) + `}`)}
			total++
		}
		agg.Ingest(evs...)
	}
	for i := 0; i < 20; i++ {
		ingest(200)
	}
	args := []string{"sync", "--from", agg.URL, "--token", aggtest.QueryToken, "--url", db.URL, "--batch", "37", "--log-dir", dir, "--wait", "1s"}
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 6; round++ {
		p := start(t, dir, nil, args...)
		time.Sleep(time.Duration(r.IntN(150)) * time.Millisecond) // where the kill lands; any point is correct
		ingest(100)
		if round%2 == 1 {
			agg.Restart() // the sync's reads fail meanwhile and are retried
			ingest(50)
		}
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
	p := start(t, dir, nil, append(args, "--once")...)
	select {
	case <-p.done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("sync --once did not finish:\n%s", p.out)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 || !strings.Contains(p.out.String(), "synced ") {
		t.Fatalf("sync --once: exit %d:\n%s", code, p.out)
	}
	var rows, distinct, lo, hi int
	if err := db.DB.QueryRow("SELECT COUNT(*), COUNT(DISTINCT event_id), "+minMax+" FROM events").Scan(&rows, &distinct, &lo, &hi); err != nil {
		t.Fatal(err)
	}
	if rows != total || distinct != total || lo != 0 || hi != total-1 {
		t.Fatalf("%d rows (%d distinct, i from %d to %d), want each of the %d stored events once", rows, distinct, lo, hi, total)
	}
}
