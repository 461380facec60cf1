// Package loadgen drives HTTP load at a server: keep-alive connections, a
// fixed number of concurrent clients (closed loop) or a fixed request rate
// (open loop), a latency histogram and errors counted by status.
//
// In fixed-rate mode latency is measured from when a request was due, not
// from when a client got round to sending it, so a server that stalls is
// charged for the requests queued behind the stall (no coordinated
// omission).
package loadgen

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// Options describe one run.
type Options struct {
	// Addr is host:port of the server.
	Addr string
	// Concurrency is the number of clients, each with its own keep-alive
	// connection. Default 16.
	Concurrency int
	// Rate, when > 0, sends that many requests per second in total (open
	// loop); 0 sends as fast as the clients can (closed loop).
	Rate float64
	// Duration of the run (default 10s); Requests, when > 0, stops after
	// that many instead.
	Duration time.Duration
	Requests int
	// Make fills request i. It must set at least the URI (and method and
	// body when not GET).
	Make func(i int, req *fasthttp.Request)
	// OK says whether a status is a success; default 2xx and 3xx.
	OK func(status int) bool
}

// Result is what a run measured.
type Result struct {
	Requests int           // completed (any status)
	Errors   int           // transport errors plus statuses OK refused
	ByStatus map[int]int   // completed requests by status; 0 = transport error
	Elapsed  time.Duration // wall time of the run
	P50      time.Duration
	P99      time.Duration
	P999     time.Duration
	Max      time.Duration
}

// Throughput is completed requests per second.
func (r Result) Throughput() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

func (r Result) String() string {
	return fmt.Sprintf("%d requests in %s (%.0f/s), %d errors, p50 %s p99 %s p99.9 %s max %s, by status %v",
		r.Requests, r.Elapsed.Round(time.Millisecond), r.Throughput(), r.Errors, r.P50, r.P99, r.P999, r.Max, r.ByStatus)
}

// Run sends the load and returns what it measured.
func Run(ctx context.Context, o Options) Result {
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.Duration <= 0 && o.Requests <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.OK == nil {
		o.OK = func(s int) bool { return s >= 200 && s < 400 }
	}
	client := &fasthttp.HostClient{Addr: o.Addr, MaxConns: o.Concurrency, MaxIdleConnDuration: time.Minute, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}

	// due carries, per request, the time it was due (open loop) or zero
	// (closed loop: measured from send).
	due := make(chan time.Time, o.Concurrency)
	go schedule(ctx, o, due)

	type local struct {
		lat      []time.Duration
		byStatus map[int]int
		errors   int
	}
	locals := make([]local, o.Concurrency)
	var (
		wg   sync.WaitGroup
		next int
		mu   sync.Mutex
	)
	start := time.Now()
	for c := 0; c < o.Concurrency; c++ {
		wg.Add(1)
		go func(l *local) {
			defer wg.Done()
			l.byStatus = map[int]int{}
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for at := range due {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				req.Reset()
				o.Make(i, req)
				sent := time.Now()
				if at.IsZero() {
					at = sent
				}
				err := client.Do(req, resp)
				l.lat = append(l.lat, time.Since(at))
				status := 0
				if err == nil {
					status = resp.StatusCode()
				}
				l.byStatus[status]++
				if err != nil || !o.OK(status) {
					l.errors++
				}
			}
		}(&locals[c])
	}
	wg.Wait()
	res := Result{Elapsed: time.Since(start), ByStatus: map[int]int{}}
	var all []time.Duration
	for _, l := range locals {
		all = append(all, l.lat...)
		res.Errors += l.errors
		for s, n := range l.byStatus {
			res.ByStatus[s] += n
		}
	}
	res.Requests = len(all)
	if len(all) > 0 {
		slices.Sort(all)
		q := func(p float64) time.Duration { return all[min(len(all)-1, int(p*float64(len(all))))] }
		res.P50, res.P99, res.P999, res.Max = q(0.50), q(0.99), q(0.999), all[len(all)-1]
	}
	return res
}

// schedule emits one due time per request: as fast as taken (closed loop)
// or spaced at the rate (open loop), until ctx ends or Requests are out.
func schedule(ctx context.Context, o Options, due chan<- time.Time) {
	defer close(due)
	if o.Rate <= 0 {
		for i := 0; o.Requests <= 0 || i < o.Requests; i++ {
			select {
			case due <- time.Time{}:
			case <-ctx.Done():
				return
			}
		}
		return
	}
	interval := time.Duration(float64(time.Second) / o.Rate)
	start := time.Now()
	for i := 0; o.Requests <= 0 || i < o.Requests; i++ {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return
			}
		}
		select {
		case due <- at:
		case <-ctx.Done():
			return
		}
	}
}
