// Package freeport helps tests that start servers as separate processes,
// which must be told their address before they listen.
package freeport

import (
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
)

// Addr returns 127.0.0.1:port for a port that was free a moment ago.
// Another process may take it before the server does; tests that can let
// the server pick (":0") and read the address back should.
func Addr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Range returns the first of n consecutive ports of 127.0.0.1 that were all
// free a moment ago, for a server that is given a base port and counts up
// from it. It looks below the kernel's usual ephemeral ports (32768 on).
func Range(t testing.TB, n int) int {
	t.Helper()
	for range 200 {
		base := 20000 + rand.IntN(12000-n)
		var open []net.Listener
		for p := base; p < base+n; p++ {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				break
			}
			open = append(open, ln)
		}
		for _, ln := range open {
			ln.Close()
		}
		if len(open) == n {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}
