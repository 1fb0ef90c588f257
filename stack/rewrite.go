package stack

import (
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// The inbound rewrites of the link-endpoint wrappers (zeroWindowACKs,
// pmtuFloor) share these helpers, so that what a rewritten packet keeps of
// the original, and which packets they dare rewrite, cannot drift apart.

// deliverRewritten passes pkt up through ep, or, if rewrite changed a copy
// of pkt's bytes (it reports whether it did), that copy in its place with
// the metadata the layers above read from the original. pkt itself is
// left as it is.
func deliverRewritten(ep *nested.Endpoint, proto tcpip.NetworkProtocolNumber, pkt *gstack.PacketBuffer, rewrite func(tcpip.NetworkProtocolNumber, []byte) bool) {
	b := pkt.Data().AsRange().ToSlice()
	if !rewrite(proto, b) {
		ep.DeliverNetworkPacket(proto, pkt)
		return
	}
	fixed := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
	fixed.NICID = pkt.NICID
	fixed.PktType = pkt.PktType
	fixed.NetworkProtocolNumber = pkt.NetworkProtocolNumber
	ep.DeliverNetworkPacket(proto, fixed)
	fixed.DecRef()
}

// transportOffset finds the header of transport protocol want in b, a
// whole unfragmented IP packet without extension headers, whose lengths
// agree with len(b); it returns the packet's addresses and the header's
// offset in b.
func transportOffset(proto tcpip.NetworkProtocolNumber, b []byte, want tcpip.TransportProtocolNumber) (src, dst tcpip.Address, off int, ok bool) {
	switch proto {
	case header.IPv4ProtocolNumber:
		ip := header.IPv4(b)
		if !ip.IsValid(len(b)) || ip.TransportProtocol() != want ||
			ip.More() || ip.FragmentOffset() != 0 || int(ip.TotalLength()) != len(b) {
			return src, dst, 0, false
		}
		return ip.SourceAddress(), ip.DestinationAddress(), int(ip.HeaderLength()), true
	case header.IPv6ProtocolNumber:
		ip := header.IPv6(b)
		if !ip.IsValid(len(b)) || ip.TransportProtocol() != want ||
			header.IPv6MinimumSize+int(ip.PayloadLength()) != len(b) {
			return src, dst, 0, false
		}
		return ip.SourceAddress(), ip.DestinationAddress(), header.IPv6MinimumSize, true
	}
	return src, dst, 0, false
}
