//go:build linux

package sockapi

// Tests from the sixth pass (branch qa6): the library as a program that
// embeds it uses it, where no earlier test looked.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/stack"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
)

// TestStackCloseWakesEveryBlockedCall extends TestStackClosedUnderSockets
// to the other calls an embedder has blocked when it closes the stack: a
// connect to a host that never answers, a write into a full send buffer,
// EpollWait, Poll, Select and a UDP Recvfrom. Each returns; none waits for
// a timeout that closing the stack made meaningless.
func TestStackCloseWakesEveryBlockedCall(t *testing.T) {
	leakcheck.Check(t)
	ea, eb := pipe.New("\x02\x00\x00\x00\x00\x01", "\x02\x00\x00\x00\x00\x02", 1500)
	eb.Close() // the link's far end never answers
	st, err := stack.New(stack.Config{NICs: []stack.NICConfig{{Endpoint: ea, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}}})
	if err != nil {
		t.Fatal(err)
	}
	s := New(st)
	defer s.CloseAll()
	_, srv := tcpPair(t, s, unix.AF_INET) // the client end never reads
	s.SetsockoptInt(srv, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096)
	s.SetNonblock(srv, true)
	for {
		if _, err := s.Write(srv, make([]byte, 1<<20)); err != nil {
			break
		}
	}
	s.SetNonblock(srv, false)
	hole := mustSocket(t, s, unix.AF_INET, unix.SOCK_STREAM, 0)
	u := mustSocket(t, s, unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err := s.Bind(u, loop4(0)); err != nil {
		t.Fatal(err)
	}
	ep, _ := s.EpollCreate1(0)
	if err := s.EpollCtl(ep, unix.EPOLL_CTL_ADD, u, &unix.EpollEvent{Events: unix.EPOLLIN}); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"Connect": func() error { return s.Connect(hole, &unix.SockaddrInet4{Port: 80, Addr: [4]byte{10, 0, 0, 2}}) },
		"Write":   func() error { _, err := s.Write(srv, make([]byte, 1<<20)); return err },
		"EpollWait": func() error {
			_, err := s.EpollWait(ep, make([]unix.EpollEvent, 2), -1)
			return err
		},
		"Poll": func() error { _, err := s.Poll([]unix.PollFd{{Fd: int32(u), Events: unix.POLLIN}}, -1); return err },
		"Select": func() error {
			var r unix.FdSet
			r.Set(u)
			_, err := s.Select(u+1, &r, nil, nil, nil)
			return err
		},
		"Recvfrom": func() error { _, _, err := s.Recvfrom(u, make([]byte, 4), 0); return err },
	}
	done := make(chan string, len(calls))
	for name, call := range calls {
		go func() { call(); done <- name }()
	}
	time.Sleep(50 * time.Millisecond)
	select {
	case name := <-done:
		t.Fatalf("%s returned before the stack closed", name)
	default:
	}
	st.Close()
	for range calls {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("a blocked call did not return after the stack closed")
		}
	}
}

// TestNetErrorsAsNet runs the same misuse and failures through package
// net on the kernel and through the adapters, and compares each error's
// text (addresses and ports masked), its *net.OpError fields and what
// errors.Is and Timeout say: programs match on all of these.
func TestNetErrorsAsNet(t *testing.T) {
	leakcheck.Check(t)
	s := netLoopback(t)
	type impl struct {
		listen func(network, addr string) (net.Listener, error)
		dial   func(ctx context.Context, network, addr string) (net.Conn, error)
		packet func(network, addr string) (net.PacketConn, error)
	}
	impls := []impl{
		{func(n, a string) (net.Listener, error) { return net.Listen(n, a) }, (&net.Dialer{}).DialContext,
			func(n, a string) (net.PacketConn, error) { return net.ListenPacket(n, a) }},
		{func(n, a string) (net.Listener, error) {
			return (&ListenConfig{Sockets: s}).Listen(context.Background(), n, a)
		},
			(&Dialer{Sockets: s}).DialContext,
			func(n, a string) (net.PacketConn, error) {
				return (&ListenConfig{Sockets: s}).ListenPacket(context.Background(), n, a)
			}},
	}
	var transcripts [2][]string
	for i, im := range impls {
		log := func(what string, err error) { transcripts[i] = append(transcripts[i], what+": "+netErrShape(err)) }
		l, err := im.listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		accepted := make(chan net.Conn, 1)
		go func() { c, _ := l.Accept(); accepted <- c }()
		c, err := im.dial(context.Background(), "tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		peer := <-accepted
		log("listener close", l.Close())
		log("listener close again", l.Close())
		_, err = l.Accept()
		log("accept after close", err)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		read := make(chan error, 1)
		go func() { _, err := c.Read(make([]byte, 1)); read <- err }()
		time.Sleep(20 * time.Millisecond)
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond)) // moved nearer while blocked
		log("read past a moved deadline", <-read)
		c.SetReadDeadline(time.Time{})
		peer.(interface{ SetLinger(int) error }).SetLinger(0)
		peer.Close()
		time.Sleep(20 * time.Millisecond)
		_, err = c.Read(make([]byte, 1))
		log("read after reset", err)
		_, err = c.Read(make([]byte, 1))
		log("read after reset again", err)
		_, err = c.Write([]byte("x"))
		log("write after reset", err)
		log("close", c.Close())
		log("close again", c.Close())
		_, err = c.Read(make([]byte, 1))
		log("read after close", err)
		_, err = c.Write([]byte("x"))
		log("write after close", err)
		log("deadline after close", c.SetDeadline(time.Now()))
		cancelled, cancel := context.WithCancel(context.Background())
		cancel()
		_, err = im.dial(cancelled, "tcp", "127.0.0.1:1")
		log("dial cancelled", err)
		expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		_, err = im.dial(expired, "tcp", "127.0.0.1:1")
		cancel()
		log("dial expired", err)
		_, err = im.dial(context.Background(), "tcp", "127.0.0.1:1")
		log("dial refused", err)
		_, err = im.dial(context.Background(), "tcp", "127.0.0.1")
		log("dial without port", err)
		_, err = im.dial(context.Background(), "foo", "127.0.0.1:1")
		log("dial unknown network", err)
		_, err = im.dial(context.Background(), "tcp", "127.0.0.1:nosuchservice")
		log("dial unknown service", err)
		_, err = im.dial(context.Background(), "tcp6", "127.0.0.1:1")
		log("dial tcp6 to IPv4", err)
		_, err = im.dial(context.Background(), "tcp4", "[::1]:1")
		log("dial tcp4 to IPv6", err)
		l, err = im.listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, err = im.listen("tcp", l.Addr().String())
		log("listen in use", err)
		_, err = im.listen("tcp", "192.0.2.1:0")
		log("listen on another host's address", err)
		_, err = im.listen("tcp", "127.0.0.1:-1")
		log("listen on port -1", err)
		c, err = im.dial(context.Background(), "tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.(interface{ CloseWrite() error }).CloseWrite()
		_, err = c.Write([]byte("x"))
		log("write after CloseWrite", err)
		c.(interface{ CloseRead() error }).CloseRead()
		_, err = c.Read(make([]byte, 1))
		log("read after CloseRead", err)
		c.Close()
		log("SetNoDelay after close", c.(interface{ SetNoDelay(bool) error }).SetNoDelay(true))
		log("SetReadBuffer after close", c.(interface{ SetReadBuffer(int) error }).SetReadBuffer(100))
		l.Close()
		pc, err := im.packet("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, err = pc.WriteTo([]byte("x"), nil)
		log("WriteTo nil", err)
		_, err = pc.WriteTo([]byte("x"), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9})
		log("WriteTo a TCPAddr", err)
		_, err = pc.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv6loopback, Port: 9})
		log("WriteTo IPv6 from an IPv4 socket", err)
		_, err = pc.(net.Conn).Write([]byte("x"))
		log("Write unconnected", err)
		pc.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		_, _, err = pc.ReadFrom(make([]byte, 1))
		log("udp read past deadline", err)
		pc.Close()
		_, _, err = pc.ReadFrom(make([]byte, 1))
		log("udp read after close", err)
		_, err = pc.WriteTo([]byte("x"), pc.LocalAddr())
		log("udp write after close", err)
		log("udp close again", pc.Close())
	}
	for i := range transcripts[0] {
		if transcripts[0][i] != transcripts[1][i] {
			t.Errorf("net:      %s\nadapters: %s", transcripts[0][i], transcripts[1][i])
		}
	}
}

var netAddrRE = regexp.MustCompile(`(\[[0-9a-f:.]+\]|[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+):[0-9]+`)

// netErrShape describes err as a program sees it, with addresses masked.
func netErrShape(err error) string {
	if err == nil {
		return "nil"
	}
	s := fmt.Sprintf("%q", netAddrRE.ReplaceAllString(err.Error(), "ADDR"))
	var oe *net.OpError
	if errors.As(err, &oe) {
		s += fmt.Sprintf(" op=%s net=%s source=%v addr=%v", oe.Op, oe.Net, oe.Source != nil, oe.Addr != nil)
	}
	for _, target := range []error{net.ErrClosed, os.ErrDeadlineExceeded, io.EOF, syscall.ECONNRESET,
		syscall.EPIPE, syscall.ECONNREFUSED, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, target) {
			s += fmt.Sprintf(" is(%v)", target)
		}
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		s += " timeout"
	}
	return s
}

// TestDatagramsCrossSmallerMTUHop: a UDP datagram too big for a router's
// next hop reaches the far host, over IPv4, as on Linux. A Linux sender
// leaves DF off a datagram bigger than the path MTU (ignore_df: it is
// fragmented) and, for smaller ones, learns the path MTU from the
// router's "fragmentation needed" and fragments the next ones itself.
// gVisor sets DF on every datagram and its fragments (PMTUDiscoveryWant)
// but has no path MTU feedback for datagram sockets, so every such
// datagram was dropped at the router, for good. Sockets' datagram
// endpoints now leave DF off, so routers fragment them.
func TestDatagramsCrossSmallerMTUHop(t *testing.T) {
	leakcheck.Check(t)
	// The first link's MTU is big enough for every datagram sent: the
	// router is the first to fragment. (A gVisor router mangles a
	// fragment it must split again: docs/qa6.md.)
	a1, r1 := pipe.New("\x02\x00\x00\x00\x00\x01", "\x02\x00\x00\x00\x00\x02", 9000)
	r2, b1 := pipe.New("\x02\x00\x00\x00\x00\x03", "\x02\x00\x00\x00\x00\x04", 1400)
	P := netip.MustParsePrefix
	mk := func(cfg stack.Config) *stack.Stack {
		s, err := stack.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s
	}
	a := New(mk(stack.Config{NICs: []stack.NICConfig{{Endpoint: a1, Addrs: []netip.Prefix{P("10.0.1.2/24")}}},
		Routes: []stack.Route{{Dest: P("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.0.1.1"), NIC: "eth2"}}}))
	mk(stack.Config{Forwarding: true, NICs: []stack.NICConfig{
		{Endpoint: r1, Addrs: []netip.Prefix{P("10.0.1.1/24")}},
		{Endpoint: r2, Addrs: []netip.Prefix{P("10.0.2.1/24")}}}})
	b := New(mk(stack.Config{NICs: []stack.NICConfig{{Endpoint: b1, Addrs: []netip.Prefix{P("10.0.2.2/24")}}},
		Routes: []stack.Route{{Dest: P("0.0.0.0/0"), Gateway: netip.MustParseAddr("10.0.2.1"), NIC: "eth2"}}}))
	defer a.CloseAll()
	defer b.CloseAll()
	rcv := mustSocket(t, b, unix.AF_INET, unix.SOCK_DGRAM, 0)
	dst := &unix.SockaddrInet4{Port: 5353, Addr: [4]byte{10, 0, 2, 2}}
	if err := b.Bind(rcv, dst); err != nil {
		t.Fatal(err)
	}
	b.SetsockoptTimeval(rcv, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 300000})
	snd := mustSocket(t, a, unix.AF_INET, unix.SOCK_DGRAM, 0)
	buf := make([]byte, 9000)
	for _, size := range []int{1300, 1450, 3000, 8000} {
		if err := a.Sendto(snd, make([]byte, size), 0, dst); err != nil {
			t.Fatalf("Sendto(%d bytes) = %v", size, err)
		}
		if n, _, err := b.Recvfrom(rcv, buf, 0); n != size || err != nil {
			t.Errorf("a %d-byte datagram across a 1400-byte hop: Recvfrom = %d, %v; want it whole", size, n, err)
		}
	}
}

// TestStackCloseEndsDatagramReads: once the stack is closed under a UDP
// socket, its reads fail with ENETDOWN. They returned 0 with no source
// address, which reads as an empty datagram: a server loop on
// UDPConn.ReadFrom got (0, nil, nil) forever, spinning at full CPU with a
// nil address, and never saw the end. (A read after shutdown(SHUT_RD)
// still returns 0, as on Linux.)
func TestStackCloseEndsDatagramReads(t *testing.T) {
	leakcheck.Check(t)
	st, err := stack.New(stack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s := New(st)
	defer s.CloseAll()
	u := mustSocket(t, s, unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err := s.Bind(u, loop4(0)); err != nil {
		t.Fatal(err)
	}
	pc, err := (&ListenConfig{Sockets: s}).ListenPacket(context.Background(), "udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	blocked := make(chan error, 1)
	go func() { _, _, err := s.Recvfrom(u, make([]byte, 8), 0); blocked <- err }()
	time.Sleep(20 * time.Millisecond)
	st.Close()
	if err := <-blocked; err != unix.ENETDOWN {
		t.Errorf("Recvfrom blocked when the stack closed = %v, want ENETDOWN", err)
	}
	if n, from, err := s.Recvfrom(u, make([]byte, 8), 0); err != unix.ENETDOWN {
		t.Errorf("Recvfrom after the stack closed = %d, %v, %v; want ENETDOWN", n, from, err)
	}
	if n, addr, err := pc.ReadFrom(make([]byte, 8)); err == nil || !errors.Is(err, unix.ENETDOWN) {
		t.Errorf("UDPConn.ReadFrom after the stack closed = %d, %v, %v; want an error wrapping ENETDOWN", n, addr, err)
	}
}
