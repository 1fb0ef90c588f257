package stack

import (
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// zeroWindowACKs wraps a NIC's link endpoint to keep a gVisor bug from
// stalling connections for good (docs/stall.md). gVisor rounds the window
// it keeps advertising down to the window-scale unit, so near a full
// receive buffer it advertises zero while the peer may still send a few
// bytes; it then drops every segment whose sequence number is not exactly
// RCV.NXT, including the pure ACKs the peer sends with its SND.NXT (Linux's
// tcp_acceptable_seq does so while SND.NXT is under one scale unit past the
// window), and with them the acknowledgements of gVisor's own data. A
// program whose read waits for its write then never reads again.
//
// While the stack advertises a zero window on a connection, a pure ACK
// (no data, SYN, FIN or RST) arriving with a sequence number less than
// 2^14 (the largest scale unit, RFC 7323) past the stack's last
// acknowledgement gets that acknowledgement as its sequence number, which
// gVisor accepts and whose ACK it processes. A pure ACK occupies no
// sequence space, so nothing else about it changes; segments carrying data
// are left alone and the peer retransmits them once the window reopens.
//
// The cost when no connection is at a zero window is one load per inbound
// packet and a header check per outbound TCP segment.
type zeroWindowACKs struct {
	nested.Endpoint

	mu    sync.Mutex // guards zero
	zero  map[flowKey]uint32
	nZero atomic.Int32 // len(zero), read without mu on the inbound path
}

// flowKey names a TCP connection from the stack's side.
type flowKey struct {
	local, remote tcpip.Address
	lport, rport  uint16
}

// maxZeroWindowFlows bounds the map against a flood of connections that
// close without the stack sending another segment.
const maxZeroWindowFlows = 1 << 16

func newZeroWindowACKs(child gstack.LinkEndpoint) *zeroWindowACKs {
	z := &zeroWindowACKs{zero: map[flowKey]uint32{}}
	z.Endpoint.Init(child, z)
	return z
}

var (
	_ gstack.LinkEndpoint      = (*zeroWindowACKs)(nil)
	_ gstack.NetworkDispatcher = (*zeroWindowACKs)(nil)
	_ gstack.GSOEndpoint       = (*zeroWindowACKs)(nil)
)

// WritePackets records, per connection, whether the stack's latest
// segment advertised a zero window and the acknowledgement it carried.
func (z *zeroWindowACKs) WritePackets(pkts gstack.PacketBufferList) (int, tcpip.Error) {
	for _, pkt := range pkts.AsSlice() {
		z.noteOutbound(pkt)
	}
	return z.Endpoint.WritePackets(pkts)
}

func (z *zeroWindowACKs) noteOutbound(pkt *gstack.PacketBuffer) {
	if pkt.TransportProtocolNumber != header.TCPProtocolNumber {
		return
	}
	tcp := header.TCP(pkt.TransportHeader().Slice())
	if len(tcp) < header.TCPMinimumSize {
		return
	}
	flags := tcp.Flags()
	zero := tcp.WindowSize() == 0 && flags&(header.TCPFlagSyn|header.TCPFlagFin|header.TCPFlagRst) == 0
	if !zero && z.nZero.Load() == 0 {
		return
	}
	src, dst, ok := netAddrs(pkt.NetworkProtocolNumber, pkt.NetworkHeader().Slice())
	if !ok {
		return
	}
	k := flowKey{local: src, remote: dst, lport: tcp.SourcePort(), rport: tcp.DestinationPort()}
	z.mu.Lock()
	defer z.mu.Unlock()
	switch _, had := z.zero[k]; {
	case zero && (had || len(z.zero) < maxZeroWindowFlows):
		z.zero[k] = tcp.AckNumber()
	case !zero && had:
		delete(z.zero, k)
	}
	z.nZero.Store(int32(len(z.zero)))
}

// DeliverNetworkPacket rewrites, as described on the type, the sequence
// number of a pure ACK gVisor would otherwise drop.
func (z *zeroWindowACKs) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *gstack.PacketBuffer) {
	// 60-byte IPv4 or 40-byte IPv6 header plus a 60-byte TCP header at most.
	if z.nZero.Load() == 0 || pkt.Data().Size() > 120 {
		z.Endpoint.DeliverNetworkPacket(proto, pkt)
		return
	}
	deliverRewritten(&z.Endpoint, proto, pkt, z.fixACK)
}

// fixACK rewrites b, an inbound IP packet, if it is a pure ACK to clamp,
// and reports whether it did.
func (z *zeroWindowACKs) fixACK(proto tcpip.NetworkProtocolNumber, b []byte) bool {
	src, dst, tcpOff, ok := transportOffset(proto, b, header.TCPProtocolNumber)
	if !ok {
		return false
	}
	tcp := header.TCP(b[tcpOff:])
	if len(tcp) < header.TCPMinimumSize || int(tcp.DataOffset()) != len(tcp) ||
		tcp.Flags()&^header.TCPFlagPsh != header.TCPFlagAck {
		return false
	}
	k := flowKey{local: dst, remote: src, lport: tcp.DestinationPort(), rport: tcp.SourcePort()}
	z.mu.Lock()
	rcvNxt, ok := z.zero[k]
	z.mu.Unlock()
	if ahead := tcp.SequenceNumber() - rcvNxt; !ok || ahead == 0 || ahead >= 1<<14 {
		return false
	}
	tcp.SetSequenceNumber(rcvNxt)
	tcp.SetChecksum(0)
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(len(tcp)))
	tcp.SetChecksum(^checksum.Checksum(tcp, xsum))
	return true
}

// netAddrs returns the source and destination of an IP header.
func netAddrs(proto tcpip.NetworkProtocolNumber, nh []byte) (src, dst tcpip.Address, ok bool) {
	switch {
	case proto == header.IPv4ProtocolNumber && len(nh) >= header.IPv4MinimumSize:
		ip := header.IPv4(nh)
		return ip.SourceAddress(), ip.DestinationAddress(), true
	case proto == header.IPv6ProtocolNumber && len(nh) >= header.IPv6MinimumSize:
		ip := header.IPv6(nh)
		return ip.SourceAddress(), ip.DestinationAddress(), true
	}
	return tcpip.Address{}, tcpip.Address{}, false
}
