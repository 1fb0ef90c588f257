//go:build !linux

package relay

import (
	"errors"
	"net/netip"
)

// openEcho needs Linux's ping sockets.
func openEcho(echoKey, netip.Addr) (*echoFlow, error) {
	return nil, errors.New("relaying ICMP echo needs Linux ping sockets")
}
