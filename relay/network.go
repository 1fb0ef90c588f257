package relay

import (
	"errors"
	"fmt"
	"net/netip"
)

// Network is the addressing of the link between the namespace and the
// stack: one prefix per family, laid out as slirp4netns lays out its
// --cidr (slirp4netns(1)): the gateway at network+2, the DNS forwarder at
// network+3, the namespace at network+100 (IPv4) or network+0x100 (IPv6,
// as fd00::100). The zero value is DefaultNetwork.
type Network struct {
	Prefix4 netip.Prefix // 10.0.2.0/24 by default
	Prefix6 netip.Prefix // fd00::/64 by default
}

// The default prefixes: slirp4netns's.
var (
	DefaultPrefix4 = netip.MustParsePrefix("10.0.2.0/24")
	DefaultPrefix6 = netip.MustParsePrefix("fd00::/64")
)

// DefaultNetwork is the network of DefaultGateway4 and the others.
var DefaultNetwork = Network{Prefix4: DefaultPrefix4, Prefix6: DefaultPrefix6}

// Host parts of the addresses in a Network's prefixes.
const (
	hostGateway = 2
	hostDNS     = 3
	hostGuest4  = 100   // 10.0.2.100
	hostGuest6  = 0x100 // fd00::100
)

// orDefault fills zero prefixes with the defaults.
func (n Network) orDefault() Network {
	if !n.Prefix4.IsValid() {
		n.Prefix4 = DefaultPrefix4
	}
	if !n.Prefix6.IsValid() {
		n.Prefix6 = DefaultPrefix6
	}
	return n
}

// Gateway4 is the IPv4 gateway, network+2 (10.0.2.2).
func (n Network) Gateway4() netip.Addr { return addHost(n.orDefault().Prefix4, hostGateway) }

// DNS4 is the IPv4 DNS forwarder, network+3 (10.0.2.3).
func (n Network) DNS4() netip.Addr { return addHost(n.orDefault().Prefix4, hostDNS) }

// Guest4 is the namespace's IPv4 address, network+100 (10.0.2.100).
func (n Network) Guest4() netip.Addr { return addHost(n.orDefault().Prefix4, hostGuest4) }

// Gateway6 is the IPv6 gateway, network+2 (fd00::2).
func (n Network) Gateway6() netip.Addr { return addHost(n.orDefault().Prefix6, hostGateway) }

// DNS6 is the IPv6 DNS forwarder, network+3 (fd00::3).
func (n Network) DNS6() netip.Addr { return addHost(n.orDefault().Prefix6, hostDNS) }

// Guest6 is the namespace's IPv6 address, network+0x100 (fd00::100).
func (n Network) Guest6() netip.Addr { return addHost(n.orDefault().Prefix6, hostGuest6) }

// Bits4 and Bits6 are the prefix lengths the addresses are configured
// with.
func (n Network) Bits4() int { return n.orDefault().Prefix4.Bits() }

// Bits6: see Bits4.
func (n Network) Bits6() int { return n.orDefault().Prefix6.Bits() }

// addHost returns p's network address plus h.
func addHost(p netip.Prefix, h uint32) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := len(b) - 1; i >= 0 && h > 0; i-- {
		sum := uint32(b[i]) + h&0xff
		b[i] = byte(sum)
		h = h>>8 + sum>>8
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// CheckPrefix reports why p cannot be a Network prefix, or nil. p must
// be a network address (no host bits set: 10.0.3.0/24, not
// 10.0.3.100/24, which could be read as asking for the namespace's
// address), leave room for the namespace's address and, for IPv4, the
// broadcast address after it (/25 or shorter; IPv6 /119 or shorter), and
// overlap no loopback, unspecified, multicast or link-local range, whose
// addresses mean something else on every host and are never relayed.
//
// Any other range is accepted, public and shared (100.64.0.0/10) ones
// included, as slirp4netns's --cidr accepts them (its parse_cidr checks
// only the length and the host bits): the relay hides only the gateway,
// the DNS forwarder, the namespace's own address and the subnet's
// broadcast from the namespace; every other address of the prefix is
// relayed to the real host of that address (Relay.target).
func CheckPrefix(p netip.Prefix) error {
	a := p.Addr()
	switch {
	case !p.IsValid():
		return errors.New("not a prefix")
	case a.Is4In6():
		return errors.New("an IPv4-mapped IPv6 prefix; write the IPv4 one")
	case a.Zone() != "":
		return errors.New("a zone is not part of a prefix")
	case p.Masked() != p:
		return fmt.Errorf("host bits set: the network is %v (the namespace gets network+%s)", p.Masked(), guestPart(a))
	}
	hostBits := a.BitLen() - p.Bits()
	if need := minHostBits(a); hostBits < need {
		return fmt.Errorf("/%d is too small for the namespace's address network+%s; want /%d or shorter", p.Bits(), guestPart(a), a.BitLen()-need)
	}
	for _, r := range reservedRanges {
		if p.Overlaps(r.prefix) {
			return fmt.Errorf("overlaps the %s range %v", r.what, r.prefix)
		}
	}
	return nil
}

// reservedRanges are the ranges a Network prefix must not overlap: their
// addresses are the host's own or never routed (RFC 6890's table,
// RFC 4291 section 2.4).
var reservedRanges = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified (this network)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("255.255.255.255/32"), "limited broadcast"},
	{netip.MustParsePrefix("::/127"), "unspecified and loopback"},
	{netip.MustParsePrefix("::ffff:0:0/96"), "IPv4-mapped"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

func guestPart(a netip.Addr) string {
	if a.Is4() {
		return "100"
	}
	return "0x100"
}

// minHostBits is how many host bits hold the namespace's address and
// (IPv4) the broadcast address above it: 100 < 127 in 7 bits, 0x100 in 9.
func minHostBits(a netip.Addr) int {
	if a.Is4() {
		return 7
	}
	return 9
}
