//go:build !linux

package relay

import "errors"

// openEcho needs Linux's ping sockets.
func openEcho(echoKey) (*echoFlow, error) {
	return nil, errors.New("relaying ICMP echo needs Linux ping sockets")
}
