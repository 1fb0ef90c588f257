package relay

import (
	"errors"
	"net/netip"
)

var (
	errDenied     = errors.New("destination denied")
	errNoUpstream = errors.New("no DNS upstream configured")
)

var (
	loopback4 = netip.MustParseAddr("127.0.0.1")
	loopback6 = netip.IPv6Loopback()
)

// target maps a destination the namespace asked for to the host address
// the relay really connects to, or says why it may not.
//
//   - the gateway addresses reach host loopback only with
//     AllowHostLoopback;
//   - the DNS addresses answer port 53 from the upstreams (for UDP the
//     caller picks among them; target returns the first);
//   - unspecified, loopback, multicast and broadcast destinations never
//     leave: connecting to 0.0.0.0 would reach the host's loopback behind
//     the caller's back (Linux treats it as 127.0.0.1), and the others
//     have no meaning as a relayed unicast flow;
//   - anything in Deny is refused.
func (r *Relay) target(dst netip.AddrPort) (netip.AddrPort, error) {
	a := dst.Addr().Unmap()
	switch a {
	case r.cfg.Gateway4, r.cfg.Gateway6:
		if !r.cfg.AllowHostLoopback {
			return netip.AddrPort{}, errDenied
		}
		if a.Is4() {
			return netip.AddrPortFrom(loopback4, dst.Port()), nil
		}
		return netip.AddrPortFrom(loopback6, dst.Port()), nil
	case r.cfg.DNS4, r.cfg.DNS6:
		if dst.Port() != 53 {
			return netip.AddrPort{}, errDenied
		}
		if len(r.cfg.DNSUpstreams) == 0 {
			return netip.AddrPort{}, errNoUpstream
		}
		return r.dnsUpstream(), nil
	}
	if a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return netip.AddrPort{}, errDenied
	}
	for _, p := range r.cfg.Deny {
		if p.Contains(a) {
			return netip.AddrPort{}, errDenied
		}
	}
	return netip.AddrPortFrom(a, dst.Port()), nil
}

// isDNS reports whether dst is the DNS forwarder.
func (r *Relay) isDNS(dst netip.AddrPort) bool {
	a := dst.Addr().Unmap()
	return (a == r.cfg.DNS4 || a == r.cfg.DNS6) && dst.Port() == 53
}

// isOwn reports whether a is one of the addresses the stack itself answers
// for (gateway, DNS), where ICMP echo is answered by the stack.
func (r *Relay) isOwn(a netip.Addr) bool {
	a = a.Unmap()
	return a == r.cfg.Gateway4 || a == r.cfg.Gateway6 || a == r.cfg.DNS4 || a == r.cfg.DNS6
}

// dnsUpstream returns the current DNS upstream.
func (r *Relay) dnsUpstream() netip.AddrPort {
	ups := r.cfg.DNSUpstreams
	return ups[int(r.dnsCur.Load())%len(ups)]
}

// dnsFailed moves on from upstream up if it is still the current one, so
// that later queries try the next resolver, as a stub resolver would.
func (r *Relay) dnsFailed(up netip.AddrPort) {
	ups := r.cfg.DNSUpstreams
	cur := r.dnsCur.Load()
	if len(ups) > 1 && ups[int(cur)%len(ups)] == up && r.dnsCur.CompareAndSwap(cur, cur+1) {
		r.logf("dns upstream %v failed; using %v", up, ups[int(cur+1)%len(ups)])
	}
}
