// Package l4sum finds and checks the TCP or UDP checksum of a raw IPv4 or
// IPv6 packet, for the places that see packets as bytes: the TUN
// endpoint verifying what gVisor will not, and the pcap capture filling in
// checksums that offload left partial.
package l4sum

import (
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// Segment is the transport part of a packet: its protocol, the addresses
// of its pseudo-header, and its header and payload (a slice of the packet).
type Segment struct {
	Proto    tcpip.TransportProtocolNumber
	Src, Dst tcpip.Address
	Bytes    []byte
}

// Find returns the TCP or UDP segment of pkt, an IPv4 or IPv6 packet
// whose lengths fit in pkt. It reports false for anything whose checksum
// cannot be judged from pkt alone: another protocol, a fragment, an IPv6
// extension header, a truncated or malformed packet, or an IPv4 UDP
// datagram sent without a checksum (RFC 768).
func Find(pkt []byte) (Segment, bool) {
	var s Segment
	if len(pkt) == 0 {
		return s, false
	}
	switch header.IPVersion(pkt) {
	case header.IPv4Version:
		if len(pkt) < header.IPv4MinimumSize {
			return s, false
		}
		ip := header.IPv4(pkt)
		hl, tl := int(ip.HeaderLength()), int(ip.TotalLength())
		if hl < header.IPv4MinimumSize || tl < hl || tl > len(pkt) || ip.More() || ip.FragmentOffset() != 0 {
			return s, false
		}
		s = Segment{ip.TransportProtocol(), ip.SourceAddress(), ip.DestinationAddress(), pkt[hl:tl]}
	case header.IPv6Version:
		if len(pkt) < header.IPv6MinimumSize {
			return s, false
		}
		ip := header.IPv6(pkt)
		pl := int(ip.PayloadLength())
		if header.IPv6MinimumSize+pl > len(pkt) {
			return s, false
		}
		s = Segment{ip.TransportProtocol(), ip.SourceAddress(), ip.DestinationAddress(), pkt[header.IPv6MinimumSize:][:pl]}
	default:
		return s, false
	}
	switch s.Proto {
	case header.TCPProtocolNumber:
		return s, len(s.Bytes) >= header.TCPMinimumSize
	case header.UDPProtocolNumber:
		if len(s.Bytes) < header.UDPMinimumSize {
			return s, false
		}
		return s, !(s.Src.Len() == 4 && header.UDP(s.Bytes).Checksum() == 0)
	}
	return s, false
}

// Valid reports whether the segment's checksum is correct.
func (s Segment) Valid() bool {
	return checksum.Checksum(s.Bytes, s.pseudo()) == 0xffff
}

// Complete stores the segment's correct checksum in place.
func (s Segment) Complete() {
	if s.Proto == header.TCPProtocolNumber {
		t := header.TCP(s.Bytes)
		t.SetChecksum(0)
		t.SetChecksum(^checksum.Checksum(s.Bytes, s.pseudo()))
		return
	}
	u := header.UDP(s.Bytes)
	u.SetChecksum(0)
	sum := ^checksum.Checksum(s.Bytes, s.pseudo())
	if sum == 0 {
		sum = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	u.SetChecksum(sum)
}

func (s Segment) pseudo() uint16 {
	return header.PseudoHeaderChecksum(s.Proto, s.Src, s.Dst, uint16(len(s.Bytes)))
}
