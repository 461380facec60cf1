//go:build race

package server

// raceOn is true in a build with the race detector, under which sync.Pool
// drops some of what is put back on purpose: allocation counts vary.
const raceOn = true
