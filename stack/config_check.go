package stack

import (
	"fmt"
	"net/netip"
)

// checkMapped refuses IPv4-mapped IPv6 addresses (::ffff:a.b.c.d), which
// netip.AddrFromSlice makes of any 16-byte net.IP. Address unmaps them, so
// gVisor got the IPv4 address with the IPv6 prefix length (10.0.0.1/120,
// its subnet route left as IPv6) or an IPv6 route with a 4-byte next hop:
// a stack that silently does not route. (Linux would take such an address
// as a plain IPv6 one, useless for IPv4; a caller giving one almost
// certainly meant IPv4, so say so rather than guess.)
func (cfg *Config) checkMapped() error {
	for i, n := range cfg.NICs {
		for _, a := range n.Addrs {
			if mappedAddr(a) {
				return fmt.Errorf("stack: NICs[%d].Addrs has an IPv4-mapped address %v; give IPv4 as a.b.c.d/N", i, a)
			}
		}
	}
	for i, r := range cfg.Routes {
		if r.Dest.Addr().Is4In6() {
			return fmt.Errorf("stack: Routes[%d].Dest %v is IPv4-mapped; give IPv4 as a.b.c.d/N", i, r.Dest)
		}
		if r.Gateway.Is4In6() {
			return fmt.Errorf("stack: Routes[%d].Gateway %v is IPv4-mapped", i, r.Gateway)
		}
	}
	return nil
}

// mappedAddr reports whether a, an address for a NIC, is IPv4-mapped:
// checkMapped (for New) and AddAddress refuse it.
func mappedAddr(a netip.Prefix) bool { return a.Addr().Is4In6() }

// checkNames finds the mistakes New would otherwise meet only while
// creating NICs: a name used twice (an explicit one may also be the
// default ethN of a later NIC), a route through a NIC that does not
// exist, an address given twice on one NIC. Found then, after gVisor had
// attached the first NICs, they left their endpoints closed by the
// failed stack's teardown, though New's error leaves them the caller's.
func (cfg *Config) checkNames() error {
	names := map[string]bool{"lo": true}
	for i, n := range cfg.NICs {
		name := cfg.nicName(i)
		if names[name] {
			return fmt.Errorf("stack: NICs[%d].Name %q is used by another NIC", i, name)
		}
		names[name] = true
		seen := map[netip.Addr]bool{}
		for _, a := range n.Addrs {
			if seen[a.Addr()] {
				return fmt.Errorf("stack: NICs[%d].Addrs has %v twice", i, a.Addr())
			}
			seen[a.Addr()] = true
		}
	}
	for i, r := range cfg.Routes {
		if !names[r.NIC] {
			return fmt.Errorf("stack: Routes[%d].NIC %q: no NIC by that name", i, r.NIC)
		}
	}
	return nil
}

// nicName is the name of NICs[i]: its Name, or ethN with N its NIC ID.
func (cfg *Config) nicName(i int) string {
	if n := cfg.NICs[i].Name; n != "" {
		return n
	}
	return fmt.Sprintf("eth%d", int(LoopbackNIC)+1+i)
}

// Smallest link MTUs: every IPv4 link carries 68 bytes unfragmented (RFC
// 791), every IPv6 link 1280 (RFC 8200 §5). Linux turns a family off on a
// device whose MTU drops below its minimum.
const (
	minMTU4 = 68
	minMTU6 = 1280
)

// checkMTU refuses a NIC whose link cannot carry the smallest packet of
// a family it has an address of (and any NIC below IPv4's minimum):
// gVisor took it, and then never sent a TCP SYN over it (connect timed
// out) and refused every datagram with EINVAL.
func (cfg *Config) checkMTU() error {
	for i, n := range cfg.NICs {
		mtu := n.Endpoint.MTU()
		if mtu < minMTU4 {
			return fmt.Errorf("stack: NICs[%d].Endpoint has MTU %d, below IPv4's minimum %d", i, mtu, minMTU4)
		}
		for _, a := range n.Addrs {
			if mtuTooSmall(mtu, a) {
				return fmt.Errorf("stack: NICs[%d].Endpoint has MTU %d, below the %d its IPv6 address %v needs", i, mtu, minMTU6, a)
			}
		}
	}
	return nil
}

// mtuTooSmall reports whether a link of MTU mtu is too small for a, an
// address for a NIC: checkMTU (for New) and AddAddress refuse it. IPv4's
// minimum is not checked here: checkMTU requires it of every NIC, with or
// without addresses.
func mtuTooSmall(mtu uint32, a netip.Prefix) bool { return a.Addr().Is6() && mtu < minMTU6 }
