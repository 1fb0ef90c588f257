package netns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// localPoll is how often WaitLocal asks the kernel again.
const localPoll = time.Millisecond

// WaitLocal returns once the kernel of the namespace at path routes every
// one of addrs as local, that is, delivers packets sent to them instead of
// dropping them, or an error naming the first address still not local
// after timeout.
//
// An IPv6 address is not always usable when the netlink calls that add it
// and bring its link up have returned. Linux puts the address's host route
// (table local) into the FIB from the addrconf work queue, when duplicate
// address detection ends (net/ipv6/addrconf.c: addrconf_dad_work ->
// addrconf_dad_completed -> __ipv6_ifa_notify -> ip6_ins_rt), and that
// also holds for an IFA_F_NODAD address on a NOARP device such as a TUN
// whose link comes up after the address was added
// (addrconf_permanent_addr -> fixup_permanent_addr -> addrconf_dad_start).
// The work needs a kernel worker and RTNL: on a busy machine we saw
// `ip -6 route get` answer with the on-link prefix route, not the local
// one, for up to 18 ms after the link came up. A packet to the address
// then goes to ip6_forward and, forwarding being off, is dropped and
// counted in Ip6InAddrErrors. IPv4 host routes are added synchronously;
// asking about them too costs one netlink round trip.
func WaitLocal(path string, addrs []netip.Addr, timeout time.Duration) error {
	return Do(path, func() error {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return fmt.Errorf("netns: netlink: %w", err)
		}
		defer h.Close()
		deadline := time.Now().Add(timeout)
		for _, a := range addrs {
			for {
				local, err := isLocal(h, a)
				if err != nil {
					return err
				}
				if local {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("netns: %v is still not a local address after %v (the kernel has not finished setting it up)", a, timeout)
				}
				time.Sleep(localPoll)
			}
		}
		return nil
	})
}

// isLocal says whether the kernel's route to a is a local one.
func isLocal(h *netlink.Handle, a netip.Addr) (bool, error) {
	rs, err := h.RouteGet(net.IP(a.AsSlice()))
	if err != nil {
		// ENETUNREACH: not even the prefix route yet.
		if errors.Is(err, unix.ENETUNREACH) {
			return false, nil
		}
		return false, fmt.Errorf("netns: route get %v: %w", a, err)
	}
	return len(rs) > 0 && rs[0].Type == unix.RTN_LOCAL, nil
}
