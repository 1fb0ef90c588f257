package stack

import (
	"bytes"
	"context"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// tooBig builds the "packet too big" ICMP error a router on the path from
// local to remote would send back to local about a segment of the TCP
// connection lport→rport, announcing mtu: ICMPv6 Packet Too Big, or
// ICMPv4 Destination Unreachable / Fragmentation Needed.
func tooBig(local, remote, router netip.Addr, lport, rport uint16, mtu uint32) []byte {
	tcp := make([]byte, header.TCPMinimumSize)
	header.TCP(tcp).Encode(&header.TCPFields{SrcPort: lport, DstPort: rport, DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagAck, WindowSize: 1000})
	if local.Is6() {
		orig := make([]byte, header.IPv6MinimumSize, header.IPv6MinimumSize+len(tcp))
		header.IPv6(orig).Encode(&header.IPv6Fields{PayloadLength: 1400, TransportProtocol: header.TCPProtocolNumber, HopLimit: 64,
			SrcAddr: tcpip.AddrFrom16(local.As16()), DstAddr: tcpip.AddrFrom16(remote.As16())})
		orig = append(orig, tcp...)
		icmp := header.ICMPv6(make([]byte, header.ICMPv6PacketTooBigMinimumSize))
		icmp.SetType(header.ICMPv6PacketTooBig)
		icmp.SetMTU(mtu)
		icmp = append(icmp, orig...)
		src, dst := tcpip.AddrFrom16(router.As16()), tcpip.AddrFrom16(local.As16())
		icmp.SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{Header: icmp, Src: src, Dst: dst}))
		ip := make([]byte, header.IPv6MinimumSize)
		header.IPv6(ip).Encode(&header.IPv6Fields{PayloadLength: uint16(len(icmp)), TransportProtocol: header.ICMPv6ProtocolNumber, HopLimit: 64, SrcAddr: src, DstAddr: dst})
		return append(ip, icmp...)
	}
	orig := make([]byte, header.IPv4MinimumSize, header.IPv4MinimumSize+len(tcp))
	header.IPv4(orig).Encode(&header.IPv4Fields{TotalLength: 1400, TTL: 64, Protocol: uint8(header.TCPProtocolNumber), Flags: header.IPv4FlagDontFragment,
		SrcAddr: tcpip.AddrFrom4(local.As4()), DstAddr: tcpip.AddrFrom4(remote.As4())})
	header.IPv4(orig).SetChecksum(^header.IPv4(orig).CalculateChecksum())
	orig = append(orig, tcp...)
	icmp := header.ICMPv4(make([]byte, header.ICMPv4MinimumSize))
	icmp.SetType(header.ICMPv4DstUnreachable)
	icmp.SetCode(header.ICMPv4FragmentationNeeded)
	icmp.SetMTU(uint16(mtu))
	icmp = append(icmp, orig...)
	icmp.SetChecksum(^checksum.Checksum(icmp, 0))
	ip := make([]byte, header.IPv4MinimumSize)
	header.IPv4(ip).Encode(&header.IPv4Fields{TotalLength: uint16(header.IPv4MinimumSize + len(icmp)), TTL: 64, Protocol: uint8(header.ICMPv4ProtocolNumber),
		SrcAddr: tcpip.AddrFrom4(router.As4()), DstAddr: tcpip.AddrFrom4(local.As4())})
	header.IPv4(ip).SetChecksum(^header.IPv4(ip).CalculateChecksum())
	return append(ip, icmp...)
}

// TestTinyPathMTUIgnored: a "packet too big" announcing an MTU below the
// protocol's minimum (0, from a broken router or forged by anyone who
// knows the connection's ports) must not shrink a connection's segments
// below what the protocol guarantees. Linux ignores such an ICMPv6 Packet
// Too Big for TCP (tcp_v6_err: mtu < IPV6_MIN_MTU) and clamps an ICMPv4
// one at 552 (ip_rt_min_pmtu). gVisor took it as is: the connection went
// on in 1-byte segments, 300 KB took minutes. A gVisor router sends
// exactly that (mtu 0) for IPv6 (docs/qa6.md).
func TestTinyPathMTUIgnored(t *testing.T) {
	for _, c := range []struct{ name, a, b, router string }{
		{"v4", "10.0.0.1", "10.0.0.2", "10.0.0.2"},
		{"v6", "fd00::1", "fd00::2", "fd00::2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			leakcheck.Check(t)
			ea, eb := pipe.New("\x02\x00\x00\x00\x00\x01", "\x02\x00\x00\x00\x00\x02", 1500)
			mk := func(ep gstack.LinkEndpoint, addr string) *Stack {
				bits := 24
				if netip.MustParseAddr(addr).Is6() {
					bits = 64
				}
				s, err := New(Config{NICs: []NICConfig{{Endpoint: ep, Addrs: []netip.Prefix{netip.PrefixFrom(netip.MustParseAddr(addr), bits)}}}})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(s.Close)
				return s
			}
			sa, sb := mk(ea, c.a), mk(eb, c.b)
			fa, proto := fullAddr(netip.AddrPortFrom(netip.MustParseAddr(c.b), 7))
			l, err := gonet.ListenTCP(sb.GVisor(), fa, proto)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			go func() {
				c, err := l.Accept()
				if err == nil {
					io.Copy(c, c)
					c.Close()
				}
			}()
			conn, err := gonet.DialContextTCP(context.Background(), sa.GVisor(), fa, proto)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			lport := uint16(conn.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port())
			for _, mtu := range []uint32{0, 100} {
				b := tooBig(netip.MustParseAddr(c.a), netip.MustParseAddr(c.b), netip.MustParseAddr(c.router), lport, 7, mtu)
				pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
				pkt.NetworkProtocolNumber = proto
				var list gstack.PacketBufferList
				list.PushBack(pkt)
				eb.WritePackets(list) // arrives at a as from the peer
				pkt.DecRef()
			}
			want := bytes.Repeat([]byte("ustack"), 50000)
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			go conn.Write(want)
			got := make([]byte, len(want))
			start := time.Now()
			if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("300 KB echo after a too-big with MTU 0: %v after %v", err, time.Since(start))
			}
			if segs := sa.Stats().TCP.SegmentsSent; segs > 2000 {
				t.Errorf("300 KB went out in %d segments, want full-sized ones", segs)
			}
		})
	}
}

// BenchmarkPMTUFloorCheck measures what pmtuFloor adds to every inbound
// packet that is not a "too big": the look at its first bytes.
//
//	go test ./stack -run X -bench PMTUFloorCheck
func BenchmarkPMTUFloorCheck(b *testing.B) {
	seg := tooBig(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.2"), 1000, 7, 1400)
	seg[9] = uint8(header.TCPProtocolNumber) // the protocol byte: an ordinary segment now
	pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData(append(seg, make([]byte, 1400)...))})
	defer pkt.DecRef()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if tooBigCandidate(header.IPv4ProtocolNumber, pkt) {
			b.Fatal("a TCP segment taken for a too-big")
		}
	}
}
