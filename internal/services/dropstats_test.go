package services

import (
	"net/netip"
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/stack"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

var (
	nicAddr  = tcpip.AddrFrom4([4]byte{10, 99, 0, 2})
	peerAddr = tcpip.AddrFrom4([4]byte{10, 99, 0, 1})
)

// ipv4Packet builds an IPv4 packet with a valid header checksum.
func ipv4Packet(src, dst tcpip.Address, proto tcpip.TransportProtocolNumber, payload []byte) []byte {
	b := make([]byte, header.IPv4MinimumSize+len(payload))
	ip := header.IPv4(b)
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(len(b)), TTL: 64, Protocol: uint8(proto),
		SrcAddr: src, DstAddr: dst, ID: 7,
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	copy(b[header.IPv4MinimumSize:], payload)
	return b
}

// injectIPv4 hands the IPv4 packet b to the stack as if link read it.
func injectIPv4(link *channel.Endpoint, b []byte) {
	p := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
	link.InjectInbound(header.IPv4ProtocolNumber, p)
	p.DecRef()
}

func udpDatagram(src, dst tcpip.Address, sport, dport uint16, data []byte) []byte {
	b := make([]byte, header.UDPMinimumSize+len(data))
	u := header.UDP(b)
	u.Encode(&header.UDPFields{SrcPort: sport, DstPort: dport, Length: uint16(len(b))})
	copy(b[header.UDPMinimumSize:], data)
	sum := header.PseudoHeaderChecksum(header.UDPProtocolNumber, src, dst, uint16(len(b)))
	u.SetChecksum(^checksum.Checksum(b, sum))
	return b
}

// TestStatusShowsStackDrops: packets from the device that the stack drops
// itself must show as drops on the status page, not only as received: a
// spoofed source that is the stack's own address (an echo loop through
// UDP echo if it were accepted) and an ICMP message with a bad checksum.
// Before, each moved IP.PacketsReceived and nothing else on the page.
// startOnLink starts the services on a stack whose NIC tun0, with
// 10.99.0.2/24, is an in-memory link the test writes packets into and
// reads the stack's packets from, with routes besides; everything ends
// with the test.
func startOnLink(t *testing.T, routes ...stack.Route) (*channel.Endpoint, *stack.Stack) {
	t.Helper()
	link := channel.New(64, 1500, "")
	st, err := stack.New(stack.Config{
		NICs:   []stack.NICConfig{{Name: "tun0", Endpoint: link, Addrs: []netip.Prefix{netip.MustParsePrefix("10.99.0.2/24")}}},
		Routes: routes,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	srv, err := Start(Config{Stack: st, Addrs: []netip.Addr{lo4, netip.MustParseAddr("10.99.0.2")}, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return link, st
}

func TestStatusShowsStackDrops(t *testing.T) {
	leakcheck.Check(t)
	link, st := startOnLink(t)
	inject := func(pkt []byte) { injectIPv4(link, pkt) }

	// UDP echo to itself: source 10.99.0.2:7.
	for range 2 {
		inject(ipv4Packet(nicAddr, nicAddr, header.UDPProtocolNumber, udpDatagram(nicAddr, nicAddr, PortEcho, PortEcho, []byte("loop"))))
	}
	// An echo request whose checksum is wrong.
	icmp := header.ICMPv4(make([]byte, header.ICMPv4MinimumSize+4))
	icmp.SetType(header.ICMPv4Echo)
	icmp.SetChecksum(0x1234)
	inject(ipv4Packet(peerAddr, nicAddr, header.ICMPv4ProtocolNumber, icmp))

	hc := httpClient(st)
	var got struct {
		Stats struct {
			IP   map[string]uint64
			ICMP map[string]uint64
		} `json:"stats"`
	}
	getStatus(t, hc, []string{
		`(?m)^IP\.InvalidSource +2$`,
		`(?m)^ICMP\.Invalid +1$`,
		`(?m)^UDP\.PacketsReceived +0$`, // the loop never started
	}, &got)
	if got.Stats.IP["InvalidSource"] != 2 || got.Stats.ICMP["Invalid"] != 1 {
		t.Errorf("stats.json: IP %v, ICMP %v; want InvalidSource 2, ICMP Invalid 1", got.Stats.IP, got.Stats.ICMP)
	}
}
