//go:build linux

package sockapi

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// hostResolver is Getaddrinfo and Getnameinfo over the host's resolver:
// names and addresses are looked up through Go's net.DefaultResolver
// (the host's /etc/hosts, /etc/resolv.conf and nsswitch, as Go reads
// them), interfaces and source addresses are the host's. Everything else
// (flags, numeric hosts and services, socket types, ordering, error
// codes) is the glibc-semantics engine of resolve.go, shared with the
// userspace resolver, so both implementations of API answer alike.
//
// Its zero value is ready to use; the kernel implementation embeds it.
type hostResolver struct{}

// Getaddrinfo is getaddrinfo(3) over the host resolver. An empty node or
// service stands for C's NULL; failures are *AddrinfoError.
func (hostResolver) Getaddrinfo(node, service string, hints *AddrInfo) ([]AddrInfo, error) {
	return getaddrinfo(context.Background(), hostBackend{}, node, service, hints)
}

// Getnameinfo is getnameinfo(3) over the host resolver.
func (hostResolver) Getnameinfo(sa unix.Sockaddr, flags int) (host, service string, err error) {
	return getnameinfo(context.Background(), hostBackend{}, sa, flags)
}

// hostBackend is resolverBackend over the host's resolver and interfaces.
type hostBackend struct{}

var _ resolverBackend = hostBackend{}

func (hostBackend) lookupHost(ctx context.Context, name string, want4, want6, canon bool) (hostAnswer, error) {
	network := "ip"
	switch {
	case !want6:
		network = "ip4"
	case !want4:
		network = "ip6"
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, network, name)
	if err != nil {
		return hostAnswer{}, fromNetError(err)
	}
	ans := hostAnswer{addrs: make([]netip.Addr, 0, len(ips))}
	for _, ip := range ips {
		if want4 && ip.Is4In6() {
			ip = ip.Unmap()
		}
		ans.addrs = append(ans.addrs, ip.WithZone(""))
	}
	if len(ans.addrs) == 0 {
		return hostAnswer{}, eai(EAI_NODATA)
	}
	if canon {
		if c, err := net.DefaultResolver.LookupCNAME(ctx, name); err == nil {
			ans.canon = strings.TrimSuffix(c, ".")
		}
	}
	return ans, nil
}

// fromNetError maps a net package lookup error to its EAI_* code: not
// found (or found without an address of the family asked for, which Go
// reports as an AddrError) is EAI_NONAME, a timeout or temporary failure
// EAI_AGAIN, any other failure EAI_FAIL.
func fromNetError(err error) error {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return eai(EAI_NONAME)
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		switch {
		case de.IsNotFound:
			return eai(EAI_NONAME)
		case de.IsTimeout || de.IsTemporary:
			return eai(EAI_AGAIN)
		}
	}
	return eai(EAI_FAIL)
}

func (hostBackend) lookupAddr(ctx context.Context, a netip.Addr) (string, error) {
	names, err := net.DefaultResolver.LookupAddr(ctx, a.String())
	if err != nil {
		return "", fromNetError(err)
	}
	if len(names) == 0 {
		return "", eai(EAI_NONAME)
	}
	return strings.TrimSuffix(names[0], "."), nil
}

func (hostBackend) interfaceIndex(name string) (int, bool) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, false
	}
	return ifi.Index, true
}

func (hostBackend) interfaceName(index int) (string, bool) {
	ifi, err := net.InterfaceByIndex(index)
	if err != nil {
		return "", false
	}
	return ifi.Name, true
}

// addrFamilies follows glibc's __check_pf: any IPv4 address other than
// 127.0.0.1 counts, any IPv6 address other than ::1.
func (hostBackend) addrFamilies() (v4, v6 bool) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false, false
	}
	for _, a := range addrs {
		p, ok := prefixOf(a)
		if !ok {
			continue
		}
		ip := p.Addr()
		v4 = v4 || ip.Is4() && ip != netip.AddrFrom4([4]byte{127, 0, 0, 1})
		v6 = v6 || ip.Is6() && ip != netip.IPv6Loopback()
	}
	return v4, v6
}

func prefixOf(a net.Addr) (netip.Prefix, bool) {
	n, ok := a.(*net.IPNet)
	if !ok {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	if ip.Is4In6() && ones >= 96 {
		ones -= 96
	}
	return netip.PrefixFrom(ip.Unmap(), ones), true
}

// source finds the source address as glibc does, by connecting a UDP
// socket to dst (which sends nothing) and reading its local address.
func (hostBackend) source(dst netip.AddrPort, zone uint32) (netip.Prefix, bool) {
	ua := net.UDPAddrFromAddrPort(dst)
	if zone != 0 {
		ua.Zone = strconv.FormatUint(uint64(zone), 10)
		if ifi, err := net.InterfaceByIndex(int(zone)); err == nil {
			ua.Zone = ifi.Name
		}
	}
	c, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		return netip.Prefix{}, false
	}
	defer c.Close()
	src := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().WithZone("")
	if dst.Addr().Is4() {
		src = src.Unmap()
	}
	return netip.PrefixFrom(src, hostPrefixLen(src)), true
}

// hostPrefixLen is the prefix length of the host interface address a.
func hostPrefixLen(a netip.Addr) int {
	addrs, _ := net.InterfaceAddrs()
	for _, ia := range addrs {
		if p, ok := prefixOf(ia); ok && p.Addr() == a {
			return p.Bits()
		}
	}
	return a.BitLen()
}

// domain is the local domain glibc's NI_NOFQDN strips: what follows the
// first dot of the host name, or of its canonical name.
func (b hostBackend) domain() string {
	name := b.nodename()
	if !strings.Contains(name, ".") {
		if c, err := net.DefaultResolver.LookupCNAME(context.Background(), name); err == nil {
			name = strings.TrimSuffix(c, ".")
		}
	}
	if _, d, ok := strings.Cut(name, "."); ok {
		return d
	}
	return ""
}

func (hostBackend) nodename() string {
	name, err := os.Hostname()
	if err != nil {
		return "localhost"
	}
	return name
}
