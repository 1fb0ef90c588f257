package relay

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/stack"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
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

// udp4 builds a UDP datagram from port 40000 to port with no checksum
// (allowed on IPv4).
func udp4(port uint16, payload string) []byte {
	b := make([]byte, header.UDPMinimumSize+len(payload))
	header.UDP(b).Encode(&header.UDPFields{SrcPort: 40000, DstPort: port, Length: uint16(len(b))})
	copy(b[header.UDPMinimumSize:], payload)
	return b
}

// TestTimeExceededRateLimited: the relay's own ICMP errors pass the
// stack's ICMP rate limit (burst 50, then 1000 a second, as Linux's
// icmp_msgs_burst and icmp_msgs_per_sec) and are counted, not logged one
// line each. A program sending TTL-1 datagrams in a loop got one time
// exceeded and one log line per datagram (200 for 200).
func TestTimeExceededRateLimited(t *testing.T) {
	leakcheck.Check(t)
	h := newHarness(t, Config{})
	var logged atomic.Int64
	h.r.cfg.Logf = func(string, ...any) { logged.Add(1) } // before any traffic: nothing logs yet
	const n = 500                                         // at most 50 + 1000/s of them answered: far fewer, even slowed down
	ttl1 := func(ip header.IPv4) { ip.SetTTL(1) }
	for i := 0; i < n; i++ {
		h.sendRaw4(t, ip4Packet(netip.MustParseAddr("192.0.2.1"), uint8(header.UDPProtocolNumber), udp4(33434, "probe"), ttl1))
	}
	s := h.r.Stats()
	if s.TimeExceeded == 0 || s.ICMPRateLimited == 0 || s.TimeExceeded+s.ICMPRateLimited != n {
		t.Errorf("%d TTL-1 datagrams: time_exceeded %d, icmp_rate_limited %d; want both > 0, summing to %d", n, s.TimeExceeded, s.ICMPRateLimited, n)
	}
	if logged.Load() != 0 {
		t.Errorf("%d TTL-1 datagrams logged %d lines; want none (counted instead)", n, logged.Load())
	}
}

// TestNoICMPErrorToForbiddenSource: no ICMP error is sent to a source
// RFC 1122 3.2.2 and RFC 1812 4.3.2.7 forbid (Linux icmp_send and
// icmpv6_send refuse them too): the unspecified address, the gateway's
// own addresses, the subnet's broadcast, or an address outside the
// namespace's subnet (a spoofed one). Time exceeded answered each of
// them, checking only the destination.
func TestNoICMPErrorToForbiddenSource(t *testing.T) {
	leakcheck.Check(t)
	h := newHarness(t, Config{})
	dst := netip.MustParseAddr("192.0.2.1")
	for _, src := range []string{"0.0.0.0", "10.0.2.2", "10.0.2.3", "10.0.2.255", "192.0.2.9"} {
		from := netip.MustParseAddr(src)
		before := h.r.Stats().TimeExceeded
		h.sendRaw4(t, ip4Packet(dst, uint8(header.UDPProtocolNumber), udp4(33434, "probe"), func(ip header.IPv4) {
			ip.SetTTL(1)
			ip.SetSourceAddress(stack.Address(from))
		}))
		if got := h.r.Stats().TimeExceeded; got != before {
			t.Errorf("TTL-1 datagram from %v: time exceeded sent; want none", from)
		}
	}
	// The namespace's own address is answered.
	h.sendRaw4(t, ip4Packet(dst, uint8(header.UDPProtocolNumber), udp4(33434, "probe"), func(ip header.IPv4) { ip.SetTTL(1) }))
	if got := h.r.Stats().TimeExceeded; got != 1 {
		t.Errorf("TTL-1 datagram from %v: time_exceeded %d; want 1", DefaultGuest4, got)
	}
}

func TestLastAddr(t *testing.T) {
	for _, tc := range []struct{ p, want string }{
		{"10.0.2.0/24", "10.0.2.255"},
		{"10.1.0.0/16", "10.1.255.255"},
		{"192.168.7.8/30", "192.168.7.11"},
		{"fd00::/64", "fd00::ffff:ffff:ffff:ffff"},
	} {
		if got := lastAddr(netip.MustParsePrefix(tc.p)); got != netip.MustParseAddr(tc.want) {
			t.Errorf("lastAddr(%s) = %v, want %s", tc.p, got, tc.want)
		}
	}
}

// TestDNSFailoverStopsOnClose: a TCP query to the forwarder whose
// upstream dial is cut short by Close is not a failed upstream. The
// cancelled dial (context.Canceled: neither a reset nor a timeout) marked
// each upstream failed in turn and dialled the next, while the relay was
// shutting down.
func TestDNSFailoverStopsOnClose(t *testing.T) {
	leakcheck.Check(t)
	a, b := netip.MustParseAddrPort("192.0.2.1:53"), netip.MustParseAddrPort("192.0.2.2:53")
	dialing := make(chan struct{}, 8)
	var dials atomic.Int64
	h := newHarness(t, Config{DNSUpstreams: []netip.AddrPort{a, b}, DialTimeout: 10 * time.Second,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			dials.Add(1)
			dialing <- struct{}{}
			<-ctx.Done() // an upstream that never answers
			return nil, ctx.Err()
		}})
	h.sendSpoofedSYN(t, netip.AddrPortFrom(DefaultGuest4, 40000), netip.AddrPortFrom(DefaultDNS4, 53))
	select {
	case <-dialing:
	case <-time.After(5 * time.Second):
		t.Fatal("the forwarder never dialled the upstream")
	}
	h.r.Close()
	if n := dials.Load(); n != 1 {
		t.Errorf("dials of an upstream: %d, want 1 (none after Close)", n)
	}
	if up := h.r.dnsUpstream(); up != a {
		t.Errorf("current upstream after Close %v, want %v (not failed)", up, a)
	}
}

// icmpTap is the namespace's end of the pipe, passing on every ICMP
// packet the relay sends to got as well.
type icmpTap struct {
	gstack.LinkEndpoint
	got chan []byte
}

func (l *icmpTap) Attach(d gstack.NetworkDispatcher) { l.LinkEndpoint.Attach(&tapDispatcher{d, l.got}) }

type tapDispatcher struct {
	gstack.NetworkDispatcher
	got chan []byte
}

func (d *tapDispatcher) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *gstack.PacketBuffer) {
	buf := pkt.ToBuffer()
	b := buf.Flatten()
	buf.Release()
	if len(b) > header.IPv6MinimumSize && (b[0]>>4 == 4 && b[9] == uint8(header.ICMPv4ProtocolNumber) || b[0]>>4 == 6 && b[6] == uint8(header.ICMPv6ProtocolNumber)) {
		select {
		case d.got <- b:
		default:
		}
	}
	d.NetworkDispatcher.DeliverNetworkPacket(proto, pkt)
}

// TestTimeExceededQuotesAsLinux: time exceeded quotes as much of the
// packet as fits in a 576-byte IPv4 error (1280 bytes for IPv6), as
// Linux and gVisor's own errors do (RFC 1812 4.3.2.3, RFC 4443 2.4(c)).
// It quoted the fixed IP header and 8 bytes: for IPv6 with an extension
// header, the quote's Next Header named a header whose bytes were the
// UDP header instead.
func TestTimeExceededQuotesAsLinux(t *testing.T) {
	leakcheck.Check(t)
	got := make(chan []byte, 4)
	h := newHarnessLink(t, Config{}, func(l gstack.LinkEndpoint) gstack.LinkEndpoint { return &icmpTap{l, got} })
	payload := strings.Repeat("x", 1500)

	dst4 := netip.MustParseAddr("192.0.2.1")
	sent4 := ip4Packet(dst4, uint8(header.UDPProtocolNumber), udp4(33434, payload), func(ip header.IPv4) { ip.SetTTL(1) })
	h.sendRaw4(t, sent4)
	quote4 := icmpQuote(t, got, header.IPv4MinimumSize)
	if want := 576 - header.IPv4MinimumSize - header.ICMPv4MinimumSize; len(quote4) != want || !bytes.Equal(quote4, sent4[:want]) {
		t.Errorf("IPv4 time exceeded quotes %d bytes, want the first %d of the packet", len(quote4), want)
	}

	// IPv6 with a Destination Options header (8 bytes: Next Header UDP,
	// length 0, PadN of 4) before the UDP header.
	dst6 := netip.MustParseAddr("2001:db8::1")
	udp := make([]byte, header.UDPMinimumSize+len(payload))
	header.UDP(udp).Encode(&header.UDPFields{SrcPort: 40000, DstPort: 33434, Length: uint16(len(udp))})
	copy(udp[header.UDPMinimumSize:], payload)
	xsum := header.PseudoHeaderChecksum(header.UDPProtocolNumber, stack.Address(DefaultGuest6), stack.Address(dst6), uint16(len(udp)))
	header.UDP(udp).SetChecksum(^checksum.Checksum(udp, xsum))
	ext := append([]byte{uint8(header.UDPProtocolNumber), 0, 1, 4, 0, 0, 0, 0}, udp...)
	sent6 := ip6Packet(dst6, 60, ext)
	header.IPv6(sent6).SetHopLimit(1)
	h.sendRaw4(t, sent6)
	quote6 := icmpQuote(t, got, header.IPv6MinimumSize)
	if want := 1280 - header.IPv6MinimumSize - header.ICMPv6MinimumSize; len(quote6) != want || !bytes.Equal(quote6, sent6[:want]) {
		t.Errorf("IPv6 time exceeded quotes %d bytes, want the first %d of the packet", len(quote6), want)
	}
}

// icmpQuote returns the quote of the next ICMP error the tap saw, whose
// IP header is ipLen bytes.
func icmpQuote(t *testing.T, got chan []byte, ipLen int) []byte {
	t.Helper()
	select {
	case b := <-got:
		return b[ipLen+8:]
	case <-time.After(2 * time.Second):
		t.Fatal("no ICMP error sent")
		return nil
	}
}

// heapEachSettled returns the live heap above before for each of n idle
// flows, once it is at most limit or 2 s have passed: the copy loops give
// back their buffers when they block in their reads again, some time
// after the last byte is counted. A fixed 100 ms sleep was too short on a
// loaded machine and too long on an idle one.
func heapEachSettled(before, n, limit int64) int64 {
	deadline := time.Now().Add(2 * time.Second)
	for {
		per := (liveHeap() - before) / n
		if per <= limit || time.Now().After(deadline) {
			return per
		}
		time.Sleep(20 * time.Millisecond)
	}
}
