//go:build !linux

package netns

// Check is only supported on Linux.
func Check(path string) error { return errUnsupported }

// IsCurrent is only supported on Linux.
func IsCurrent(path string) (bool, error) { return false, errUnsupported }
