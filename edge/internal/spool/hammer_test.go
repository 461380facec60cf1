package spool

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestHammer appends from 64 goroutines while one reader reads and acks
// concurrently, as the forwarder does. Every value must be read exactly once,
// in strictly increasing positions with no gap in the sequence.
func TestHammer(t *testing.T) {
	const writers = 64
	perWriter := 150
	if testing.Short() {
		perWriter = 20
	}
	total := writers * perWriter
	fs := vfs.NewMem()
	s := openSpool(t, Options{FS: fs})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		seen map[string]Position
		err  error
	}
	done := make(chan result, 1)
	go func() {
		seen := make(map[string]Position, total)
		var last Position
		for len(seen) < total {
			es, err := s.Read(last, 100, 4<<10)
			if err != nil {
				done <- result{err: err}
				return
			}
			if len(es) == 0 {
				if err := s.Wait(ctx, last); err != nil {
					done <- result{err: fmt.Errorf("wait after %s with %d of %d read: %w", last, len(seen), total, err)}
					return
				}
				continue
			}
			for _, e := range es {
				if want := last.next(); e.Pos != want && !(last == Position{} && e.Pos == Position{s.Epoch(), 1}) {
					done <- result{err: fmt.Errorf("read %s after %s: gap or reorder", e.Pos, last)}
					return
				}
				if p, dup := seen[string(e.Value)]; dup {
					done <- result{err: fmt.Errorf("value %q read at %s and %s", e.Value, p, e.Pos)}
					return
				}
				seen[string(e.Value)] = e.Pos
				last = e.Pos
			}
			if err := s.Ack(last); err != nil {
				done <- result{err: err}
				return
			}
			_ = s.Stats() // exercised concurrently, checked at the end
			_ = s.Ready()
		}
		done <- result{seen: seen}
	}()

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if _, err := s.Append(fmt.Appendf(nil, "w%02d-%04d", w, i)); err != nil {
					t.Errorf("append: %v", err)
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	for w := range writers {
		for i := range perWriter {
			if _, ok := r.seen[fmt.Sprintf("w%02d-%04d", w, i)]; !ok {
				t.Fatalf("value w%02d-%04d never read", w, i)
			}
		}
	}
	checkStats(t, s, Stats{})
	if es := readAll(t, s, Position{}); len(es) != 0 {
		t.Fatalf("%d entries left after acking everything", len(es))
	}
	reopen(t, s, Options{FS: fs})
}

// TestHammerDeadLetters is TestHammer with the reader moving every fifth value
// (those ending in 1 or 8) to the dead letters on first sight and replaying
// them from time to time, so Append, Read, Ack, DeadLetter and Replay all
// race. Every value must be delivered (read and acked without being
// dead-lettered) exactly once, the sequence must stay gap-free (replayed
// entries take positions from the same allocator as appends), and the
// counters must match a recount.
func TestHammerDeadLetters(t *testing.T) {
	const writers = 16
	perWriter := 100
	if testing.Short() {
		perWriter = 20
	}
	total := writers * perWriter
	fs := vfs.NewMem()
	s := openSpool(t, Options{FS: fs})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		delivered := make(map[string]int, total)
		dead := map[string]bool{}
		var last Position
		for round := 0; len(delivered) < total; round++ {
			es, err := s.Read(last, 50, 0)
			if err != nil {
				done <- err
				return
			}
			if len(es) == 0 {
				n, err := s.Replay()
				if err != nil {
					done <- err
					return
				}
				if n == 0 {
					if err := s.Wait(ctx, last); err != nil {
						done <- fmt.Errorf("wait after %s with %d of %d delivered: %w", last, len(delivered), total, err)
						return
					}
				}
				continue
			}
			var bad []Entry
			for _, e := range es {
				if want := last.next(); e.Pos != want && !(last == Position{} && e.Pos == Position{s.Epoch(), 1}) {
					done <- fmt.Errorf("read %s after %s: gap or reorder", e.Pos, last)
					return
				}
				last = e.Pos
				v := string(e.Value)
				if !dead[v] && (v[len(v)-1] == '1' || v[len(v)-1] == '8') {
					dead[v] = true
					bad = append(bad, e)
					continue
				}
				delivered[v]++
				if delivered[v] > 1 {
					done <- fmt.Errorf("value %q delivered twice", v)
					return
				}
			}
			if err := s.DeadLetter(bad, make([]string, len(bad))); err != nil {
				done <- err
				return
			}
			if err := s.Ack(last); err != nil {
				done <- err
				return
			}
			if round%10 == 9 {
				if _, err := s.Replay(); err != nil {
					done <- err
					return
				}
			}
		}
		if len(dead) == 0 {
			done <- fmt.Errorf("no value was dead-lettered; the test tests nothing")
			return
		}
		done <- nil
	}()

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				if _, err := s.Append(fmt.Appendf(nil, "w%02d-%04d", w, i)); err != nil {
					t.Errorf("append: %v", err)
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkStats(t, s, Stats{})
	reopen(t, s, Options{FS: fs})
}
