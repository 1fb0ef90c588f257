package relay

import (
	"errors"
	"net/netip"
)

var (
	errDenied     = errors.New("destination denied")
	errNoUpstream = errors.New("no DNS upstream (none configured, or all denied)")
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
//   - the DNS addresses answer port 53 from the upstreams (target returns
//     the current one);
//   - unspecified, loopback, multicast and broadcast destinations never
//     leave: connecting to 0.0.0.0 would reach the host's loopback behind
//     the caller's back (Linux treats it as 127.0.0.1), and the others
//     have no meaning as a relayed unicast flow;
//   - Deny is matched against the host address a flow really goes to:
//     the destination itself, host loopback behind the gateway, the DNS
//     upstreams (of which fill already dropped the denied ones). A
//     sandbox denying every destination must not reach the host's
//     loopback through the gateway, nor send names out through the DNS
//     forwarder. The gateway and DNS addresses themselves are the
//     stack's own, not destinations, so a Deny covering them (10.0.0.0/8
//     to keep off a LAN) leaves DNS working through an allowed upstream.
func (r *Relay) target(dst netip.AddrPort) (netip.AddrPort, error) {
	a := dst.Addr().Unmap()
	switch a {
	case r.cfg.gateway4, r.cfg.gateway6:
		host := loopback6
		if a.Is4() {
			host = loopback4
		}
		if !r.cfg.AllowHostLoopback || r.cfg.denied(host) {
			return netip.AddrPort{}, errDenied
		}
		return netip.AddrPortFrom(host, dst.Port()), nil
	case r.cfg.dns4, r.cfg.dns6:
		if dst.Port() != 53 {
			return netip.AddrPort{}, errDenied
		}
		if len(r.cfg.DNSUpstreams) == 0 {
			return netip.AddrPort{}, errNoUpstream
		}
		return r.dnsUpstream(), nil
	}
	if a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() || a == limitedBroadcast || r.cfg.denied(a) {
		return netip.AddrPort{}, errDenied
	}
	return netip.AddrPortFrom(a, dst.Port()), nil
}

// denied reports whether a lies in a Deny prefix.
func (c *Config) denied(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range c.Deny {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// allowedUpstreams returns the DNS upstreams outside every Deny prefix,
// logging those it drops: a query sent to a denied resolver would carry
// the namespace's names to a destination the user has forbidden.
func (c *Config) allowedUpstreams() []netip.AddrPort {
	var ups []netip.AddrPort
	for _, up := range c.DNSUpstreams {
		if c.denied(up.Addr()) {
			if c.Logf != nil {
				c.Logf("dns upstream %v is denied; not used", up)
			}
			continue
		}
		ups = append(ups, up)
	}
	return ups
}

// isDNS reports whether dst is the DNS forwarder.
func (r *Relay) isDNS(dst netip.AddrPort) bool {
	a := dst.Addr().Unmap()
	return (a == r.cfg.dns4 || a == r.cfg.dns6) && dst.Port() == 53
}

// isOwn reports whether a is one of the addresses the stack itself answers
// for (gateway, DNS), where ICMP echo is answered by the stack.
func (r *Relay) isOwn(a netip.Addr) bool {
	a = a.Unmap()
	return a == r.cfg.gateway4 || a == r.cfg.gateway6 || a == r.cfg.dns4 || a == r.cfg.dns6
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

// dialUpstream dials target, a DNS upstream, with dial, and while the
// dial fails for the upstream's own sake moves on to the next upstream,
// each at most once; it returns the upstream it dialled last. An
// upstream the host cannot even send to (no route, no address of its
// family, a link-local one without its zone) fails over at once, as a
// stub resolver moves on from it: kept as the current upstream, it
// failed every query of CMD. One that reset the connection was there;
// one that did not answer was given DialTimeout already (the caller
// marks it failed for the next query). A dial cut short by Close is no
// failure of the upstream: nothing fails over then.
func dialUpstream[C any](r *Relay, target netip.AddrPort, dial func(netip.AddrPort) (C, error)) (C, netip.AddrPort, error) {
	c, err := dial(target)
	for i := 0; err != nil && !isReset(err) && !dialTimedOut(err) && r.ctx.Err() == nil && i < len(r.cfg.DNSUpstreams); i++ {
		r.logf("dns upstream %v: %v", target, err)
		r.dnsFailed(target)
		next := r.dnsUpstream()
		if next == target {
			break
		}
		target = next
		c, err = dial(target)
	}
	return c, target, err
}

// outbound returns the source address host sockets toward dst are bound
// to (Config.Outbound4/6), or the invalid address: the kernel chooses.
func (r *Relay) outbound(dst netip.Addr) netip.Addr {
	if dst.Unmap().Is4() {
		return r.cfg.Outbound4
	}
	return r.cfg.Outbound6
}
