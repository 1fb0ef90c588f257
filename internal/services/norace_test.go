//go:build !race

package services

// raceEnabled: see race_test.go.
const raceEnabled = false
