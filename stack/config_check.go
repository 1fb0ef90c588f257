package stack

import "fmt"

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
			if a.Addr().Is4In6() {
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
