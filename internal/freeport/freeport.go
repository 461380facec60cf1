// Package freeport helps tests that start servers as separate processes,
// which must be told their address before they listen.
package freeport

import (
	"net"
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
