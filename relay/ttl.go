package relay

import (
	"github.com/ustack/ustack/stack"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// expired answers a packet from the namespace that would leave through
// the gateway with its TTL (IPv6: hop limit) spent, as the router the
// gateway stands for does (RFC 1812 5.3.1, RFC 4443 3.3; Linux
// ip_forward and ip6_forward): an ICMP time exceeded from the gateway,
// quoting the packet, which is not relayed. traceroute then finds the
// gateway at hop 1 (and the destination at hop 2: the relay's host
// sockets send with the host's own TTL), where it found the destination
// itself at hop 1. Packets to the stack's own addresses are delivered
// whatever their TTL, as a router's own are, and broadcasts are never
// answered. It reports whether it answered.
func (r *Relay) expired(pkt *gstack.PacketBuffer) bool {
	nh := pkt.NetworkHeader().Slice()
	var ttl uint8
	var src, dst tcpip.Address
	switch pkt.NetworkProtocolNumber {
	case header.IPv4ProtocolNumber:
		if len(nh) < header.IPv4MinimumSize {
			return false
		}
		ip := header.IPv4(nh)
		ttl, src, dst = ip.TTL(), ip.SourceAddress(), ip.DestinationAddress()
	case header.IPv6ProtocolNumber:
		if len(nh) < header.IPv6MinimumSize {
			return false
		}
		ip := header.IPv6(nh)
		ttl, src, dst = ip.HopLimit(), ip.SourceAddress(), ip.DestinationAddress()
	default:
		return false
	}
	if ttl > 1 {
		return false // nearly every packet: no address conversion for it
	}
	// No ICMP error ever answers a broadcast or multicast datagram
	// (RFC 1122 3.2.2; Linux icmp_send), and one that reaches the
	// forwarders is not relayed anyway.
	a := stack.AddrOf(dst)
	if r.isOwn(a) || a.IsMulticast() || a == limitedBroadcast || subnetBroadcast(pkt) {
		return false
	}
	quote := errorQuote(pkt)
	to := stack.AddrOf(src)
	sent := false
	if to.Is4() {
		sent = r.writeICMPError(r.cfg.gateway4, to, uint8(header.ICMPv4TimeExceeded), uint8(header.ICMPv4TTLExceeded), quote)
	} else {
		sent = r.writeICMPError(r.cfg.gateway6, to, uint8(header.ICMPv6TimeExceeded), uint8(header.ICMPv6HopLimitExceeded), quote)
	}
	if sent {
		r.c.timeExceeded.Add(1) // counted, not logged: one line per packet would let CMD flood the log
	}
	return true
}

// errorQuote returns what an ICMP error answering pkt quotes: the packet
// from its IP header on, extension headers and payload included, as much
// as fits in an error of 576 bytes (IPv4) or 1280 (IPv6), as Linux
// (icmp_send, icmp6_send) and gVisor's own errors (returnError) quote
// (RFC 1812 4.3.2.3, RFC 4443 2.4(c)).
func errorQuote(pkt *gstack.PacketBuffer) []byte {
	v := gstack.PayloadSince(pkt.NetworkHeader())
	defer v.Release()
	max := header.IPv4MinimumProcessableDatagramSize - header.IPv4MinimumSize - header.ICMPv4MinimumSize
	if pkt.NetworkProtocolNumber == header.IPv6ProtocolNumber {
		max = header.IPv6MinimumMTU - header.IPv6MinimumSize - header.ICMPv6MinimumSize
	}
	b := v.AsSlice()
	if len(b) > max {
		b = b[:max]
	}
	return append([]byte(nil), b...)
}

// subnetBroadcast reports whether pkt is addressed to the broadcast
// address of the namespace's subnet (10.0.2.255 by default; the last
// address of Config.Network's Prefix4). A router takes such a
// datagram as its own broadcast and forwards nothing (Linux drops a TCP
// segment to it, tcp_v4_rcv); the relay dialled it on the host as if it
// were a unicast destination there.
func subnetBroadcast(pkt *gstack.PacketBuffer) bool {
	return pkt.NetworkPacketInfo.LocalAddressBroadcast
}
