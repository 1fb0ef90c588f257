//go:build race

package tests

// raceEnabled builds the ustack binary under test with -race too, so that
// a data race in serve fails the test (the race detector exits 66).
const raceEnabled = true
