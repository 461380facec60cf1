//go:build race

package host_test

// raceOn is true in a build with the race detector, which makes compiling
// several times slower and the process larger.
const raceOn = true
