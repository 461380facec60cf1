// Package version holds the build's version, set by the Makefile with
// -ldflags "-X github.com/edgetrack/edgetrack/internal/version.Version=…".
package version

import "runtime/debug"

// Version is the release or commit this binary was built from.
var Version = "dev"

// String returns the version with the Go toolchain that built it.
func String() string {
	goVersion := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
	}
	return Version + " (" + goVersion + ")"
}
