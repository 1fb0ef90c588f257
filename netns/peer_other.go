//go:build !linux

package netns

import "net"

// PeerInNetNS is only supported on Linux.
func PeerInNetNS(nsPath string) (func(net.Conn) bool, error) { return nil, errUnsupported }
