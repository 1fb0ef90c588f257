// Package netns enters, creates and removes Linux network namespaces.
//
// A namespace is entered only on a goroutine that has called
// runtime.LockOSThread and never unlocks it: when the goroutine returns,
// the Go runtime discards the thread, so no thread ever goes back to the
// pool inside the wrong namespace (STYLE.md #14). Descriptors opened inside
// (a TUN fd, a netlink socket, a listening socket) stay bound to that
// namespace after the thread is gone; their opener owns and closes them.
package netns

import "errors"

// ErrNotNetNS is Check's error for a path that exists but is not a
// network namespace.
var ErrNotNetNS = errors.New("not a network namespace")
