//go:build !linux

package netns

import "net"

// GuardListener returns ln: there are no network namespaces to guard
// against outside Linux.
func GuardListener(ln net.Listener, nsPath string, refusal string) (net.Listener, error) {
	return ln, nil
}
