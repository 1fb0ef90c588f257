//go:build linux

package sockapi

import (
	"net/netip"
	"testing"

	"github.com/ustack/ustack/stack"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
)

// newStackWithNIC returns a stack with loopback and one more NIC, eth2,
// holding prefix; the NIC is an in-memory channel nothing reads.
func newStackWithNIC(t testing.TB, prefix string) *stack.Stack {
	t.Helper()
	st, err := stack.New(stack.Config{NICs: []stack.NICConfig{{
		Endpoint: channel.New(16, 1500, ""),
		Addrs:    []netip.Prefix{netip.MustParsePrefix(prefix)},
	}}})
	if err != nil {
		t.Fatalf("stack.New = %v", err)
	}
	t.Cleanup(st.Close)
	return st
}
