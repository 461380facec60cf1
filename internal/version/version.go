// Package version holds the build's version and commit, set by the Makefile
// with -ldflags "-X github.com/edgetrack/edgetrack/internal/version.Version=…
// -X …/internal/version.commit=…".
package version

import "runtime/debug"

// Version is the release (a git tag) or commit this binary was built from.
var Version = "dev"

// commit is set by the Makefile; without it Commit asks the build info.
var commit = ""

// Commit is the git commit the binary was built from, "-dirty" when the
// checkout had uncommitted changes: the Makefile's, else the revision Go
// recorded (go build -buildvcs), else "unknown".
func Commit() string {
	if commit != "" {
		return commit
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "unknown", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
			if len(rev) > 12 {
				rev = rev[:12]
			}
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && rev != "unknown" {
		rev += "-dirty"
	}
	return rev
}

// GoVersion is the Go toolchain that built the binary.
func GoVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.GoVersion
	}
	return "unknown"
}

// String returns the version, the commit and the Go toolchain.
func String() string {
	return Version + " (commit " + Commit() + ", " + GoVersion() + ")"
}
