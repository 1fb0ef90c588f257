//go:build linux

package sockapi

import (
	"context"
	"net/netip"
	"os"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Getaddrinfo is getaddrinfo(3) over the userspace stack: names are
// looked up in the hosts table (ResolverConfig.HostsFile, re-read on each
// call as glibc re-reads /etc/hosts, or the loopback defaults), then by
// DNS to ResolverConfig.Nameservers over this stack. An empty node or
// service stands for C's NULL; failures are *AddrinfoError.
func (s *Sockets) Getaddrinfo(node, service string, hints *AddrInfo) ([]AddrInfo, error) {
	ctx, done := s.lookupContext(context.Background())
	defer done()
	return getaddrinfo(ctx, s.userBackend(), node, service, hints)
}

// Getnameinfo is getnameinfo(3) over the userspace stack: addresses are
// looked up in the hosts table, then by PTR query.
func (s *Sockets) Getnameinfo(sa unix.Sockaddr, flags int) (host, service string, err error) {
	ctx, done := s.lookupContext(context.Background())
	defer done()
	return getnameinfo(ctx, s.userBackend(), sa, flags)
}

// userBackend is resolverBackend over one Sockets: its stack for
// interfaces, routes and DNS traffic, and a snapshot of its resolver
// configuration taken when the call starts.
type userBackend struct {
	s   *gstack.Stack
	cfg ResolverConfig
}

var _ resolverBackend = (*userBackend)(nil)

func (s *Sockets) userBackend() *userBackend {
	s.resolvMu.Lock()
	cfg := s.resolv
	s.resolvMu.Unlock()
	return &userBackend{s: s.st.GVisor(), cfg: cfg}
}

// hosts is the hosts table; a file that cannot be read counts as empty,
// as glibc's files backend is "unavailable" and the lookup goes on to DNS.
func (b *userBackend) hosts() *hostsTable {
	t, err := loadHosts(b.cfg.HostsFile)
	if err != nil {
		return &hostsTable{}
	}
	return t
}

func (b *userBackend) lookupHost(ctx context.Context, name string, want4, want6, _ bool) (hostAnswer, error) {
	if ans, ok := b.hosts().lookup(name, want4, want6); ok {
		return ans, nil
	}
	if len(b.cfg.Nameservers) == 0 {
		return hostAnswer{}, eai(EAI_NONAME)
	}
	c := &dnsClient{s: b.s, cfg: b.cfg}
	return c.search(ctx, name, want4, want6)
}

func (b *userBackend) lookupAddr(ctx context.Context, a netip.Addr) (string, error) {
	if name, ok := b.hosts().lookupAddr(a); ok {
		return name, nil
	}
	if len(b.cfg.Nameservers) == 0 {
		return "", eai(EAI_NONAME)
	}
	c := &dnsClient{s: b.s, cfg: b.cfg}
	res := c.query(ctx, reverseName(a), dnsmessage.TypePTR)
	switch {
	case res.status == hOK:
		return res.reply.ptr, nil
	case res.status == hTryAgain:
		return "", eai(EAI_AGAIN)
	}
	return "", eai(EAI_NONAME)
}

// interfaceIndex maps a NIC name to its ID, which is the scope ID.
func (b *userBackend) interfaceIndex(name string) (int, bool) {
	for id, info := range b.s.NICInfo() {
		if info.Name == name {
			return int(id), true
		}
	}
	return 0, false
}

func (b *userBackend) interfaceName(index int) (string, bool) {
	info, ok := b.s.NICInfo()[tcpip.NICID(index)]
	return info.Name, ok
}

// addrFamilies follows glibc's __check_pf over the stack's addresses:
// any IPv4 address other than 127.0.0.1 counts, any IPv6 other than ::1.
// gVisor lists 255.255.255.255 on every NIC as its broadcast endpoint;
// Linux has no such interface address, so it does not count.
func (b *userBackend) addrFamilies() (v4, v6 bool) {
	for _, addrs := range b.s.AllAddresses() {
		for _, pa := range addrs {
			a, ok := netip.AddrFromSlice(pa.AddressWithPrefix.Address.AsSlice())
			if !ok || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) || a.IsMulticast() {
				continue
			}
			v4 = v4 || a.Is4() && a != netip.AddrFrom4([4]byte{127, 0, 0, 1})
			v6 = v6 || a.Is6() && a != netip.IPv6Loopback()
		}
	}
	return v4, v6
}

// source asks the stack's routing table which local address a packet to
// dst would leave from; this is what connecting a UDP socket finds.
func (b *userBackend) source(dst netip.AddrPort, zone uint32) (netip.Prefix, bool) {
	fa, proto := fullAddr(dst)
	if zone == 0 && (dst.Addr().IsLinkLocalUnicast() && dst.Addr().Is6() || dst.Addr().IsLinkLocalMulticast()) {
		// Linux refuses to connect to a link-local IPv6 address without a
		// scope (EINVAL from ip6_datagram_connect): unusable.
		return netip.Prefix{}, false
	}
	if dst.Addr().IsUnspecified() {
		// Connecting to the unspecified address reaches the host itself,
		// over loopback (Linux's ip_route_connect and ip6_datagram_connect).
		if proto == ipv4.ProtocolNumber {
			fa.Addr = tcpip.AddrFrom4([4]byte{127, 0, 0, 1})
		} else {
			fa.Addr = tcpip.AddrFrom16(netip.IPv6Loopback().As16())
		}
	}
	fa.NIC = tcpip.NICID(zone)
	r, err := b.s.FindRoute(fa.NIC, tcpip.Address{}, fa.Addr, proto, false)
	if err != nil {
		return netip.Prefix{}, false
	}
	defer r.Release()
	la := r.LocalAddress()
	src, ok := netip.AddrFromSlice(la.AsSlice())
	if !ok {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(src, b.prefixLen(r.NICID(), src)), true
}

// prefixLen is the prefix length of address a on NIC nic.
func (b *userBackend) prefixLen(nic tcpip.NICID, a netip.Addr) int {
	for _, pa := range b.s.AllAddresses()[nic] {
		if pa.AddressWithPrefix.Address == tcpip.AddrFromSlice(a.AsSlice()) {
			return pa.AddressWithPrefix.PrefixLen
		}
	}
	return a.BitLen()
}

// domain is the local domain for NI_NOFQDN: the first search domain,
// which is what resolv.conf's "domain" line sets.
func (b *userBackend) domain() string {
	if len(b.cfg.Search) == 0 {
		return ""
	}
	return strings.Trim(b.cfg.Search[0], ".")
}

func (b *userBackend) nodename() string {
	name, err := os.Hostname()
	if err != nil {
		return "localhost"
	}
	return name
}
