package relay

import (
	"net/netip"

	"github.com/ustack/ustack/stack"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// writeICMPError sends the namespace address to an ICMP error from from
// with typ and code (of to's family: ICMPv4 or ICMPv6) carrying quote,
// the start of the packet it answers. It reports whether it was sent.
//
// Every ICMP error the relay makes itself (unreachables, time exceeded)
// goes through here, and here it passes the stack's ICMP rate limiter
// (1000 a second, bursts of 50: gVisor's defaults, Linux's
// net.ipv4.icmp_msgs_per_sec and icmp_msgs_burst). gVisor's own errors
// pass it inside the stack; these are written with WriteRawPacket,
// which does not, so without this a program sending TTL-1 datagrams in
// a loop was answered one error per datagram. The ones held back are
// counted (stats "icmp_rate_limited"). Nothing is sent to a source
// mayAnswer refuses.
func (r *Relay) writeICMPError(from, to netip.Addr, typ, code uint8, quote []byte) bool {
	if !r.mayAnswer(to) {
		return false
	}
	if !r.gs.AllowICMPMessage() {
		r.c.icmpRateLimited.Add(1)
		return false
	}
	var pkt []byte
	if to.Is4() {
		pkt = make([]byte, header.IPv4MinimumSize+header.ICMPv4MinimumSize+len(quote))
		ip := header.IPv4(pkt)
		ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(pkt)), TTL: 64,
			Protocol: uint8(header.ICMPv4ProtocolNumber), SrcAddr: stack.Address(from), DstAddr: stack.Address(to)})
		ip.SetChecksum(^ip.CalculateChecksum())
		h := header.ICMPv4(pkt[header.IPv4MinimumSize:])
		h.SetType(header.ICMPv4Type(typ))
		h.SetCode(header.ICMPv4Code(code))
		copy(h.Payload(), quote)
		h.SetChecksum(^checksum.Checksum(h, 0))
	} else {
		pkt = make([]byte, header.IPv6MinimumSize+header.ICMPv6MinimumSize+len(quote))
		header.IPv6(pkt).Encode(&header.IPv6Fields{PayloadLength: uint16(len(pkt) - header.IPv6MinimumSize),
			TransportProtocol: header.ICMPv6ProtocolNumber, HopLimit: 64, SrcAddr: stack.Address(from), DstAddr: stack.Address(to)})
		h := header.ICMPv6(pkt[header.IPv6MinimumSize:])
		h.SetType(header.ICMPv6Type(typ))
		h.SetCode(header.ICMPv6Code(code))
		copy(h[header.ICMPv6MinimumSize:], quote)
		h.SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{Header: h, Src: stack.Address(from), Dst: stack.Address(to)}))
	}
	return r.gs.WriteRawPacket(r.nic, stack.Protocol(to), buffer.MakeWithData(pkt)) == nil
}

// limitedBroadcast is 255.255.255.255, the broadcast of every IPv4 link.
var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// mayAnswer reports whether an ICMP error may be sent to src, the source
// of the packet it answers. RFC 1122 3.2.2 and RFC 1812 4.3.2.7 forbid
// an error to a source that does not name one host (unspecified,
// multicast, broadcast), and Linux's icmp_send and icmpv6_send refuse
// them too. The gateway's own addresses and any address outside the
// namespace's subnet are not CMD's either: such a source was forged (a
// raw socket), and an error to it would go to nobody or be reflected.
func (r *Relay) mayAnswer(src netip.Addr) bool {
	nw := r.cfg.Network
	switch {
	case src.IsUnspecified(), src.IsMulticast(), src == limitedBroadcast, r.isOwn(src):
		return false
	case src.Is4():
		return nw.Prefix4.Contains(src) && src != lastAddr(nw.Prefix4)
	}
	return nw.Prefix6.Contains(src)
}

// lastAddr returns the last address of p: for an IPv4 prefix, its
// subnet's broadcast.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As16()
	off := 0
	if p.Addr().Is4() {
		off = 96
	}
	for i := p.Bits() + off; i < 128; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		a = a.Unmap()
	}
	return a
}
