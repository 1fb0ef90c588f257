package tun

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/stack"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// kernelDouble is the test's side of a socketpair that stands in for a
// TUN device with IFF_VNET_HDR: each SOCK_SEQPACKET message is one read or
// write of the device, a virtio-net header and an IP packet. The test plays
// the kernel on it.
type kernelDouble struct {
	t  testing.TB
	f  *os.File
	ep *VnetEndpoint
	s  *stack.Stack
}

// packetPair returns the two ends of a non-blocking SOCK_SEQPACKET
// socketpair, a stand-in for a TUN device's file (one packet per read and
// write): the endpoint's end and the "kernel's". buf, if not 0, sets both
// ends' send and receive buffers. Both are closed when the test ends;
// closing one earlier is fine.
func packetPair(t testing.TB, buf int) (ep, peer *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socketpair: %v", err)
	}
	if buf != 0 {
		for _, fd := range fds {
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, buf)
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, buf)
		}
	}
	ep, peer = os.NewFile(uintptr(fds[0]), "ep"), os.NewFile(uintptr(fds[1]), "peer")
	t.Cleanup(func() { ep.Close(); peer.Close() })
	return ep, peer
}

// newDouble returns a stack whose NIC is a VnetEndpoint on one end of a
// socketpair, and the other end. Everything is closed when the test ends.
func newDouble(t testing.TB, tcp stack.TCPConfig) *kernelDouble {
	t.Helper()
	// Room for a few 64 KiB packets in flight each way.
	epFile, peer := packetPair(t, 4<<20)
	ep, err := NewVnetEndpoint(epFile, 1500)
	if err != nil {
		t.Fatalf("NewVnetEndpoint = %v", err)
	}
	s, err := stack.New(stack.Config{NICs: []stack.NICConfig{{
		Endpoint: ep, Addrs: []netip.Prefix{stackV4, stackV6},
	}}, TCP: tcp})
	if err != nil {
		t.Fatalf("stack.New = %v", err)
	}
	// Order of the Device: stop the stack (and endpoint), then close fds.
	t.Cleanup(func() {
		s.Close()
		ep.Wait()
		epFile.Close()
		peer.Close()
	})
	return &kernelDouble{t: t, f: peer, ep: ep, s: s}
}

// send writes one message: header h and packet pkt.
func (k *kernelDouble) send(h virtioHdr, pkt []byte) {
	k.t.Helper()
	msg := make([]byte, virtioNetHdrLen+len(pkt))
	h.encode(msg)
	copy(msg[virtioNetHdrLen:], pkt)
	k.sendRaw(msg)
}

func (k *kernelDouble) sendRaw(msg []byte) {
	k.t.Helper()
	k.f.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := k.f.Write(msg); err != nil {
		k.t.Fatalf("kernel double write: %v", err)
	}
}

// recv reads one message the endpoint wrote, or fails the test after 5s.
func (k *kernelDouble) recv() (virtioHdr, []byte) {
	k.t.Helper()
	buf := make([]byte, 70000)
	k.f.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := k.f.Read(buf)
	if err != nil {
		k.t.Fatalf("kernel double read: %v", err)
	}
	if n < virtioNetHdrLen {
		k.t.Fatalf("endpoint wrote a %d-byte message, shorter than the virtio-net header", n)
	}
	return decodeVirtioHdr(buf), buf[virtioNetHdrLen:n]
}

// recvTCP reads until a TCP packet to port dport arrives, skipping others
// (NDP, MLD, ...).
func (k *kernelDouble) recvTCP(dport uint16) (virtioHdr, []byte, header.TCP) {
	k.t.Helper()
	for {
		h, pkt := k.recv()
		ipLen, proto := ipHeaderOf(pkt)
		if proto != header.TCPProtocolNumber {
			continue
		}
		tcp := header.TCP(pkt[ipLen:])
		if tcp.DestinationPort() == dport {
			return h, pkt, tcp
		}
	}
}

// ipHeaderOf returns the IP header length and transport protocol of pkt.
func ipHeaderOf(pkt []byte) (int, tcpip.TransportProtocolNumber) {
	if header.IPVersion(pkt) == header.IPv4Version {
		ip := header.IPv4(pkt)
		return int(ip.HeaderLength()), ip.TransportProtocol()
	}
	return header.IPv6MinimumSize, header.IPv6(pkt).TransportProtocol()
}

// tcpSpec describes a TCP segment the double builds.
type tcpSpec struct {
	src, dst netip.AddrPort
	seq, ack uint32
	flags    header.TCPFlags
	mss      uint16 // MSS option if nonzero
	wscale   bool   // window scale option, shift 7
	payload  []byte
	partial  bool // leave the pseudo-header sum (NEEDS_CSUM), not the full checksum
}

// build returns the IP packet for sp.
func (sp tcpSpec) build() []byte {
	var opts []byte
	if sp.mss != 0 {
		opts = []byte{2, 4, byte(sp.mss >> 8), byte(sp.mss)}
	}
	if sp.wscale {
		opts = append(opts, 1, 3, 3, 7) // NOP, window scale 7
	}
	tcpLen := header.TCPMinimumSize + len(opts) + len(sp.payload)
	src, dst := tcpip.AddrFromSlice(sp.src.Addr().AsSlice()), tcpip.AddrFromSlice(sp.dst.Addr().AsSlice())
	pkt := ipPacket(src, dst, header.TCPProtocolNumber, tcpLen)
	ipLen := len(pkt) - tcpLen
	tcp := header.TCP(pkt[ipLen:])
	tcp.Encode(&header.TCPFields{
		SrcPort: sp.src.Port(), DstPort: sp.dst.Port(), SeqNum: sp.seq, AckNum: sp.ack,
		DataOffset: uint8(header.TCPMinimumSize + len(opts)), Flags: sp.flags, WindowSize: 65535,
	})
	copy(tcp[header.TCPMinimumSize:], opts)
	copy(tcp[header.TCPMinimumSize+len(opts):], sp.payload)
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(tcpLen))
	if sp.partial {
		tcp.SetChecksum(xsum)
	} else {
		tcp.SetChecksum(^checksum.Checksum(tcp, xsum))
	}
	return pkt
}

// ipPacket returns an IPv4 or IPv6 packet with a zeroed transport part of
// tlen bytes.
func ipPacket(src, dst tcpip.Address, proto tcpip.TransportProtocolNumber, tlen int) []byte {
	if src.Len() == 4 {
		pkt := make([]byte, header.IPv4MinimumSize+tlen)
		ip := header.IPv4(pkt)
		ip.Encode(&header.IPv4Fields{
			TotalLength: uint16(len(pkt)), TTL: 64, Protocol: uint8(proto),
			SrcAddr: src, DstAddr: dst, Flags: header.IPv4FlagDontFragment,
		})
		ip.SetChecksum(^ip.CalculateChecksum())
		return pkt
	}
	pkt := make([]byte, header.IPv6MinimumSize+tlen)
	header.IPv6(pkt).Encode(&header.IPv6Fields{
		PayloadLength: uint16(tlen), TransportProtocol: proto, HopLimit: 64, SrcAddr: src, DstAddr: dst,
	})
	return pkt
}

// icmpEcho returns an ICMPv4 echo request from the kernel side to the stack.
func icmpEcho(id uint16) []byte {
	src, dst := tcpip.AddrFromSlice(hostV4.Addr().AsSlice()), tcpip.AddrFromSlice(stackV4.Addr().AsSlice())
	pkt := ipPacket(src, dst, header.ICMPv4ProtocolNumber, header.ICMPv4MinimumSize+8)
	icmp := header.ICMPv4(pkt[header.IPv4MinimumSize:])
	icmp.SetType(header.ICMPv4Echo)
	icmp.SetIdent(id)
	icmp.SetChecksum(^checksum.Checksum(icmp, 0))
	return pkt
}

type family struct {
	name        string
	host, stack netip.Addr
	ipLen, mss  int
	gsoType     uint8
}

var families = []family{
	{name: "v4", host: hostV4.Addr(), stack: stackV4.Addr(), ipLen: header.IPv4MinimumSize, mss: 1460, gsoType: virtioGSOTCPv4},
	{name: "v6", host: hostV6.Addr(), stack: stackV6.Addr(), ipLen: header.IPv6MinimumSize, mss: 1440, gsoType: virtioGSOTCPv6},
}

// TestVnetStackWritesGSO: the stack's large TCP writes leave the endpoint
// as GSO segments whose header lets the kernel segment and checksum them.
func TestVnetStackWritesGSO(t *testing.T) {
	leakcheck.Check(t)
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			k := newDouble(t, stack.TCPConfig{})
			kernel := netip.AddrPortFrom(fam.host, 80)
			fa, proto := gvisorAddr(kernel)
			dialed := make(chan *gonet.TCPConn, 1)
			go func() {
				c, _ := gonet.DialTCP(k.s.GVisor(), fa, proto)
				dialed <- c
			}()
			_, _, syn := k.recvTCP(80)
			local := netip.AddrPortFrom(fam.stack, syn.SourcePort())
			iss := uint32(1000)
			k.send(virtioHdr{}, tcpSpec{src: kernel, dst: local, seq: iss, ack: syn.SequenceNumber() + 1,
				flags: header.TCPFlagSyn | header.TCPFlagAck, mss: uint16(fam.mss)}.build())
			c := <-dialed
			if c == nil {
				t.Fatalf("stack DialTCP(%v) failed", kernel)
			}
			defer c.Close()
			data := bytes.Repeat([]byte("gso!"), 50000)
			go c.Write(data)

			var found bool
			for i := 0; i < 100 && !found; i++ {
				h, pkt, tcp := k.recvTCP(80)
				payload := len(tcp.Payload())
				if payload > 0 {
					// Acknowledge what arrived, so that the sender goes on.
					k.send(virtioHdr{}, tcpSpec{src: kernel, dst: local, seq: iss + 1,
						ack: tcp.SequenceNumber() + uint32(payload), flags: header.TCPFlagAck}.build())
				}
				if payload <= fam.mss {
					continue
				}
				found = true
				hdrLen := fam.ipLen + int(tcp.DataOffset())
				want := virtioHdr{flags: virtioFlagNeedsCsum, gsoType: fam.gsoType, hdrLen: uint16(hdrLen),
					gsoSize: uint16(fam.mss), csumStart: uint16(fam.ipLen), csumOffset: header.TCPChecksumOffset}
				if h != want {
					t.Errorf("virtio header of a %d-byte segment = %+v, want %+v", payload, h, want)
				}
				src := tcpip.AddrFromSlice(fam.stack.AsSlice())
				dst := tcpip.AddrFromSlice(fam.host.AsSlice())
				tcpLen := len(pkt) - fam.ipLen
				wantPartial := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(tcpLen))
				if got := tcp.Checksum(); got != wantPartial {
					t.Errorf("partial checksum = %#04x, want pseudo-header sum %#04x", got, wantPartial)
				}
				// Finish it as the kernel would; then it must verify.
				tcp.SetChecksum(^checksum.Checksum(tcp, 0))
				if !tcp.IsChecksumValid(src, dst, checksum.Checksum(tcp.Payload(), 0), uint16(payload)) {
					t.Errorf("checksum completed from csum_start %d is invalid", h.csumStart)
				}
				if !bytes.Equal(tcp.Payload(), data[tcp.SequenceNumber()-syn.SequenceNumber()-1:][:payload]) {
					t.Errorf("GSO segment payload differs from what was written")
				}
			}
			if !found {
				t.Fatalf("no segment larger than the MSS %d in 100 packets: GSO not used", fam.mss)
			}
		})
	}
}

// TestVnetKernelGSOAccepted: a 60 KB TCP segment from the kernel with
// NEEDS_CSUM and TSO fields, and the largest IPv6 one, are delivered to
// the stack whole, and the data arrives intact.
func TestVnetKernelGSOAccepted(t *testing.T) {
	leakcheck.Check(t)
	for _, tc := range []struct {
		fam  family
		size int
	}{
		{families[0], 60000},
		{families[1], 60000},
		// The largest IPv6 segment: 65575 bytes with its header, more
		// than one 64 KiB receive chunk.
		{families[1], 0xffff - header.TCPMinimumSize},
	} {
		fam := tc.fam
		t.Run(fmt.Sprintf("%s/%d", fam.name, tc.size), func(t *testing.T) {
			// A fixed 1 MiB window from the start, rather than one that
			// grows with the traffic, has room for the 60 KB segment.
			k := newDouble(t, stack.TCPConfig{DisableModerateReceiveBuffer: true})
			server := netip.AddrPortFrom(fam.stack, 80)
			fa, proto := gvisorAddr(server)
			l, err := gonet.ListenTCP(k.s.GVisor(), fa, proto)
			if err != nil {
				t.Fatalf("ListenTCP = %v", err)
			}
			defer l.Close()
			data := make([]byte, tc.size)
			for i := range data {
				data[i] = byte(i*7 + i>>8)
			}
			got := make(chan []byte, 1)
			go func() {
				c, err := l.Accept()
				if err != nil {
					got <- nil
					return
				}
				defer c.Close()
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				b := make([]byte, len(data))
				n, _ := io.ReadFull(c, b)
				got <- b[:n]
			}()
			client := netip.AddrPortFrom(fam.host, 40000)
			iss := uint32(5000)
			k.send(virtioHdr{}, tcpSpec{src: client, dst: server, seq: iss, flags: header.TCPFlagSyn, mss: uint16(fam.mss), wscale: true}.build())
			_, _, synack := k.recvTCP(40000)
			if synack.Flags() != header.TCPFlagSyn|header.TCPFlagAck {
				t.Fatalf("stack answered SYN with flags %v, want SYN|ACK", synack.Flags())
			}
			sack := synack.SequenceNumber() + 1
			k.send(virtioHdr{}, tcpSpec{src: client, dst: server, seq: iss + 1, ack: sack, flags: header.TCPFlagAck}.build())

			seg := tcpSpec{src: client, dst: server, seq: iss + 1, ack: sack, flags: header.TCPFlagAck | header.TCPFlagPsh,
				payload: data, partial: true}.build()
			k.send(virtioHdr{flags: virtioFlagNeedsCsum, gsoType: fam.gsoType, hdrLen: uint16(fam.ipLen + header.TCPMinimumSize),
				gsoSize: uint16(fam.mss), csumStart: uint16(fam.ipLen), csumOffset: header.TCPChecksumOffset}, seg)
			if b := <-got; !bytes.Equal(b, data) {
				t.Fatalf("stack received %d bytes, want the %d sent, intact", len(b), len(data))
			}
			// One ACK covers the whole segment: it was not split.
			for {
				_, _, ack := k.recvTCP(40000)
				if ack.AckNumber() == iss+1+uint32(len(data)) {
					break
				}
			}
			if m := k.ep.Malformed.Load() + k.ep.BadChecksum.Load(); m != 0 {
				t.Errorf("endpoint dropped %d packets, want 0", m)
			}
		})
	}
}

// TestVnetDelayedACK: on an interactive connection the stack's reply
// carries the acknowledgement of the request, with no pure ACK written
// before it, and a request that gets no reply is still acknowledged.
func TestVnetDelayedACK(t *testing.T) {
	leakcheck.Check(t)
	k := newDouble(t, stack.TCPConfig{})
	server := netip.AddrPortFrom(stackV4.Addr(), 7)
	fa, proto := gvisorAddr(server)
	l, err := gonet.ListenTCP(k.s.GVisor(), fa, proto)
	if err != nil {
		t.Fatalf("ListenTCP = %v", err)
	}
	defer l.Close()
	done := make(chan struct{})
	defer func() { <-done }()
	go func() {
		// Echo each byte back, except 'q', which gets no answer.
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		b := make([]byte, 1)
		for {
			if _, err := c.Read(b); err != nil {
				return
			}
			if b[0] != 'q' {
				c.Write(b)
			}
		}
	}()
	client := netip.AddrPortFrom(hostV4.Addr(), 40000)
	iss := uint32(1000)
	k.send(virtioHdr{}, tcpSpec{src: client, dst: server, seq: iss, flags: header.TCPFlagSyn, mss: 1460}.build())
	_, _, synack := k.recvTCP(40000)
	seq, sack := iss+1, synack.SequenceNumber()+1
	k.send(virtioHdr{}, tcpSpec{src: client, dst: server, seq: seq, ack: sack, flags: header.TCPFlagAck}.build())

	pureBefore := make([]int, 10)
	for round := range pureBefore {
		k.send(virtioHdr{}, tcpSpec{src: client, dst: server, seq: seq, ack: sack, flags: header.TCPFlagAck | header.TCPFlagPsh, payload: []byte{'x'}}.build())
		seq++
		for {
			_, pkt, tcp := k.recvTCP(40000)
			if len(pkt)-header.IPv4MinimumSize-int(tcp.DataOffset()) == 0 {
				pureBefore[round]++
				continue
			}
			if tcp.AckNumber() != seq {
				t.Fatalf("round %d: reply acknowledges %d, want %d", round, tcp.AckNumber(), seq)
			}
			sack++
			break
		}
	}
	// The first round may ACK on its own: the connection is not known to
	// be interactive yet. After that, the reply carries every ACK.
	for round, n := range pureBefore[2:] {
		if n != 0 {
			t.Errorf("round %d: %d pure ACKs before the reply, want 0 (all rounds: %v)", round+2, n, pureBefore)
		}
	}
	k.send(virtioHdr{}, tcpSpec{src: client, dst: server, seq: seq, ack: sack, flags: header.TCPFlagAck | header.TCPFlagPsh, payload: []byte{'q'}}.build())
	start := time.Now()
	_, _, tcp := k.recvTCP(40000)
	if tcp.AckNumber() != seq+1 || tcp.Flags() != header.TCPFlagAck {
		t.Fatalf("unanswered request: got flags %v ack %d, want a pure ACK of %d", tcp.Flags(), tcp.AckNumber(), seq+1)
	}
	t.Logf("unanswered request acknowledged after %v", time.Since(start))
	k.send(virtioHdr{}, tcpSpec{src: client, dst: server, seq: seq + 1, ack: sack, flags: header.TCPFlagRst}.build())
}
