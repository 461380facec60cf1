//go:build !(linux || darwin || freebsd)

package spool

import "errors"

// freeBytes is not implemented on this platform; the spool then relies on
// its quota alone.
func freeBytes(string) (uint64, error) {
	return 0, errors.New("free disk space is not available on this platform")
}
