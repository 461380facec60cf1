package client

// A loopback Hamustro collector for the SDK's tests. It stands in for the
// edge where a real one cannot be made to misbehave on demand: answering
// 500, 503 or 204, hanging until the client times out, sending Retry-After.
// The tests against the real edge and aggregator are in realedge_test.go;
// keep this fake for those failure modes. Its API:
//
//	newCollector(tb, secret) *collector   started on 127.0.0.1, closed at cleanup
//	c.URL() string                        base URL (without /api/v1/track)
//	c.answer(status)                      answer valid requests with status (default 200)
//	c.hang()                              never answer; return when the client gives up
//	c.next(tb) received                   wait for the next request (generous timeout)
//	c.requests() int                      requests seen so far
//	c.waitRequests(tb, n)                 wait until n requests have arrived (answered or not)
//	c.acceptedNrs() map[string][]uint32   nrs answered with 200, per session, in arrival order
//	c.accepted() []*hamustropb.Collection Collections answered with 200
//
// Every request is checked (method, path, content type, time header,
// signature, protobuf body); a request that fails a check is answered
// 400/401/404/405 and fails the test at cleanup, because the SDK must never
// send one.

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/edgetrack/edgetrack/proto/hamustropb"
)

// received is one request as the collector saw it.
type received struct {
	Status     int // what the collector answered; 0 if it hung until the client gave up
	Collection *hamustropb.Collection
}

type collector struct {
	srv    *httptest.Server
	secret string
	stop   chan struct{} // closed at cleanup: releases hung handlers

	arrivals chan received

	mu       sync.Mutex
	status   int // 0: hang
	count    int
	changed  chan struct{} // closed and replaced when count changes
	invalid  []string
	accepts  []*hamustropb.Collection
	answered map[string][]uint32
}

func newCollector(tb testing.TB, secret string) *collector {
	tb.Helper()
	c := &collector{
		secret:   secret,
		stop:     make(chan struct{}),
		arrivals: make(chan received, 4096),
		status:   http.StatusOK,
		answered: make(map[string][]uint32),
		changed:  make(chan struct{}),
	}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	// Cleanups run last-in first-out: release hung handlers, then close.
	tb.Cleanup(c.srv.Close)
	tb.Cleanup(func() { close(c.stop) })
	tb.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, msg := range c.invalid {
			tb.Errorf("collector: invalid request: %s", msg)
		}
	})
	return c
}

func (c *collector) URL() string { return c.srv.URL }

func (c *collector) answer(status int) {
	c.mu.Lock()
	c.status = status
	c.mu.Unlock()
}

func (c *collector) hang() { c.answer(0) }

func (c *collector) requests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count
}

func (c *collector) countLocked() {
	c.count++
	close(c.changed)
	c.changed = make(chan struct{})
}

// waitRequests waits until n requests have arrived; like next, its timeout
// only guards against a hung test.
func (c *collector) waitRequests(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.After(30 * time.Second)
	for {
		c.mu.Lock()
		count, changed := c.count, c.changed
		c.mu.Unlock()
		if count >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			tb.Fatalf("collector: %d requests arrived, want %d", count, n)
		}
	}
}

func (c *collector) accepted() []*hamustropb.Collection {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*hamustropb.Collection(nil), c.accepts...)
}

func (c *collector) acceptedNrs() map[string][]uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string][]uint32, len(c.answered))
	for s, nrs := range c.answered {
		out[s] = append([]uint32(nil), nrs...)
	}
	return out
}

// next waits for the next request. The timeout only guards against a hung
// test; no assertion depends on it.
func (c *collector) next(tb testing.TB) received {
	tb.Helper()
	select {
	case r := <-c.arrivals:
		return r
	case <-time.After(30 * time.Second):
		tb.Fatal("collector: no request arrived")
		return received{}
	}
}

func (c *collector) reject(w http.ResponseWriter, status int, msg string) {
	c.mu.Lock()
	c.countLocked()
	c.invalid = append(c.invalid, msg)
	c.mu.Unlock()
	http.Error(w, msg, status)
	c.arrivals <- received{Status: status}
}

func (c *collector) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		c.reject(w, http.StatusMethodNotAllowed, "method "+r.Method)
		return
	}
	if r.URL.Path != TrackPath {
		c.reject(w, http.StatusNotFound, "path "+r.URL.Path)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		c.reject(w, http.StatusBadRequest, "content type "+ct)
		return
	}
	ts := r.Header.Get("X-Hamustro-Time")
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil {
		c.reject(w, http.StatusBadRequest, "X-Hamustro-Time "+ts)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		c.reject(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	if got, want := r.Header.Get("X-Hamustro-Signature"), Sign(ts, body, c.secret); got != want {
		c.reject(w, http.StatusUnauthorized, "signature "+got+", want "+want)
		return
	}
	coll := new(hamustropb.Collection)
	if err := proto.Unmarshal(body, coll); err != nil { // proto2: also checks required fields
		c.reject(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	if len(coll.GetPayloads()) == 0 {
		c.reject(w, http.StatusBadRequest, "empty collection")
		return
	}

	c.mu.Lock()
	c.countLocked()
	status := c.status
	if status == http.StatusOK {
		c.accepts = append(c.accepts, coll)
		for _, p := range coll.GetPayloads() {
			c.answered[coll.GetSession()] = append(c.answered[coll.GetSession()], p.GetNr())
		}
	}
	c.mu.Unlock()

	if status == 0 {
		select {
		case <-r.Context().Done():
		case <-c.stop:
		}
	} else {
		w.WriteHeader(status)
		if status != http.StatusOK {
			io.WriteString(w, "collector says "+http.StatusText(status))
		}
	}
	c.arrivals <- received{Status: status, Collection: coll}
}
