package client

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// An event TrackEvent returned nil for survives a crash: the clone of a
// crashable in-memory file system keeps only what was synced, as a machine
// that lost power would. The original tracker is abandoned, never closed
// before the clone is taken.
func TestEventsSurviveCrash(t *testing.T) {
	for _, unsynced := range []int{0, 50} {
		t.Run(fmt.Sprintf("unsynced=%d%%", unsynced), func(t *testing.T) {
			c := newCollector(t, testSecret)
			fs := vfs.NewCrashableMem()
			cfg := testConfig(t, c.URL())
			cfg.fs, cfg.Dir = fs, "db"
			tr := newTracker(t, cfg)
			trackN(t, tr, 4)
			// Delivered events stay deleted after the crash too.
			if err := tr.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			trackN(t, tr, 3) // nrs 5..7, unsent at the crash

			crashed := fs.CrashClone(vfs.CrashCloneCfg{
				UnsyncedDataPercent: unsynced,
				RNG:                 rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
			})
			cfg.fs = crashed
			after := newTracker(t, cfg)
			wantPending(t, after, 3)
			trackN(t, after, 1) // nr 8: numbering survived too
			if err := after.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			wantAcceptedOnce(t, c, after.Session(), 8)
		})
	}
}

const crashChildEnv = "EDGETRACK_CLIENT_CRASH_DIR"

// The same with a real process and a real disk: a child process tracks
// events and kills itself without closing anything; a new tracker on its
// directory sends them.
func TestEventsSurviveProcessKill(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(t, dir)
		return
	}
	if testing.Short() {
		t.Skip("starts a subprocess")
	}
	dir := t.TempDir()
	runKilledChild(t, dir)

	c := newCollector(t, testSecret)
	cfg := testConfig(t, c.URL())
	cfg.Dir = dir
	tr := newTracker(t, cfg)
	wantPending(t, tr, 5)
	trackN(t, tr, 1)
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantAcceptedOnce(t, c, tr.Session(), 6)
}

// runKilledChild runs crashChild in a subprocess on dir: it tracks ev-1..ev-5
// with baseConfig's attributes and kills itself without closing anything.
func runKilledChild(t *testing.T, dir string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestEventsSurviveProcessKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if !strings.Contains(string(out), "tracked 5") {
		t.Fatalf("child did not track its events: %v\n%s", err, out)
	}
	if err == nil {
		t.Fatalf("child exited cleanly, want it killed:\n%s", out)
	}
}

// crashChild runs in the child process: track, report, die.
func crashChild(t *testing.T, dir string) {
	cfg := baseConfig("http://127.0.0.1:1") // never reached: no trigger fires
	cfg.Dir = dir
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	trackN(t, tr, 5)
	os.Stdout.WriteString("tracked 5\n")
	p, err := os.FindProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	p.Kill()
	select {} // wait for the signal
}
