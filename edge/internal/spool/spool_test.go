package spool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// openSpool opens a spool in dir "spool" on opts.FS (a fresh MemFS if nil)
// and closes it when the test ends.
func openSpool(tb testing.TB, opts Options) *Spool {
	tb.Helper()
	if opts.Dir == "" {
		opts.Dir = "spool"
	}
	if opts.FS == nil {
		opts.FS = vfs.NewMem()
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger
	}
	s, err := Open(opts)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func mustAppend(tb testing.TB, s *Spool, values ...string) Position {
	tb.Helper()
	bs := make([][]byte, len(values))
	for i, v := range values {
		bs[i] = []byte(v)
	}
	pos, err := s.Append(bs...)
	if err != nil {
		tb.Fatalf("append %q: %v", values, err)
	}
	return pos
}

// readAll reads every entry after position after, across epochs.
func readAll(tb testing.TB, s *Spool, after Position) []Entry {
	tb.Helper()
	var all []Entry
	for {
		es, err := s.Read(after, 7, 0)
		if err != nil {
			tb.Fatalf("read after %s: %v", after, err)
		}
		if len(es) == 0 {
			return all
		}
		all = append(all, es...)
		after = es[len(es)-1].Pos
	}
}

func values(es []Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = string(e.Value)
	}
	return out
}

func checkStats(tb testing.TB, s *Spool, want Stats) {
	tb.Helper()
	got := s.Stats()
	want.Epoch = got.Epoch
	if got != want {
		tb.Fatalf("stats = %+v, want %+v", got, want)
	}
}

// reopen closes s and opens the spool again on the same filesystem, checking
// that the counters recounted by Open equal the ones s kept.
func reopen(tb testing.TB, s *Spool, opts Options) *Spool {
	tb.Helper()
	before := s.Stats()
	if err := s.Close(); err != nil {
		tb.Fatalf("close: %v", err)
	}
	s2 := openSpool(tb, opts)
	after := s2.Stats()
	if after.Epoch <= before.Epoch {
		tb.Fatalf("epoch after reopen = %d, want > %d", after.Epoch, before.Epoch)
	}
	before.Epoch = after.Epoch
	if after != before {
		tb.Fatalf("recounted stats %+v differ from kept %+v", after, before)
	}
	return s2
}

func TestPosition(t *testing.T) {
	less := []struct {
		p, q Position
		want bool
	}{
		{Position{}, Position{0, 1}, true},
		{Position{}, Position{}, false},
		{Position{1, 5}, Position{1, 6}, true},
		{Position{1, 6}, Position{1, 5}, false},
		{Position{1, math.MaxUint64}, Position{2, 0}, true},
		{Position{2, 0}, Position{1, math.MaxUint64}, false},
	}
	for _, c := range less {
		if got := c.p.Less(c.q); got != c.want {
			t.Errorf("%s.Less(%s) = %v, want %v", c.p, c.q, got, c.want)
		}
	}
	for _, p := range []Position{{}, {1, 2}, {math.MaxUint64, math.MaxUint64}} {
		q, err := ParsePosition(p.String())
		if err != nil || q != p {
			t.Errorf("ParsePosition(%q) = %v, %v; want %v", p.String(), q, err, p)
		}
	}
	if got := (Position{3, 14}).String(); got != "3/14" {
		t.Errorf("String = %q, want 3/14", got)
	}
	for _, bad := range []string{"", "1", "1/", "/1", "a/1", "1/-1", "1/2/3", "18446744073709551616/0"} {
		if _, err := ParsePosition(bad); err == nil {
			t.Errorf("ParsePosition(%q) succeeded", bad)
		}
	}
	if n := (Position{4, math.MaxUint64}).next(); n != (Position{5, 0}) {
		t.Errorf("next = %v", n)
	}
}

func TestAppendReadAck(t *testing.T) {
	fs := vfs.NewMem()
	s := openSpool(t, Options{FS: fs})
	e := s.Epoch()
	if p := mustAppend(t, s, "a"); p != (Position{e, 1}) {
		t.Fatalf("first position = %s", p)
	}
	if p := mustAppend(t, s, "b", "c", "d"); p != (Position{e, 2}) {
		t.Fatalf("batch position = %s", p)
	}
	mustAppend(t, s, "e")
	checkStats(t, s, Stats{Depth: 5, Bytes: 5})

	all := readAll(t, s, Position{})
	if got := strings.Join(values(all), ""); got != "abcde" {
		t.Fatalf("read %q", got)
	}
	for i, en := range all {
		if en.Pos != (Position{e, uint64(i + 1)}) {
			t.Fatalf("entry %d at %s", i, en.Pos)
		}
	}
	if got := readAll(t, s, all[2].Pos); strings.Join(values(got), "") != "de" {
		t.Fatalf("read after %s = %q", all[2].Pos, values(got))
	}

	if err := s.Ack(all[2].Pos); err != nil {
		t.Fatal(err)
	}
	checkStats(t, s, Stats{Depth: 2, Bytes: 2})
	if got := readAll(t, s, Position{}); strings.Join(values(got), "") != "de" {
		t.Fatalf("after ack: %q", values(got))
	}
	// Acking again, or before the head, changes nothing.
	for _, p := range []Position{all[2].Pos, all[0].Pos, {}} {
		if err := s.Ack(p); err != nil {
			t.Fatal(err)
		}
	}
	checkStats(t, s, Stats{Depth: 2, Bytes: 2})

	// Acking past the tail removes everything, but not what comes later.
	if err := s.Ack(Position{e + 10, 0}); err != nil {
		t.Fatal(err)
	}
	checkStats(t, s, Stats{})
	p := mustAppend(t, s, "f")
	if p != (Position{e, 6}) {
		t.Fatalf("position after ack = %s", p)
	}
	if got := readAll(t, s, Position{}); len(got) != 1 || string(got[0].Value) != "f" {
		t.Fatalf("after ack past tail: %q", values(got))
	}
	s = reopen(t, s, Options{FS: fs})
	if got := readAll(t, s, Position{}); len(got) != 1 || got[0].Pos != p {
		t.Fatalf("after reopen: %v", got)
	}
}

func TestReadLimits(t *testing.T) {
	s := openSpool(t, Options{})
	mustAppend(t, s, "1", "22", "333", "4444", "55555")
	cases := []struct {
		maxEntries, maxBytes int
		want                 string
	}{
		{0, 0, "1 22 333 4444 55555"},
		{1, 0, "1"},
		{3, 0, "1 22 333"},
		{0, 1, "1"},
		{0, 3, "1 22"},
		{0, 5, "1 22"},
		{0, 6, "1 22 333"},
		{2, 6, "1 22"},
		{100, 1000, "1 22 333 4444 55555"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("entries=%d,bytes=%d", c.maxEntries, c.maxBytes), func(t *testing.T) {
			es, err := s.Read(Position{}, c.maxEntries, c.maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(values(es), " "); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
	t.Run("first entry over maxBytes", func(t *testing.T) {
		es, err := s.Read(Position{s.Epoch(), 4}, 10, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(values(es), " "); got != "55555" {
			t.Fatalf("got %q, want the one entry even though it is over maxBytes", got)
		}
	})
	t.Run("values are owned", func(t *testing.T) {
		es, _ := s.Read(Position{}, 0, 0)
		es[0].Value = append(es[0].Value, 'x') // must not clobber es[1]
		if string(es[1].Value) != "22" {
			t.Fatalf("entry 1 = %q", es[1].Value)
		}
	})
	t.Run("nothing after the tail", func(t *testing.T) {
		es, err := s.Read(Position{s.Epoch(), 5}, 10, 0)
		if err != nil || len(es) != 0 {
			t.Fatalf("got %v, %v", es, err)
		}
	})
}

func TestEpochBoundary(t *testing.T) {
	fs := vfs.NewMem()
	s := openSpool(t, Options{FS: fs})
	e1 := s.Epoch()
	mustAppend(t, s, "a", "b", "c")
	s = reopen(t, s, Options{FS: fs})
	e2 := s.Epoch()
	if e2 != e1+1 {
		t.Fatalf("epoch %d after %d", e2, e1)
	}
	if p := mustAppend(t, s, "d", "e"); p != (Position{e2, 1}) {
		t.Fatalf("first position of new epoch = %s", p)
	}

	// Older-epoch entries come first, and one Read stops at the boundary.
	es, err := s.Read(Position{}, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(values(es), ""); got != "abc" || es[2].Pos != (Position{e1, 3}) {
		t.Fatalf("first read = %q %v, want abc of epoch %d", got, es, e1)
	}
	es, err = s.Read(es[2].Pos, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(values(es), ""); got != "de" || es[0].Pos != (Position{e2, 1}) {
		t.Fatalf("second read = %q %v, want de of epoch %d", got, es, e2)
	}
}

func TestPositionsNeverRepeatAcrossReopen(t *testing.T) {
	fs := vfs.NewMem()
	s := openSpool(t, Options{FS: fs})
	seen := map[Position]string{}
	var last Position
	for round := range 4 {
		for i := range 3 {
			v := fmt.Sprintf("r%d-%d", round, i)
			p := mustAppend(t, s, v)
			if prev, dup := seen[p]; dup {
				t.Fatalf("position %s given to %q and %q", p, prev, v)
			}
			if !last.Less(p) {
				t.Fatalf("position %s not after %s", p, last)
			}
			seen[p], last = v, p
		}
		if round%2 == 1 {
			// Ack some so the queue is empty at reopen: the epoch must still
			// advance (it comes from the meta key, not only from the keys).
			if err := s.Ack(last); err != nil {
				t.Fatal(err)
			}
		}
		s = reopen(t, s, Options{FS: fs})
	}
}

// TestTail: the tail is at or after every entry already appended, before
// every entry appended later, and in the current epoch even when only older
// epochs have entries.
func TestTail(t *testing.T) {
	fs := vfs.NewMem()
	s := openSpool(t, Options{FS: fs})
	mustAppend(t, s, "a", "b")
	s = reopen(t, s, Options{FS: fs})
	e := s.Epoch()
	if got := s.Tail(); got != (Position{e, 0}) {
		t.Fatalf("tail with only an older epoch = %s, want %s", got, Position{e, 0})
	}
	if got := readAll(t, s, s.Tail()); len(got) != 0 {
		t.Fatalf("entries after the tail: %v", got)
	}
	first := mustAppend(t, s, "c", "d", "e")
	if got := s.Tail(); got != (Position{e, first.Seq + 2}) {
		t.Fatalf("tail after appending at %s = %s, want %s", first, got, Position{e, first.Seq + 2})
	}
	tail := s.Tail()
	next := mustAppend(t, s, "f")
	if !tail.Less(next) {
		t.Fatalf("entry appended after the tail %s is at %s", tail, next)
	}
	// Acking everything leaves the tail where it was: positions are not reused.
	if err := s.Ack(s.Tail()); err != nil {
		t.Fatal(err)
	}
	if got := s.Tail(); got != next {
		t.Fatalf("tail after ack = %s, want %s", got, next)
	}
	// A replayed dead letter gets a new position, which moves the tail.
	mustAppend(t, s, "g")
	dead := readAll(t, s, next)
	if err := s.DeadLetter(dead, []string{"test"}); err != nil {
		t.Fatal(err)
	}
	before := s.Tail()
	if n, err := s.Replay(); err != nil || n != 1 {
		t.Fatalf("replay = %d, %v", n, err)
	}
	if got := s.Tail(); got != before.next() {
		t.Fatalf("tail after replay = %s, want %s", got, before.next())
	}
}

func TestWait(t *testing.T) {
	s := openSpool(t, Options{})
	ctx := context.Background()

	t.Run("entry exists", func(t *testing.T) {
		p := mustAppend(t, s, "x")
		if err := s.Wait(ctx, Position{}); err != nil {
			t.Fatal(err)
		}
		if err := s.Ack(p); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("wakes on append", func(t *testing.T) {
		tail := s.Tail()
		done := make(chan error, 1)
		go func() { done <- s.Wait(ctx, tail) }()
		mustAppend(t, s, "y")
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("acked entries do not count", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		tail := s.Tail()
		if err := s.Ack(tail); err != nil {
			t.Fatal(err)
		}
		if err := s.Wait(ctx, Position{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("wait on an empty queue = %v, want context.Canceled", err)
		}
	})
	t.Run("ctx cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- s.Wait(ctx, s.Tail()) }()
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	})
	t.Run("close", func(t *testing.T) {
		done := make(chan error, 1)
		go func() { done <- s.Wait(ctx, s.Tail()) }()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, ErrClosed) {
			t.Fatalf("got %v, want ErrClosed", err)
		}
	})
}

func TestQuota(t *testing.T) {
	fs := vfs.NewMem()
	opts := Options{FS: fs, QuotaBytes: 100}
	s := openSpool(t, opts)
	if err := s.Ready(); err != nil {
		t.Fatalf("ready on empty spool: %v", err)
	}
	ten := strings.Repeat("x", 10)
	for range 9 {
		mustAppend(t, s, ten)
	}
	// 90 stored: two more values (20 bytes) would exceed, and nothing of
	// the batch is stored.
	if _, err := s.Append([]byte(ten), []byte(ten)); !errors.Is(err, ErrFull) {
		t.Fatalf("append over quota = %v, want ErrFull", err)
	}
	checkStats(t, s, Stats{Depth: 9, Bytes: 90})
	if err := s.Ready(); err != nil {
		t.Fatalf("ready at 90/100: %v", err)
	}
	// Ready for a request of 20 bytes it is not (asked for 12, an eighth of
	// the quota): that is what /readyz asks.
	if err := s.ReadyFor(20); !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "no room for a request of 12 bytes") {
		t.Fatalf("ready for 20 bytes at 90/100 = %v, want ErrFull saying there is no room", err)
	}
	if err := s.ReadyFor(10); err != nil {
		t.Fatalf("ready for 10 bytes at 90/100: %v", err)
	}
	mustAppend(t, s, ten) // exactly at the quota
	if err := s.Ready(); !errors.Is(err, ErrFull) {
		t.Fatalf("ready at quota = %v, want ErrFull", err)
	}
	if _, err := s.Append([]byte("y")); !errors.Is(err, ErrFull) {
		t.Fatalf("append at quota = %v, want ErrFull", err)
	}
	if got := len(readAll(t, s, Position{})); got != 10 {
		t.Fatalf("%d entries stored, want 10", got)
	}

	// Dead letters count towards the quota too.
	es, _ := s.Read(Position{}, 3, 0)
	if err := s.DeadLetter(es[:1], []string{"bad"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append([]byte("y")); !errors.Is(err, ErrFull) {
		t.Fatalf("append with dead letters at quota = %v, want ErrFull", err)
	}

	// Acking makes room.
	if err := s.Ack(es[2].Pos); err != nil {
		t.Fatal(err)
	}
	checkStats(t, s, Stats{Depth: 7, Bytes: 70, DeadLetters: 1, DeadLetterBytes: 10})
	if err := s.Ready(); err != nil {
		t.Fatalf("ready after ack: %v", err)
	}
	mustAppend(t, s, ten, ten)
	if _, err := s.Append([]byte("y")); !errors.Is(err, ErrFull) {
		t.Fatalf("append at quota again = %v, want ErrFull", err)
	}
	reopen(t, s, opts)
}

func TestMinFreeBytes(t *testing.T) {
	t.Run("real filesystem", func(t *testing.T) {
		s := openSpool(t, Options{FS: vfs.Default, Dir: t.TempDir(), MinFreeBytes: math.MaxInt64})
		if _, err := s.Append([]byte("x")); !errors.Is(err, ErrFull) {
			t.Fatalf("append with a huge MinFreeBytes = %v, want ErrFull", err)
		}
		if err := s.Ready(); !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "free") {
			t.Fatalf("ready = %v, want ErrFull about free space", err)
		}
		checkStats(t, s, Stats{})
	})
	t.Run("not checked off the real filesystem", func(t *testing.T) {
		s := openSpool(t, Options{MinFreeBytes: math.MaxInt64})
		mustAppend(t, s, "x")
		if err := s.Ready(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("statfs failure does not block", func(t *testing.T) {
		g := newDiskGuard("nowhere", 1, time.Now, quietLogger)
		g.statfs = func(string) (uint64, error) { return 0, errors.New("boom") }
		if err := g.check(0); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("checked at most every interval", func(t *testing.T) {
		now := time.Unix(1000, 0)
		reads := 0
		g := newDiskGuard("d", 100, func() time.Time { return now }, quietLogger)
		g.statfs = func(string) (uint64, error) { reads++; return 50, nil }
		for range 3 {
			if err := g.check(0); !errors.Is(err, ErrFull) {
				t.Fatalf("check = %v, want ErrFull", err)
			}
		}
		g.statfs = func(string) (uint64, error) { reads++; return 500, nil }
		if err := g.check(0); !errors.Is(err, ErrFull) || reads != 1 {
			t.Fatalf("check within the interval = %v after %d reads; want the cached ErrFull after 1", err, reads)
		}
		now = now.Add(diskCheckInterval)
		if err := g.check(0); err != nil || reads != 2 {
			t.Fatalf("check after the interval = %v after %d reads", err, reads)
		}
	})
}

func TestClosed(t *testing.T) {
	s := openSpool(t, Options{})
	mustAppend(t, s, "a")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := s.Append([]byte("b")); !errors.Is(err, ErrClosed) {
		t.Errorf("append: %v", err)
	}
	if _, err := s.Read(Position{}, 1, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("read: %v", err)
	}
	if err := s.Wait(context.Background(), Position{}); !errors.Is(err, ErrClosed) {
		t.Errorf("wait: %v", err)
	}
	for name, err := range map[string]error{
		"ack":          s.Ack(Position{}),
		"ready":        s.Ready(),
		"sync":         s.Sync(),
		"dead letter":  s.DeadLetter([]Entry{{}}, []string{""}),
		"dead letters": second(s.DeadLetters(Position{}, 0)),
		"replay":       second(s.Replay()),
		"purge":        second(s.Purge()),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func TestSync(t *testing.T) {
	fs := vfs.NewCrashableMem()
	s := openSpool(t, Options{FS: fs})
	p := mustAppend(t, s, "a", "b")
	if err := s.Ack(p); err != nil { // not synced by itself
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	s2 := openSpool(t, Options{FS: fs.CrashClone(vfs.CrashCloneCfg{})})
	if got := values(readAll(t, s2, Position{})); len(got) != 1 || got[0] != "b" {
		t.Fatalf("after synced ack and crash: %q, want [b]", got)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	fs := vfs.NewMem()
	opts := Options{FS: fs, Registerer: reg, QuotaBytes: 10}
	s := openSpool(t, opts)
	mustAppend(t, s, "abc", "de")
	mustAppend(t, s, "f")
	if _, err := s.Append([]byte("0123456789")); !errors.Is(err, ErrFull) {
		t.Fatalf("append over quota = %v", err)
	}
	es, _ := s.Read(Position{}, 1, 0)
	if err := s.DeadLetter(es, []string{"no"}); err != nil {
		t.Fatal(err)
	}

	want := map[string]float64{
		"edgetrack_spool_depth":                            2,
		"edgetrack_spool_bytes":                            3,
		"edgetrack_spool_dead_letters":                     1,
		"edgetrack_spool_dead_letter_bytes":                3,
		"edgetrack_spool_quota_bytes":                      10,
		"edgetrack_spool_appends_total":                    3,
		`edgetrack_spool_append_errors_total{reason=full}`: 1,
		`edgetrack_spool_append_errors_total{reason=io}`:   0,
		"edgetrack_spool_sync_seconds_count":               2,
	}
	got := gather(t, reg)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}

	// Close unregisters, so the spool can be reopened on the same registry.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(gather(t, reg)); n != 0 {
		t.Fatalf("%d metrics left after close", n)
	}
	s = openSpool(t, opts)
	if got := gather(t, reg)["edgetrack_spool_depth"]; got != 2 {
		t.Fatalf("depth after reopen = %v", got)
	}
	if _, err := Open(Options{FS: fs, Dir: "other", Registerer: reg, Logger: quietLogger}); err == nil {
		t.Fatal("a second spool registered the same metrics")
	}
}

// gather flattens the registry into name{label=value} -> value.
func gather(tb testing.TB, reg *prometheus.Registry) map[string]float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[name] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[name] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[name+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}
