package relay

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/stack"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// sendSpoofedSYN sends a TCP SYN from src to dst out of the namespace
// stack, as a program that is root in the namespace can with a raw
// socket. Unless src is one of the namespace's addresses, nobody there
// answers the SYN-ACK: the handshake never completes.
func (h *harness) sendSpoofedSYN(t *testing.T, src, dst netip.AddrPort) {
	t.Helper()
	b := make([]byte, header.IPv4MinimumSize+header.TCPMinimumSize)
	ip := header.IPv4(b)
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(len(b)), TTL: 64, Protocol: uint8(header.TCPProtocolNumber),
		SrcAddr: stack.Address(src.Addr()), DstAddr: stack.Address(dst.Addr()),
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	tcp := header.TCP(b[header.IPv4MinimumSize:])
	tcp.Encode(&header.TCPFields{
		SrcPort: src.Port(), DstPort: dst.Port(), SeqNum: 1000,
		DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagSyn, WindowSize: 65535,
	})
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, stack.Address(src.Addr()), stack.Address(dst.Addr()), uint16(len(tcp)))
	tcp.SetChecksum(^checksum.Checksum(tcp, xsum))
	nic, err := h.ns.NICID("tap0")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.ns.GVisor().WriteRawPacket(nic, header.IPv4ProtocolNumber, buffer.MakeWithData(b)); err != nil {
		t.Fatalf("WriteRawPacket: %v", err)
	}
}

// TestSpoofedSYNHandshakeBounded: a SYN from a source address nobody in
// the namespace owns (a hostile CMD with a raw socket) gets its real
// destination dialled, then a SYN-ACK nobody answers. gVisor retransmits
// that SYN-ACK for about two minutes, and CreateEndpoint blocked all that
// time, holding the flow slot and the real connection, and Close waited
// for it: `ustack run` took 127 s to exit after such a CMD did. The
// namespace's half of the handshake must end at DialTimeout (counted),
// and Close must not wait for it.
func TestSpoofedSYNHandshakeBounded(t *testing.T) {
	leakcheck.Check(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 4)
	serveTCP(t, ln, func(c net.Conn) {
		accepted <- c
		c.Read(make([]byte, 1)) // until the relay closes it
	})
	port := ln.Addr().(*net.TCPAddr).AddrPort().Port()
	h := newHarness(t, Config{AllowHostLoopback: true, DialTimeout: 300 * time.Millisecond})
	gw := netip.AddrPortFrom(DefaultGateway4, port)
	h.sendSpoofedSYN(t, netip.MustParseAddrPort("10.0.2.50:40000"), gw)
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the spoofed SYN's destination was never dialled")
	}
	// The flow slot comes back soon after DialTimeout.
	deadline := time.Now().Add(3 * time.Second)
	for h.r.flows.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d flows still held 3s after a handshake the namespace never completed (DialTimeout 300ms)", h.r.flows.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s := h.r.Stats(); s.HandshakeTimeouts != 1 || s.TCPActive != 0 {
		t.Errorf("stats %+v: want handshake_timeouts 1, tcp_active 0", s)
	}

	// A second one, pending when the relay closes: Close does not wait
	// for it.
	h.sendSpoofedSYN(t, netip.MustParseAddrPort("10.0.2.51:40001"), gw)
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the second spoofed SYN's destination was never dialled")
	}
	closed := make(chan struct{})
	start := time.Now()
	go func() { h.r.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Relay.Close still waiting 5s later for a handshake the namespace never completes")
	}
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("Relay.Close took %v with a handshake pending; want it aborted at once", d)
	}
}

// TestForwardUDPOneWayStaysOneFlow: a UDP port forward whose client sends
// and whose server inside never answers (syslog, metrics) is one live
// flow. The forward's idle timer counted only the namespace's replies, so
// the flow expired every UDPIdleTimeout while datagrams kept coming, was
// counted as expired and opened again, and datagrams arriving as it was
// torn down were lost.
func TestForwardUDPOneWayStaysOneFlow(t *testing.T) {
	leakcheck.Check(t)
	const idle = 300 * time.Millisecond
	h := newHarness(t, Config{UDPIdleTimeout: idle})
	fa, proto := full(netip.AddrPortFrom(DefaultGuest4, 514))
	pc, err := gonet.DialUDP(h.ns.GVisor(), &fa, nil, proto)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{}, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			got <- struct{}{}
		}
	}()
	defer func() { pc.Close(); <-done }()
	port := freePort(t, "udp4", "127.0.0.1:0")
	if err := h.r.AddForward(Forward{Proto: "udp", HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: port, GuestPort: 514}); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp4", net.JoinHostPort("127.0.0.1", itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const sent = 12 // over 1.2 s: four idle timeouts
	for i := 0; i < sent; i++ {
		c.Write([]byte("log line"))
		time.Sleep(idle / 3)
	}
	received := 0
	for deadline := time.After(2 * time.Second); received < sent; received++ {
		select {
		case <-got:
		case <-deadline:
			t.Fatalf("server inside received %d of %d datagrams", received, sent)
		}
	}
	if s := h.r.Stats(); s.ForwardAccepted != 1 || s.UDPExpired != 0 {
		t.Errorf("stats %+v after a steady one-way flow: want forward_accepted 1 (one flow), udp_expired 0", s)
	}
	// Once the client stops, the flow does expire.
	deadline := time.Now().Add(3 * time.Second)
	for h.r.Stats().UDPExpired != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: the flow did not expire once idle", h.r.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestControlOversizedLineAnswered: every request line gets an answer
// line; one longer than the 64 KiB limit was met by the connection
// closing in silence, which a client reads as ustack gone. It now gets
// an error saying why before the connection closes.
func TestControlOversizedLineAnswered(t *testing.T) {
	leakcheck.Check(t)
	h := newHarness(t, Config{})
	c := dialControl(t, h)
	go func() {
		io.WriteString(c, `{"op":"list","forward":"`+strings.Repeat("x", maxControlLine)+`"}`+"\n")
		io.WriteString(c, `{"op":"list"}`+"\n")
	}()
	rd := bufio.NewReader(c)
	line, err := rd.ReadString('\n')
	var resp ControlResponse
	if err != nil || json.Unmarshal([]byte(line), &resp) != nil || resp.OK || !strings.Contains(resp.Error, "longer than") {
		t.Errorf("answer to a %d-byte request line: %q, %v; want an error naming the limit", maxControlLine+30, line, err)
	}
	// The connection stays usable.
	if line, err := rd.ReadString('\n'); err != nil || line != `{"ok":true,"forwards":[]}`+"\n" {
		t.Errorf("answer to the next request: %q, %v; want the list", line, err)
	}
}

// sendRaw4 sends b, an IPv4 packet whose header checksum and lengths are
// the caller's (right or wrong), out of the namespace stack.
func (h *harness) sendRaw4(t *testing.T, b []byte) {
	t.Helper()
	nic, err := h.ns.NICID("tap0")
	if err != nil {
		t.Fatal(err)
	}
	proto := header.IPv4ProtocolNumber
	if header.IPVersion(b) == header.IPv6Version {
		proto = header.IPv6ProtocolNumber
	}
	if err := h.ns.GVisor().WriteRawPacket(nic, proto, buffer.MakeWithData(b)); err != nil {
		t.Fatalf("WriteRawPacket: %v", err)
	}
}

// ip6Packet builds an IPv6 packet from the namespace's address to dst
// carrying payload.
func ip6Packet(dst netip.Addr, proto uint8, payload []byte) []byte {
	b := make([]byte, header.IPv6MinimumSize+len(payload))
	header.IPv6(b).Encode(&header.IPv6Fields{PayloadLength: uint16(len(payload)), TransportProtocol: tcpip.TransportProtocolNumber(proto),
		HopLimit: 64, SrcAddr: stack.Address(DefaultGuest6), DstAddr: stack.Address(dst)})
	copy(b[header.IPv6MinimumSize:], payload)
	return b
}

// ip4Packet builds an IPv4 packet from the namespace's address to dst
// carrying payload, with a right header checksum; fix, if set, may then
// break it.
func ip4Packet(dst netip.Addr, proto uint8, payload []byte, fix func(ip header.IPv4)) []byte {
	b := make([]byte, header.IPv4MinimumSize+len(payload))
	ip := header.IPv4(b)
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(b)), TTL: 64, Protocol: proto,
		SrcAddr: stack.Address(DefaultGuest4), DstAddr: stack.Address(dst)})
	copy(b[header.IPv4MinimumSize:], payload)
	if fix != nil {
		fix(ip)
	}
	ip.SetChecksum(0)
	ip.SetChecksum(^ip.CalculateChecksum())
	return b
}

// TestMalformedCounted: what CMD's raw socket sends that the stack
// drops as malformed is counted where the control socket reports it
// (stats "malformed"). It was counted only inside gVisor, out of the
// operator's sight: the relay's counters stayed as they were. And none
// of it is relayed: a UDP datagram with a bad length or checksum opened
// a flow (a host socket and a --max-flows slot for --udp-timeout) before
// gVisor's endpoint dropped it.
func TestMalformedCounted(t *testing.T) {
	leakcheck.Check(t)
	h := newHarness(t, Config{})
	dst := netip.MustParseAddr("192.0.2.1")
	tcpSeg := func(flags header.TCPFlags, offset uint8, goodSum bool) []byte {
		b := make([]byte, header.TCPMinimumSize)
		tcp := header.TCP(b)
		tcp.Encode(&header.TCPFields{SrcPort: 40000, DstPort: 80, SeqNum: 1, DataOffset: offset, Flags: flags, WindowSize: 65535})
		if goodSum {
			xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, stack.Address(DefaultGuest4), stack.Address(dst), uint16(len(b)))
			tcp.SetChecksum(^checksum.Checksum(b, xsum))
		} else {
			tcp.SetChecksum(0x1234)
		}
		return b
	}
	udpDgram := func(length uint16) []byte {
		b := make([]byte, header.UDPMinimumSize+4)
		header.UDP(b).Encode(&header.UDPFields{SrcPort: 40000, DstPort: 9, Length: length, Checksum: 0x1234})
		return b
	}
	for _, tc := range []struct {
		name string
		pkt  []byte
	}{
		{"tcp bad checksum", ip4Packet(dst, uint8(header.TCPProtocolNumber), tcpSeg(header.TCPFlagSyn, 20, false), nil)},
		{"tcp data offset past the segment", ip4Packet(dst, uint8(header.TCPProtocolNumber), tcpSeg(header.TCPFlagSyn, 60, true), nil)},
		{"tcp data offset below 20", ip4Packet(dst, uint8(header.TCPProtocolNumber), tcpSeg(header.TCPFlagSyn, 8, true), nil)},
		{"udp length past the datagram", ip4Packet(dst, uint8(header.UDPProtocolNumber), udpDgram(200), nil)},
		{"udp length below 8", ip4Packet(dst, uint8(header.UDPProtocolNumber), udpDgram(3), nil)},
		{"udp bad checksum", ip4Packet(dst, uint8(header.UDPProtocolNumber), udpDgram(12), nil)},
		{"ip total length past the packet", ip4Packet(dst, uint8(header.UDPProtocolNumber), udpDgram(12), func(ip header.IPv4) { ip.SetTotalLength(400) })},
		{"icmp echo cut short", ip4Packet(dst, uint8(header.ICMPv4ProtocolNumber), []byte{8, 0, 0}, nil)},
		{"icmp echo bad checksum", ip4Packet(dst, uint8(header.ICMPv4ProtocolNumber), []byte{8, 0, 0x12, 0x34, 0, 1, 0, 1}, nil)},
		// gVisor's IPv6 layer drops this one itself, before the relay.
		{"icmpv6 echo bad checksum", ip6Packet(netip.MustParseAddr("2001:db8::1"), uint8(header.ICMPv6ProtocolNumber), []byte{128, 0, 0x12, 0x34, 0, 1, 0, 1})},
	} {
		before := h.r.Stats().Malformed
		h.sendRaw4(t, tc.pkt)
		deadline := time.Now().Add(2 * time.Second)
		for h.r.Stats().Malformed == before {
			if time.Now().After(deadline) {
				t.Errorf("%s: stats malformed still %d after the packet", tc.name, before)
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Nothing of it was relayed.
	if s := h.r.Stats(); s.TCPDialFailed != 0 || s.UDPFlows != 0 || s.ICMPEchoSent != 0 {
		t.Errorf("stats %+v: a malformed packet was relayed", s)

	}
}

// TestRawEchoIdentsUnique: raw echo flows toward one destination each
// get an identifier no other of them uses, until all 65536 are taken;
// a freed one can be picked again; another destination has its own
// 65536. Picked at random, two of a few hundred sessions to one host
// shared one, and each passed the other's replies to the namespace
// (as root, with ping sockets refused: 936 replies for 931 requests in
// an echo flood of 3000 identifiers through ustack run).
func TestRawEchoIdentsUnique(t *testing.T) {
	r := &Relay{rawIdents: map[rawIdent]struct{}{}}
	dst := netip.MustParseAddr("192.0.2.1")
	seen := map[uint16]bool{}
	for i := 0; i < 1<<16; i++ {
		id, ok := r.pickRawIdent(dst)
		if !ok || seen[id] {
			t.Fatalf("pick %d: pickRawIdent = %d, %v; want a fresh identifier", i, id, ok)
		}
		seen[id] = true
	}
	if id, ok := r.pickRawIdent(dst); ok {
		t.Fatalf("pickRawIdent with all 65536 taken = %d, true; want false", id)
	}
	r.dropRawIdent(&echoFlow{key: echoKey{dst: dst}, raw: true, ident: 4242})
	if id, ok := r.pickRawIdent(dst); !ok || id != 4242 {
		t.Errorf("pickRawIdent after 4242 was freed = %d, %v; want 4242", id, ok)
	}
	if _, ok := r.pickRawIdent(netip.MustParseAddr("192.0.2.2")); !ok {
		t.Error("pickRawIdent for another destination failed")
	}
}

// TestSendBufferBudget: connections whose namespace end stops reading
// while their host servers keep sending hold, in the relay, no more than
// the send-buffer budget plus the per-connection minimum. Without it each
// held what gVisor's auto-tuning gave it (up to 4 MiB): a command that
// opened --max-flows such connections made ustack hold 16 GiB.
func TestSendBufferBudget(t *testing.T) {
	leakcheck.Check(t)
	const conns = 4
	const budget = 256 << 10
	chunk := make([]byte, 64<<10)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveTCP(t, ln, func(c net.Conn) {
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	})
	h := newHarness(t, Config{AllowHostLoopback: true, SendBufferBudget: budget})
	dst := netip.AddrPortFrom(DefaultGateway4, ln.Addr().(*net.TCPAddr).AddrPort().Port()).String()
	for i := 0; i < conns; i++ {
		c, err := h.dial(t, dst)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close() // never read
	}
	// Wait until the relay stops taking bytes from the servers.
	var in uint64
	for stable := 0; stable < 5; {
		time.Sleep(100 * time.Millisecond)
		if now := h.r.Stats().BytesIn; now != in {
			in, stable = now, 0
		} else {
			stable++
		}
	}
	// Each namespace connection's window (gVisor's default 1 MiB receive
	// buffer) plus what the relay may hold: the budget, then the minimum
	// for each connection beyond it.
	limit := uint64(conns*(1<<20) + budget + conns*minSendBuffer + conns*(64<<10))
	if in > limit {
		t.Errorf("relay took %d bytes from the host for %d connections the namespace does not read; want at most %d (budget %d)", in, conns, limit, budget)
	}
	if got := h.r.sendReserved.Load(); got != budget+(conns-1)*minSendBuffer {
		t.Errorf("send buffer reserved = %d, want the %d budget then %d each", got, budget, minSendBuffer)
	}
}

// TestStaleSYNNotesPruned: a SYN the forwarder drops (too many
// handshakes in flight: a SYN flood) leaves the sequence-number note the
// relay keeps to quote in an ICMP unreachable, and nothing ever took it
// away: once 65536 had piled up, every later unreachable destination was
// answered with a reset (ECONNREFUSED) for the rest of the run. Notes
// older than any handler can still need are pruned when the table is
// full.
func TestStaleSYNNotesPruned(t *testing.T) {
	leakcheck.Check(t)
	h := newHarness(t, Config{DialTimeout: time.Second, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}
	}})
	// What a SYN flood left behind a minute ago.
	old := time.Now().Add(-time.Minute).UnixNano()
	h.r.synMu.Lock()
	for i := 0; i < maxSYNNotes; i++ {
		id := gstack.TransportEndpointID{LocalPort: 80, RemotePort: uint16(i), RemoteAddress: stack.Address(netip.AddrFrom4([4]byte{10, 0, 2, byte(i >> 8)}))}
		h.r.syns[id] = synNote{seq: 1, at: old}
	}
	h.r.synMu.Unlock()
	if _, err := h.dial(t, "192.0.2.1:80"); err == nil || !strings.Contains(err.Error(), "no route to host") {
		t.Fatalf("dial of an unreachable destination with the SYN notes full of stale ones = %v, want no route to host", err)
	}
}

// TestControlRefuse: a client Config.ControlRefuse turns away has every
// request answered with its error (it reads why, as for any bad request)
// and none carried out.
func TestControlRefuse(t *testing.T) {
	leakcheck.Check(t)
	h := newHarness(t, Config{ControlRefuse: func(net.Conn) error { return errors.New("not for you") }})
	c := dialControl(t, h)
	port := freePort(t, "tcp4", "127.0.0.1:0")
	rd := bufio.NewReader(c)
	for _, req := range []string{`{"op":"add","forward":"127.0.0.1:` + itoa(port) + `:80"}`, `{"op":"list"}`} {
		io.WriteString(c, req+"\n")
		line, err := rd.ReadString('\n')
		if err != nil || line != `{"ok":false,"error":"not for you"}`+"\n" {
			t.Errorf("%s from a refused client = %q, %v; want the refusal", req, line, err)
		}
	}
	if fs := h.r.Forwards(); len(fs) != 0 {
		t.Errorf("forwards after a refused client's add: %v", fs)
	}
}

// TestUnfinishedHandshakeResetsTheServer: when the namespace never
// completes its half of the handshake (a spoofed SYN here; CMD resetting
// or giving up mid-handshake likewise), the real server, whose connection
// the relay made first, must see it aborted (ECONNRESET), as it would see
// a client's reset on the real network, not a clean close: a FIN reads
// as "connected, sent nothing, finished", which a server may act on.
func TestUnfinishedHandshakeResetsTheServer(t *testing.T) {
	leakcheck.Check(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ended := make(chan error, 1)
	serveTCP(t, ln, func(c net.Conn) {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := c.Read(make([]byte, 1))
		ended <- err
	})
	port := ln.Addr().(*net.TCPAddr).AddrPort().Port()
	h := newHarness(t, Config{AllowHostLoopback: true, DialTimeout: 200 * time.Millisecond})
	h.sendSpoofedSYN(t, netip.MustParseAddrPort("10.0.2.50:40000"), netip.AddrPortFrom(DefaultGateway4, port))
	select {
	case err := <-ended:
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("the server's read ended with %v, want ECONNRESET", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the server's connection was never ended")
	}
}
