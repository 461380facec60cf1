package spool

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestDeadLetters(t *testing.T) {
	fs := vfs.NewMem()
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	opts := Options{FS: fs, Now: func() time.Time { return at }}
	s := openSpool(t, opts)
	e := s.Epoch()
	mustAppend(t, s, "a", "bb", "ccc", "dddd", "eeeee")
	es := readAll(t, s, Position{})

	// Move b and d; the values moved are the stored ones, not the caller's.
	bad := []Entry{{Pos: es[1].Pos, Value: []byte("ignored")}, es[3]}
	if err := s.DeadLetter(bad, []string{"schema", "too old"}); err != nil {
		t.Fatal(err)
	}
	checkStats(t, s, Stats{Depth: 3, Bytes: 9, DeadLetters: 2, DeadLetterBytes: 6})
	if got := strings.Join(values(readAll(t, s, Position{})), " "); got != "a ccc eeeee" {
		t.Fatalf("queue after dead letter = %q", got)
	}
	dls, err := s.DeadLetters(Position{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []DeadLetter{
		{Pos: Position{e, 2}, Reason: "schema", At: at, Value: []byte("bb")},
		{Pos: Position{e, 4}, Reason: "too old", At: at, Value: []byte("dddd")},
	}
	if !equalDead(dls, want) {
		t.Fatalf("dead letters = %+v, want %+v", dls, want)
	}
	if dls, _ := s.DeadLetters(Position{e, 2}, 1); !equalDead(dls, want[1:]) {
		t.Fatalf("dead letters after %s = %+v", Position{e, 2}, dls)
	}
	if dls, _ := s.DeadLetters(Position{}, 1); !equalDead(dls, want[:1]) {
		t.Fatalf("dead letters limit 1 = %+v", dls)
	}

	// Skipped: already dead-lettered, acked, duplicated in the call, absent.
	if err := s.Ack(es[0].Pos); err != nil {
		t.Fatal(err)
	}
	again := []Entry{es[1], es[0], es[2], es[2], {Pos: Position{e, 99}}}
	if err := s.DeadLetter(again, []string{"x", "x", "dup", "dup", "x"}); err != nil {
		t.Fatal(err)
	}
	checkStats(t, s, Stats{Depth: 1, Bytes: 5, DeadLetters: 3, DeadLetterBytes: 9})
	if err := s.DeadLetter(es[:1], nil); err == nil {
		t.Fatal("mismatched reasons accepted")
	}
	s = reopen(t, s, opts)
	e2 := s.Epoch()

	// Replay one: it goes to the tail of the queue with a new position.
	n, err := s.Replay(Position{e, 4}, Position{e, 4}, Position{e, 77})
	if err != nil || n != 1 {
		t.Fatalf("replay = %d, %v; want 1", n, err)
	}
	checkStats(t, s, Stats{Depth: 2, Bytes: 9, DeadLetters: 2, DeadLetterBytes: 5})
	q := readAll(t, s, Position{})
	if got := strings.Join(values(q), " "); got != "eeeee dddd" || q[1].Pos != (Position{e2, 1}) {
		t.Fatalf("queue after replay = %q %v", got, q)
	}

	// Replay all (b and c), in the order of their old positions.
	if n, err := s.Replay(); err != nil || n != 2 {
		t.Fatalf("replay all = %d, %v; want 2", n, err)
	}
	checkStats(t, s, Stats{Depth: 4, Bytes: 14})
	q = readAll(t, s, Position{})
	if got := strings.Join(values(q), " "); got != "eeeee dddd bb ccc" {
		t.Fatalf("queue after replay all = %q", got)
	}
	for i, want := range []Position{{e, 5}, {e2, 1}, {e2, 2}, {e2, 3}} {
		if q[i].Pos != want {
			t.Fatalf("entry %d at %s, want %s", i, q[i].Pos, want)
		}
	}
	if n, err := s.Replay(); err != nil || n != 0 {
		t.Fatalf("replay with nothing = %d, %v", n, err)
	}

	// Purge some, then all.
	if err := s.DeadLetter(q, []string{"1", "2", "3", "4"}); err != nil {
		t.Fatal(err)
	}
	checkStats(t, s, Stats{DeadLetters: 4, DeadLetterBytes: 14})
	if n, err := s.Purge(Position{e2, 1}, Position{e2, 3}, Position{e2, 1}, Position{9, 9}); err != nil || n != 2 {
		t.Fatalf("purge = %d, %v; want 2", n, err)
	}
	checkStats(t, s, Stats{DeadLetters: 2, DeadLetterBytes: 7})
	s = reopen(t, s, opts)
	if n, err := s.Purge(); err != nil || n != 2 {
		t.Fatalf("purge all = %d, %v; want 2", n, err)
	}
	checkStats(t, s, Stats{})
	if n, err := s.Purge(); err != nil || n != 0 {
		t.Fatalf("purge nothing = %d, %v", n, err)
	}
	if dls, _ := s.DeadLetters(Position{}, 0); len(dls) != 0 {
		t.Fatalf("dead letters after purge: %v", dls)
	}
	reopen(t, s, opts)
}

func TestReplayManyInBatches(t *testing.T) {
	fs := vfs.NewMem()
	s := openSpool(t, Options{FS: fs})
	const n = 2*moveBatchEntries + 10
	vals := make([][]byte, n)
	for i := range vals {
		vals[i] = []byte{byte(i), byte(i >> 8)}
	}
	if _, err := s.Append(vals...); err != nil {
		t.Fatal(err)
	}
	es := readAll(t, s, Position{})
	if err := s.DeadLetter(es, make([]string, n)); err != nil {
		t.Fatal(err)
	}
	if moved, err := s.Replay(); err != nil || moved != n {
		t.Fatalf("replay = %d, %v; want %d", moved, err, n)
	}
	q := readAll(t, s, Position{})
	if len(q) != n {
		t.Fatalf("%d entries after replay, want %d", len(q), n)
	}
	for i, e := range q {
		if string(e.Value) != string(vals[i]) || e.Pos.Seq != uint64(n+1+i) {
			t.Fatalf("entry %d = %v", i, e)
		}
	}
	checkStats(t, s, Stats{Depth: n, Bytes: 2 * n})
	reopen(t, s, Options{FS: fs})
}

func TestDeadRecord(t *testing.T) {
	at := time.Unix(1700000000, 123)
	rec := encodeDead(at, "why", []byte("value"))
	gotAt, reason, v, ok := decodeDead(rec)
	if !ok || !gotAt.Equal(at) || reason != "why" || string(v) != "value" {
		t.Fatalf("decode = %v %q %q %v", gotAt, reason, v, ok)
	}
	for _, bad := range [][]byte{nil, {2, 0, 0, 0, 0, 0, 0, 0, 0, 0}, rec[:9], rec[:11]} {
		if _, _, _, ok := decodeDead(bad); ok {
			t.Errorf("decoded %q", bad)
		}
		if got := deadValue(bad); !slices.Equal(got, bad) {
			t.Errorf("value of undecodable %q = %q, want the record", bad, got)
		}
	}
}

func equalDead(a, b []DeadLetter) bool {
	return slices.EqualFunc(a, b, func(x, y DeadLetter) bool {
		return x.Pos == y.Pos && x.Reason == y.Reason && x.At.Equal(y.At) && string(x.Value) == string(y.Value)
	})
}
