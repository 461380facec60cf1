package spool

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/prometheus/client_golang/prometheus"
)

// faultySpool opens a spool on a MemFS whose every operation fails while
// the returned toggle is on.
func faultySpool(t *testing.T, reg *prometheus.Registry) (*Spool, *errorfs.Toggle) {
	t.Helper()
	tg := &errorfs.Toggle{Injector: errorfs.ErrInjected}
	opts := Options{FS: errorfs.Wrap(vfs.NewMem(), tg), ReopenAfter: time.Millisecond}
	if reg != nil {
		opts.Registerer = reg
	}
	s := openSpool(t, opts)
	return s, tg
}

// waitReady waits until the spool is ready again: the reopen goroutine
// runs on its own, and the test only waits for its outcome.
func waitReady(t *testing.T, s *Spool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the spool did not recover: %v", s.Ready())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestReopenAfterFailedWrite: Pebble keeps a failed WAL write's error for
// every later commit, so the spool reopens it. Afterwards appends work, in a
// new epoch, what was acked before is still there, and the counters match
// what is stored.
func TestReopenAfterFailedWrite(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, tg := faultySpool(t, reg)
	mustAppend(t, s, "a1", "a2")
	before := s.Epoch()

	tg.On()
	if _, err := s.Append([]byte("lost")); err == nil {
		t.Fatal("an append on a failing disk succeeded")
	}
	if err := s.Ready(); err == nil {
		t.Fatal("Ready is nil right after a failed write")
	}
	tg.Off()
	waitReady(t, s)

	pos := mustAppend(t, s, "c")
	if pos.Epoch <= before || s.Epoch() != pos.Epoch {
		t.Errorf("append after the reopen at %v, epoch before %d, Epoch() %d: want a new epoch", pos, before, s.Epoch())
	}
	es := readAll(t, s, Position{})
	got := values(es)
	if len(got) != 3 || got[0] != "a1" || got[1] != "a2" || got[2] != "c" {
		t.Errorf("stored after the reopen: %q, want a1 a2 c (the failed write was never acknowledged)", got)
	}
	if st := s.Stats(); st.Depth != int64(len(es)) || st.Bytes != 5 {
		t.Errorf("stats %+v, want depth %d and 5 bytes", st, len(es))
	}
	if n := gather(t, reg)[`edgetrack_spool_reopens_total{result=ok}`]; n != 1 {
		t.Errorf("reopens ok = %v, want 1", n)
	}
	if err := s.Ack(es[len(es)-1].Pos); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Depth != 0 || st.Bytes != 0 {
		t.Errorf("after acking everything: %+v", st)
	}
}

// TestReopenWhileTheDiskStaysBroken: while the disk keeps failing, reopen
// attempts fail, every operation returns an error (none panics on a closed
// Pebble), and once the disk works the spool comes back with its data.
func TestReopenWhileTheDiskStaysBroken(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, tg := faultySpool(t, reg)
	mustAppend(t, s, "kept")
	tg.On()
	if _, err := s.Append([]byte("x")); err == nil {
		t.Fatal("an append on a failing disk succeeded")
	}
	deadline := time.Now().Add(30 * time.Second)
	for gather(t, reg)[`edgetrack_spool_reopens_total{result=failed}`] < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no failed reopen attempts")
		}
		time.Sleep(time.Millisecond)
	}
	calls := map[string]error{}
	_, calls["Append"] = s.Append([]byte("y"))
	_, calls["Read"] = s.Read(Position{}, 10, 0)
	calls["Ack"] = s.Ack(Position{Epoch: 1, Seq: 1})
	_, calls["DeadLetters"] = s.DeadLetters(Position{}, 10)
	calls["Ready"] = s.Ready()
	calls["Sync"] = s.Sync()
	for name, err := range calls {
		if err == nil || errors.Is(err, ErrClosed) {
			t.Errorf("%s on a spool whose reopen fails: %v, want the disk's error", name, err)
		}
	}
	_ = s.Stats()
	_ = s.Tail()

	tg.Off()
	waitReady(t, s)
	mustAppend(t, s, "after")
	if got := values(readAll(t, s, Position{})); len(got) != 2 || got[0] != "kept" || got[1] != "after" {
		t.Errorf("stored: %q, want kept, after", got)
	}
}

// TestCloseWhileReopening: Close ends the reopen goroutine, also while the
// disk fails and Pebble is not open.
func TestCloseWhileReopening(t *testing.T) {
	s, tg := faultySpool(t, nil)
	tg.On()
	if _, err := s.Append([]byte("x")); err == nil {
		t.Fatal("an append on a failing disk succeeded")
	}
	if err := s.Close(); err != nil && !errors.Is(err, errorfs.ErrInjected) {
		t.Fatalf("close: %v", err)
	}
	if _, err := s.Append([]byte("y")); !errors.Is(err, ErrClosed) {
		t.Errorf("append after close: %v, want ErrClosed", err)
	}
}

// TestHammerFailingDisk: appenders run while the disk fails and recovers
// several times. Every append that returned nil is stored exactly once, and
// the counters agree with what is stored.
func TestHammerFailingDisk(t *testing.T) {
	s, tg := faultySpool(t, nil)
	const writers = 4
	var (
		stop  atomic.Bool
		wg    sync.WaitGroup
		acked sync.Map
		n     atomic.Int64
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				v := fmt.Sprintf("w%d-%d", w, i)
				if s.Ready() != nil {
					time.Sleep(100 * time.Microsecond)
					continue
				}
				if _, err := s.Append([]byte(v)); err == nil {
					acked.Store(v, true)
					n.Add(1)
				}
			}
		}()
	}
	for round := range 5 {
		for start := n.Load(); n.Load() < start+200; {
			time.Sleep(100 * time.Microsecond)
		}
		tg.On()
		time.Sleep(time.Millisecond)
		tg.Off()
		waitReady(t, s)
		_ = round
	}
	stop.Store(true)
	wg.Wait()

	seen := map[string]int{}
	es := readAll(t, s, Position{})
	for _, e := range es {
		seen[string(e.Value)]++
	}
	acked.Range(func(k, _ any) bool {
		if seen[k.(string)] != 1 {
			t.Errorf("acked %s is stored %d times", k, seen[k.(string)])
		}
		return true
	})
	for v, c := range seen {
		if c != 1 {
			t.Errorf("%s stored %d times", v, c)
		}
	}
	var bytes int64
	for _, e := range es {
		bytes += int64(len(e.Value))
	}
	if st := s.Stats(); st.Depth != int64(len(es)) || st.Bytes != bytes {
		t.Errorf("stats %+v, stored %d entries of %d bytes", st, len(es), bytes)
	}
	if n.Load() == 0 {
		t.Fatal("nothing was appended")
	}
}
