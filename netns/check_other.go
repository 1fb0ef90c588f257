//go:build !linux

package netns

// Check is only supported on Linux.
func Check(path string) error { return errUnsupported }
