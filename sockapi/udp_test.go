//go:build linux

package sockapi

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/stack"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
)

func boundUDP(t *testing.T, s *Sockets, family int) (int, unix.Sockaddr) {
	t.Helper()
	fd := mustSocket(t, s, family, unix.SOCK_DGRAM, 0)
	var sa unix.Sockaddr = loop4(0)
	if family == unix.AF_INET6 {
		sa = loop6(0)
	}
	if err := s.Bind(fd, sa); err != nil {
		t.Fatalf("Bind = %v", err)
	}
	sa, _ = s.Getsockname(fd)
	return fd, sa
}

func TestUDPSendtoRecvfrom(t *testing.T) {
	for _, fam := range []struct {
		name string
		af   int
	}{{"ipv4", unix.AF_INET}, {"ipv6", unix.AF_INET6}} {
		t.Run(fam.name, func(t *testing.T) {
			leakcheck.Check(t)
			s := newTestSockets(t)
			srv, addr := boundUDP(t, s, fam.af)
			c := mustSocket(t, s, fam.af, unix.SOCK_DGRAM, 0)
			if err := s.Sendto(c, []byte("0123456789"), 0, addr); err != nil {
				t.Fatalf("Sendto = %v", err)
			}
			local, _ := s.Getsockname(c)
			if portOf(local) == 0 {
				t.Errorf("Getsockname after first Sendto = %+v, want an auto-bound port", local)
			}
			buf := make([]byte, 100)
			n, from, err := s.Recvfrom(srv, buf[:3], unix.MSG_PEEK|unix.MSG_TRUNC)
			if n != 10 || err != nil || string(buf[:3]) != "012" {
				t.Errorf("Recvfrom(3, MSG_PEEK|MSG_TRUNC) = %d, %v %q, want 10 (real length), 012", n, err, buf[:3])
			}
			if portOf(from) != portOf(local) {
				t.Errorf("Recvfrom source = %+v, want port of %+v", from, local)
			}
			n, _, err = s.Recvfrom(srv, buf[:3], 0)
			if n != 3 || err != nil {
				t.Errorf("Recvfrom(3) of a 10-byte datagram = %d, %v, want 3 (truncated)", n, err)
			}
			if n, _, err := s.Recvfrom(srv, buf, unix.MSG_DONTWAIT); n != -1 || err != unix.EAGAIN {
				t.Errorf("Recvfrom after truncated read = %d, %v, want EAGAIN: the rest is discarded", n, err)
			}
			// Zero-length datagrams are datagrams.
			if err := s.Sendto(c, nil, 0, addr); err != nil {
				t.Fatalf("Sendto(empty) = %v", err)
			}
			n, from, err = s.Recvfrom(srv, buf, 0)
			if n != 0 || err != nil || from == nil {
				t.Errorf("Recvfrom(empty datagram) = %d, %+v, %v, want 0 with a source", n, from, err)
			}
		})
	}
}

func TestUDPConnected(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	a, aaddr := boundUDP(t, s, unix.AF_INET)
	b, baddr := boundUDP(t, s, unix.AF_INET)
	other, _ := boundUDP(t, s, unix.AF_INET)
	if err := s.Connect(a, baddr); err != nil {
		t.Fatalf("Connect = %v", err)
	}
	if p, err := s.Getpeername(a); err != nil || portOf(p) != portOf(baddr) {
		t.Errorf("Getpeername = %+v, %v, want %+v", p, err, baddr)
	}
	// The peer filter: a datagram from elsewhere never arrives.
	s.Sendto(other, []byte("stranger"), 0, aaddr)
	s.Sendto(b, []byte("peer"), 0, aaddr)
	buf := make([]byte, 16)
	if n, err := s.Read(a, buf); n != 4 || string(buf[:4]) != "peer" || err != nil {
		t.Errorf("Read(connected) = %d %q, %v, want the peer's datagram only", n, buf[:n], err)
	}
	if n, err := s.Write(a, []byte("hi")); n != 2 || err != nil {
		t.Errorf("Write(connected) = %d, %v", n, err)
	}
	if n, _, err := s.Recvfrom(b, buf, 0); n != 2 || err != nil {
		t.Errorf("Recvfrom(peer) = %d, %v", n, err)
	}
	if err := s.Shutdown(a, unix.SHUT_WR); err != nil {
		t.Fatalf("Shutdown(connected udp, SHUT_WR) = %v", err)
	}
	if n, err := s.Write(a, []byte("x")); n != -1 || err != unix.EPIPE {
		t.Errorf("Write after SHUT_WR = %d, %v, want EPIPE", n, err)
	}
}

// TestUDPConnRefused: a connected UDP socket learns of an ICMP port
// unreachable and reports ECONNREFUSED on its next call, once.
func TestUDPConnRefused(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	closed, addr := boundUDP(t, s, unix.AF_INET)
	s.Close(closed)
	c := mustSocket(t, s, unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err := s.Connect(c, addr); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(c, []byte("x")); err != nil {
		t.Fatalf("first Write = %v", err)
	}
	s.SetsockoptTimeval(c, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 2})
	if n, err := s.Read(c, make([]byte, 1)); n != -1 || err != unix.ECONNREFUSED {
		t.Errorf("Read after ICMP port unreachable = %d, %v, want -1, ECONNREFUSED", n, err)
	}
	if v, err := s.GetsockoptInt(c, unix.SOL_SOCKET, unix.SO_ERROR); v != 0 || err != nil {
		t.Errorf("SO_ERROR after the error was reported = %d, %v, want 0", v, err)
	}
}

func TestUDPBroadcast(t *testing.T) {
	leakcheck.Check(t)
	ch := channel.New(16, 1500, "\x02\x00\x00\x00\x00\x01")
	st, err := stack.New(stack.Config{NICs: []stack.NICConfig{{
		Endpoint: ch, Addrs: []netip.Prefix{netip.MustParsePrefix("10.9.0.1/24")},
	}}, Routes: []stack.Route{{Dest: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.9.0.254"), NIC: "eth2"}}})
	if err != nil {
		t.Fatal(err)
	}
	s := New(st)
	t.Cleanup(func() { s.CloseAll(); st.Close() })
	fd := mustSocket(t, s, unix.AF_INET, unix.SOCK_DGRAM, 0)
	bcast := &unix.SockaddrInet4{Port: 9, Addr: [4]byte{10, 9, 0, 255}}
	if err := s.Sendto(fd, []byte("x"), 0, bcast); err != unix.EACCES {
		t.Errorf("Sendto(broadcast, no SO_BROADCAST) = %v, want EACCES", err)
	}
	s.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1)
	if err := s.Sendto(fd, []byte("x"), 0, bcast); err != nil {
		t.Errorf("Sendto(broadcast, SO_BROADCAST) = %v, want nil", err)
	}
	if pkt := ch.Read(); pkt == nil {
		t.Errorf("no broadcast packet left the NIC")
	} else {
		pkt.DecRef()
	}
	// The limited broadcast address, routed by the default route.
	u := mustSocket(t, s, unix.AF_INET, unix.SOCK_DGRAM, 0)
	all := &unix.SockaddrInet4{Port: 9, Addr: [4]byte{255, 255, 255, 255}}
	if err := s.Sendto(u, []byte("x"), 0, all); err != unix.EACCES {
		t.Errorf("Sendto(255.255.255.255, no SO_BROADCAST) = %v, want EACCES", err)
	}
	s.SetsockoptInt(u, unix.SOL_SOCKET, unix.SO_BROADCAST, 1)
	if err := s.Sendto(u, []byte("x"), 0, all); err != nil {
		t.Errorf("Sendto(255.255.255.255, SO_BROADCAST) = %v, want nil", err)
	}
	for pkt := ch.Read(); pkt != nil; pkt = ch.Read() {
		pkt.DecRef()
	}
}

func TestPing(t *testing.T) {
	for _, tc := range []struct {
		name         string
		af, proto    int
		dst          unix.Sockaddr
		req, wantRep byte
	}{
		{"ipv4", unix.AF_INET, unix.IPPROTO_ICMP, loop4(77), 8, 0},
		{"ipv6", unix.AF_INET6, unix.IPPROTO_ICMPV6, loop6(77), 128, 129},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leakcheck.Check(t)
			s := newTestSockets(t)
			fd := mustSocket(t, s, tc.af, unix.SOCK_DGRAM, tc.proto)
			req := []byte{tc.req, 0, 0, 0, 0, 0, 0, 7, 'p', 'i', 'n', 'g'}
			if err := s.Sendto(fd, req, 0, tc.dst); err != nil {
				t.Fatalf("Sendto(echo request) = %v", err)
			}
			s.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5})
			buf := make([]byte, 64)
			n, from, err := s.Recvfrom(fd, buf, 0)
			if err != nil || n != len(req) {
				t.Fatalf("Recvfrom = %d, %v, want %d bytes", n, err, len(req))
			}
			if buf[0] != tc.wantRep || buf[7] != 7 || string(buf[8:n]) != "ping" {
				t.Errorf("reply = % x, want type %d, seq 7, payload ping", buf[:n], tc.wantRep)
			}
			if portOf(from) != 0 {
				t.Errorf("reply source = %+v, want port 0", from)
			}
			if err := s.Connect(fd, tc.dst); err != nil {
				t.Fatalf("Connect = %v", err)
			}
			if tc.af == unix.AF_INET {
				if err := s.Connect(fd, loop4(0)); err != nil {
					t.Errorf("Connect(ping socket, again, port 0) = %v", err)
				}
				if _, err := s.Getpeername(fd); err != unix.ENOTCONN {
					t.Errorf("Getpeername(ping socket connected to port 0) = %v, want ENOTCONN", err)
				}
				s.Connect(fd, tc.dst)
			}
			if p, err := s.Getpeername(fd); err != nil || portOf(p) != 77 {
				t.Errorf("Getpeername(ping socket connected to port 77) = %+v, %v, want port 77 (inet_dport)", p, err)
			}
			if err := s.Sendto(fd, []byte{tc.req, 0}, 0, tc.dst); err != unix.EINVAL {
				t.Errorf("Sendto(2-byte request) = %v, want EINVAL", err)
			}
		})
	}
}

// TestUDPMsgMore: sends with MSG_MORE gather into one datagram for the
// first one's destination; growing past 65507 bytes drops it with
// EMSGSIZE (measured on Linux 6.x).
func TestUDPMsgMore(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	r, raddr := boundUDP(t, s, unix.AF_INET)
	other, oaddr := boundUDP(t, s, unix.AF_INET)
	u := mustSocket(t, s, unix.AF_INET, unix.SOCK_DGRAM, 0)
	if n, err := s.Send(u, []byte("ab"), unix.MSG_MORE); n != -1 || err != unix.EDESTADDRREQ {
		t.Errorf("Send(MSG_MORE, unconnected) = %d, %v, want EDESTADDRREQ", n, err)
	}
	if err := s.Sendto(u, []byte("ab"), unix.MSG_MORE, raddr); err != nil {
		t.Fatalf("Sendto(MSG_MORE) = %v", err)
	}
	s.Sendto(u, []byte("cd"), unix.MSG_MORE, oaddr)
	buf := make([]byte, 100)
	if n, _, err := s.Recvfrom(r, buf, unix.MSG_DONTWAIT); err != unix.EAGAIN {
		t.Errorf("Recvfrom while corked = %d, %v, want EAGAIN", n, err)
	}
	if n, err := s.Send(u, []byte("ef"), 0); n != 2 || err != nil {
		t.Errorf("Send(flush) = %d, %v, want 2", n, err)
	}
	if n, _, err := s.Recvfrom(r, buf, 0); n != 6 || err != nil || string(buf[:n]) != "abcdef" {
		t.Errorf("Recvfrom = %d %q, %v, want abcdef", n, buf[:n], err)
	}
	if n, _, err := s.Recvfrom(other, buf, unix.MSG_DONTWAIT); err != unix.EAGAIN {
		t.Errorf("Recvfrom(later destination) = %d, %v, want EAGAIN", n, err)
	}
	s.Sendto(u, make([]byte, 40000), unix.MSG_MORE, raddr)
	if err := s.Sendto(u, make([]byte, 40000), unix.MSG_MORE, raddr); err != unix.EMSGSIZE {
		t.Errorf("Sendto(corked past 65507) = %v, want EMSGSIZE", err)
	}
	s.Sendto(u, []byte("x"), 0, raddr)
	if n, _, err := s.Recvfrom(r, buf, 0); n != 1 || err != nil {
		t.Errorf("Recvfrom after EMSGSIZE = %d, %v, want the 1-byte datagram alone", n, err)
	}
}

// TestUDPCork: with UDP_CORK every send is held; clearing it sends one
// datagram (udp_push_pending_frames).
func TestUDPCork(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	r, raddr := boundUDP(t, s, unix.AF_INET6)
	u := mustSocket(t, s, unix.AF_INET6, unix.SOCK_DGRAM, 0)
	s.SetsockoptInt(u, unix.SOL_UDP, unix.UDP_CORK, 1)
	s.Sendto(u, []byte("one "), 0, raddr)
	s.Sendto(u, []byte("two"), 0, raddr)
	buf := make([]byte, 16)
	if n, _, err := s.Recvfrom(r, buf, unix.MSG_DONTWAIT); err != unix.EAGAIN {
		t.Errorf("Recvfrom while UDP_CORK = %d, %v, want EAGAIN", n, err)
	}
	if err := s.SetsockoptInt(u, unix.SOL_UDP, unix.UDP_CORK, 0); err != nil {
		t.Fatalf("SetsockoptInt(UDP_CORK, 0) = %v", err)
	}
	if n, _, err := s.Recvfrom(r, buf, 0); n != 7 || err != nil || string(buf[:n]) != "one two" {
		t.Errorf("Recvfrom after uncork = %d %q, %v, want \"one two\"", n, buf[:n], err)
	}
}

// TestUDPShutdownRead: after SHUT_RD a connected UDP socket still queues
// datagrams (Linux); an empty queue reads as end of file when blocking
// and EAGAIN when not.
func TestUDPShutdownRead(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	a, aaddr := boundUDP(t, s, unix.AF_INET)
	b, baddr := boundUDP(t, s, unix.AF_INET)
	s.Connect(a, baddr)
	if err := s.Shutdown(a, unix.SHUT_RD); err != nil {
		t.Fatalf("Shutdown(SHUT_RD) = %v", err)
	}
	buf := make([]byte, 10)
	if n, _, err := s.Recvfrom(a, buf, 0); n != 0 || err != nil {
		t.Errorf("Recvfrom(blocking, empty, SHUT_RD) = %d, %v, want 0", n, err)
	}
	if n, _, err := s.Recvfrom(a, buf, unix.MSG_DONTWAIT); n != -1 || err != unix.EAGAIN {
		t.Errorf("Recvfrom(MSG_DONTWAIT, empty, SHUT_RD) = %d, %v, want EAGAIN", n, err)
	}
	s.Sendto(b, []byte("after"), 0, aaddr)
	time.Sleep(20 * time.Millisecond)
	if n, from, err := s.Recvfrom(a, buf, 0); n != 5 || err != nil || portOf(from) != portOf(baddr) {
		t.Errorf("Recvfrom(datagram sent after SHUT_RD) = %d, %+v, %v, want 5 from %+v", n, from, err, baddr)
	}
	u := mustSocket(t, s, unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err := s.Shutdown(u, unix.SHUT_RDWR); err != unix.ENOTCONN {
		t.Errorf("Shutdown(unconnected udp) = %v, want ENOTCONN", err)
	}
}
