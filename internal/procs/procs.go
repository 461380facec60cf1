// Package procs sets how many goroutines the edge and the aggregator run at
// once (GOMAXPROCS).
//
// Both acknowledge a request only after an fsync of their write-ahead log,
// and Pebble issues that fsync from one goroutine, as a blocking system
// call that keeps its P (Go's right to run goroutines) until the runtime
// notices and hands the P on. With GOMAXPROCS=1 — every machine or
// container with one CPU — nothing else runs meanwhile: requests cannot
// reach the spool while a sync is in flight, so each sync covers only the
// one or two requests that arrived before it, and the CPU idles in iowait.
// With a few more Ps than CPUs the other requests run during the sync and
// the next one covers them all. On one core, BenchmarkShippedEdge at 256
// connections answered 2.12× the requests per second with 4 Ps as with 1,
// at 0.705× the CPU per request, its syncs covering 64.4 requests each
// instead of 1.18 (bench/results/2026-12-06-09e0bcb.md, one run).
package procs

import (
	"os"
	"runtime"
)

// ForSyncedWrites is the least GOMAXPROCS the servers run with.
const ForSyncedWrites = 4

// AtLeast raises GOMAXPROCS to n when it is lower, unless the GOMAXPROCS
// environment variable is set (the operator's choice stands), and returns
// the value in effect.
func AtLeast(n int) int {
	cur := runtime.GOMAXPROCS(0)
	if _, set := os.LookupEnv("GOMAXPROCS"); set || cur >= n {
		return cur
	}
	runtime.GOMAXPROCS(n)
	return n
}
