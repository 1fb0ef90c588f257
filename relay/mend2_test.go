package relay

import (
	"net/netip"
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// echo4 builds an ICMPv4 echo request with a right checksum.
func echo4(ident, seq uint16) []byte {
	b := make([]byte, header.ICMPv4MinimumSize+4)
	h := header.ICMPv4(b)
	h.SetType(header.ICMPv4Echo)
	h.SetIdent(ident)
	h.SetSequence(seq)
	copy(h.Payload(), "ping")
	h.SetChecksum(^checksum.Checksum(b, 0))
	return b
}

// TestPingSubnetBroadcastNotRelayed: an echo request to the namespace
// subnet's broadcast (10.0.2.255) is the router's own broadcast, as a
// datagram to it is (TestRunSubnetBroadcastNotRelayed); it was relayed,
// and the host pinged 10.0.2.255 as if it were a unicast destination out
// there. The pipe delivers synchronously, so the counters are final when
// the write returns.
func TestPingSubnetBroadcastNotRelayed(t *testing.T) {
	leakcheck.Check(t)
	h := newHarness(t, Config{})
	h.sendRaw4(t, ip4Packet(netip.MustParseAddr("10.0.2.255"), uint8(header.ICMPv4ProtocolNumber), echo4(7, 1), nil))
	if s := h.r.Stats(); s.ICMPEchoSent != 0 || s.ICMPFailed != 0 {
		t.Errorf("echo request to 10.0.2.255: icmp_echo_sent %d, icmp_failed %d; want 0, 0 (not relayed)", s.ICMPEchoSent, s.ICMPFailed)
	}
}
