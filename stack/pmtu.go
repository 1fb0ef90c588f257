package stack

import (
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Smallest path MTUs a "packet too big" may lower a path to: Linux's
// ip_rt_min_pmtu (512 + 20 + 20) for IPv4, IPv6's minimum link MTU (RFC
// 8200 §5) for IPv6.
const (
	minPathMTU4 = 552
	minPathMTU6 = minMTU6
)

// pmtuFloor wraps a NIC's link endpoint to raise the MTU of an inbound
// ICMPv4 "fragmentation needed" or ICMPv6 "packet too big" to the
// protocol's minimum path MTU. gVisor's TCP takes the announced MTU as it
// is: with 0 (a broken router, a gVisor router forwarding IPv6, or anyone
// who knows a connection's addresses and ports) the connection goes on in
// 1-byte segments, for good. Linux clamps IPv4 path MTUs at 552
// (__ip_rt_update_pmtu) and IPv6 ones at 1280 (__ip6_rt_update_pmtu; its
// TCP even ignores the message, tcp_v6_err).
//
// The cost is a look at the first bytes of each inbound packet; only a
// valid message announcing less than the minimum is copied and rewritten.
type pmtuFloor struct {
	nested.Endpoint
}

var (
	_ gstack.LinkEndpoint      = (*pmtuFloor)(nil)
	_ gstack.NetworkDispatcher = (*pmtuFloor)(nil)
)

func newPMTUFloor(child gstack.LinkEndpoint) *pmtuFloor {
	p := &pmtuFloor{}
	p.Endpoint.Init(child, p)
	return p
}

// DeliverNetworkPacket raises a too-small announced MTU, as described on
// the type, and passes every packet on.
func (p *pmtuFloor) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *gstack.PacketBuffer) {
	if !tooBigCandidate(proto, pkt) {
		p.Endpoint.DeliverNetworkPacket(proto, pkt)
		return
	}
	deliverRewritten(&p.Endpoint, proto, pkt, raisePathMTU)
}

// tooBigCandidate reports, from the first bytes alone, whether pkt may be
// an ICMP "too big" message (IPv6 without extension headers).
func tooBigCandidate(proto tcpip.NetworkProtocolNumber, pkt *gstack.PacketBuffer) bool {
	switch proto {
	case header.IPv4ProtocolNumber:
		h, ok := pkt.Data().PullUp(header.IPv4MinimumSize)
		if !ok || header.IPv4(h).Protocol() != uint8(header.ICMPv4ProtocolNumber) {
			return false
		}
		ihl := int(header.IPv4(h).HeaderLength())
		h, ok = pkt.Data().PullUp(ihl + header.ICMPv4MinimumSize)
		return ok && header.ICMPv4Type(h[ihl]) == header.ICMPv4DstUnreachable &&
			header.ICMPv4Code(h[ihl+1]) == header.ICMPv4FragmentationNeeded
	case header.IPv6ProtocolNumber:
		h, ok := pkt.Data().PullUp(header.IPv6MinimumSize + header.ICMPv6MinimumSize)
		return ok && header.IPv6(h).TransportProtocol() == header.ICMPv6ProtocolNumber &&
			header.ICMPv6Type(h[header.IPv6MinimumSize]) == header.ICMPv6PacketTooBig
	}
	return false
}

// raisePathMTU rewrites b, a whole inbound IP packet, if it is a valid
// (checksums correct) ICMP "too big" announcing less than the minimum
// path MTU, and reports whether it did.
func raisePathMTU(proto tcpip.NetworkProtocolNumber, b []byte) bool {
	switch proto {
	case header.IPv4ProtocolNumber:
		_, _, off, ok := transportOffset(proto, b, header.ICMPv4ProtocolNumber)
		if !ok {
			return false
		}
		icmp := header.ICMPv4(b[off:])
		if len(icmp) < header.ICMPv4MinimumSize || icmp.MTU() >= minPathMTU4 || checksum.Checksum(icmp, 0) != 0xffff {
			return false
		}
		icmp.SetMTU(minPathMTU4)
		icmp.SetChecksum(0)
		icmp.SetChecksum(^checksum.Checksum(icmp, 0))
		return true
	case header.IPv6ProtocolNumber:
		src, dst, off, ok := transportOffset(proto, b, header.ICMPv6ProtocolNumber)
		if !ok {
			return false
		}
		icmp := header.ICMPv6(b[off:])
		if len(icmp) < header.ICMPv6PacketTooBigMinimumSize || icmp.MTU() >= minPathMTU6 {
			return false
		}
		params := header.ICMPv6ChecksumParams{Header: icmp, Src: src, Dst: dst}
		if header.ICMPv6Checksum(params) != icmp.Checksum() {
			return false
		}
		icmp.SetMTU(minPathMTU6)
		icmp.SetChecksum(0)
		icmp.SetChecksum(header.ICMPv6Checksum(params))
		return true
	}
	return false
}
