package tun

import (
	"net/netip"
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/stack"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// TestVnetMalformedDropped: packets with a bad or unsupported virtio-net
// header never reach the stack and are counted, and the endpoint goes on.
func TestVnetMalformedDropped(t *testing.T) {
	leakcheck.Check(t)
	k := newDouble(t, stack.TCPConfig{})
	syn := tcpSpec{
		src: netip.AddrPortFrom(hostV4.Addr(), 40000), dst: netip.AddrPortFrom(stackV4.Addr(), 9),
		seq: 1, flags: header.TCPFlagSyn, partial: true,
	}.build()
	synFull := tcpSpec{
		src: netip.AddrPortFrom(hostV4.Addr(), 40000), dst: netip.AddrPortFrom(stackV4.Addr(), 9),
		seq: 1, flags: header.TCPFlagSyn,
	}.build()
	badSum := append([]byte(nil), synFull...)
	badSum[len(badSum)-4] ^= 0x40 // flip a bit in the TCP window field
	synV6 := tcpSpec{
		src: netip.AddrPortFrom(hostV6.Addr(), 40000), dst: netip.AddrPortFrom(stackV6.Addr(), 9),
		seq: 1, flags: header.TCPFlagSyn, partial: true,
	}.build()
	gso := virtioHdr{flags: virtioFlagNeedsCsum, gsoType: virtioGSOTCPv4, hdrLen: 40, gsoSize: 1460, csumStart: 20, csumOffset: 16}
	with := func(f func(*virtioHdr)) virtioHdr { h := gso; f(&h); return h }
	msg := func(h virtioHdr, pkt []byte) []byte {
		b := make([]byte, virtioNetHdrLen+len(pkt))
		h.encode(b)
		copy(b[virtioNetHdrLen:], pkt)
		return b
	}
	for _, tc := range []struct {
		name    string
		msg     []byte
		counter uint64Counter
	}{
		{"shorter than header", []byte{1, 2, 3, 4, 5}, &k.ep.Malformed},
		{"header only", msg(virtioHdr{}, nil), &k.ep.Malformed},
		{"not IP", msg(virtioHdr{}, append([]byte{0x50}, synFull[1:]...)), &k.ep.Malformed},
		{"unknown flag", msg(virtioHdr{flags: 4}, synFull), &k.ep.Malformed},
		{"gso_type UDP", msg(with(func(h *virtioHdr) { h.gsoType = virtioGSOUDP }), syn), &k.ep.Malformed},
		{"gso_type undefined", msg(with(func(h *virtioHdr) { h.gsoType = 2 }), syn), &k.ep.Malformed},
		{"gso_type ECN alone", msg(with(func(h *virtioHdr) { h.gsoType = virtioGSOECN }), syn), &k.ep.Malformed},
		{"TCPV6 on IPv4", msg(with(func(h *virtioHdr) { h.gsoType = virtioGSOTCPv6 }), syn), &k.ep.Malformed},
		{"TCPV4 on IPv6", msg(with(func(h *virtioHdr) { h.csumStart = 40; h.hdrLen = 60 }), synV6), &k.ep.Malformed},
		{"GSO without NEEDS_CSUM", msg(with(func(h *virtioHdr) { h.flags = 0 }), syn), &k.ep.Malformed},
		{"gso_size 0", msg(with(func(h *virtioHdr) { h.gsoSize = 0 }), syn), &k.ep.Malformed},
		{"hdr_len beyond packet", msg(with(func(h *virtioHdr) { h.hdrLen = uint16(len(syn) + 1) }), syn), &k.ep.Malformed},
		{"csum_start beyond packet", msg(with(func(h *virtioHdr) { h.csumStart = uint16(len(syn)) }), syn), &k.ep.Malformed},
		{"csum field beyond packet", msg(virtioHdr{flags: virtioFlagNeedsCsum, csumStart: 20, csumOffset: uint16(len(syn) - 21)}, syn), &k.ep.Malformed},
		{"csum_start inside IP header", msg(virtioHdr{flags: virtioFlagNeedsCsum, csumStart: 4, csumOffset: 16}, syn), &k.ep.Malformed},
		{"GSO csum_offset not TCP's", msg(with(func(h *virtioHdr) { h.csumOffset = 6 }), syn), &k.ep.Malformed},
		{"GSO on ICMP", msg(gso, icmpEcho(7)), &k.ep.Malformed},
		{"truncated by the read buffer", msg(virtioHdr{}, make([]byte, rxChunk+rxTail+100)), &k.ep.Malformed},
		{"unverified bad checksum", msg(virtioHdr{}, badSum), &k.ep.BadChecksum},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.counter.Load()
			k.sendRaw(tc.msg)
			k.probe(t)
			if got := tc.counter.Load(); got != before+1 {
				t.Errorf("counter went from %d to %d, want +1", before, got)
			}
		})
	}
}

type uint64Counter = interface{ Load() uint64 }

// probe sends an echo request and waits for its reply. The endpoint reads
// in order, so once the reply arrives, everything sent before it has been
// handled; a packet that was delivered instead of dropped shows up here as
// a reply (RST, SYN-ACK, echo reply) before the probe's.
func (k *kernelDouble) probe(t *testing.T) {
	t.Helper()
	const id = 0xbeef
	k.send(virtioHdr{}, icmpEcho(id))
	for {
		_, pkt := k.recv()
		ipLen, proto := ipHeaderOf(pkt)
		switch proto {
		case header.ICMPv4ProtocolNumber:
			if icmp := header.ICMPv4(pkt[ipLen:]); icmp.Type() == header.ICMPv4EchoReply && icmp.Ident() == id {
				return
			}
			t.Errorf("stack sent ICMP %v before the probe's reply: the bad packet was delivered", header.ICMPv4(pkt[ipLen:]).Type())
		case header.TCPProtocolNumber:
			t.Errorf("stack answered with TCP flags %v: the bad packet was delivered", header.TCP(pkt[ipLen:]).Flags())
		}
	}
}

// TestVnetDataValidTrusted: a packet the kernel marked DATA_VALID is
// delivered even though its checksum field is wrong (the kernel vouches
// for the data), while the same packet with no flag is dropped.
func TestVnetDataValidTrusted(t *testing.T) {
	leakcheck.Check(t)
	k := newDouble(t, stack.TCPConfig{})
	syn := tcpSpec{
		src: netip.AddrPortFrom(hostV4.Addr(), 40001), dst: netip.AddrPortFrom(stackV4.Addr(), 9),
		seq: 1, flags: header.TCPFlagSyn,
	}.build()
	syn[len(syn)-4] ^= 0x40
	k.send(virtioHdr{flags: virtioFlagDataValid}, syn)
	_, _, rst := k.recvTCP(40001)
	if !rst.Flags().Contains(header.TCPFlagRst) {
		t.Errorf("stack answered a SYN to a closed port with %v, want RST", rst.Flags())
	}
}
