//go:build race

package services

// raceEnabled: the race detector makes allocations bigger and sync.Pool
// drop a quarter of what is put back, so heap bounds need more room.
const raceEnabled = true
