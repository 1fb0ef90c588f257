//go:build !linux

package netns

import (
	"errors"
	"net/netip"
	"time"
)

var errUnsupported = errors.New("netns: network namespaces need Linux")

// RunDir is where named namespaces are bind-mounted on Linux.
const RunDir = "/run/netns"

// Do is only supported on Linux; elsewhere it returns an error unless path
// is empty, in which case it runs fn.
func Do(path string, fn func() error) error {
	if path != "" {
		return errUnsupported
	}
	return fn()
}

// CreateNamed is only supported on Linux.
func CreateNamed(name string) (string, error) { return "", errUnsupported }

// DeleteNamed is only supported on Linux.
func DeleteNamed(name string) error { return errUnsupported }

// DeleteStale does nothing: there are no named namespaces to delete.
func DeleteStale(prefix string) {}

// WaitLocal is only supported on Linux.
func WaitLocal(path string, addrs []netip.Addr, timeout time.Duration) error {
	return errUnsupported
}
