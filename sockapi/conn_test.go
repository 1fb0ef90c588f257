//go:build linux

package sockapi

import (
	"bytes"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"golang.org/x/sys/unix"
)

func TestSocketErrno(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	for _, tc := range []struct {
		name             string
		domain, typ, pro int
		want             error
	}{
		{"tcp4", unix.AF_INET, unix.SOCK_STREAM, 0, nil},
		{"tcp6", unix.AF_INET6, unix.SOCK_STREAM, unix.IPPROTO_TCP, nil},
		{"udp4", unix.AF_INET, unix.SOCK_DGRAM, 0, nil},
		{"udp6 nonblock cloexec", unix.AF_INET6, unix.SOCK_DGRAM | unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC, unix.IPPROTO_UDP, nil},
		{"ping4", unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP, nil},
		{"ping6", unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_ICMPV6, nil},
		{"stream udp", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_UDP, unix.EPROTONOSUPPORT},
		{"dgram tcp", unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_TCP, unix.EPROTONOSUPPORT},
		{"icmpv6 on inet", unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMPV6, unix.EPROTONOSUPPORT},
		{"icmp on inet6", unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_ICMP, unix.EPROTONOSUPPORT},
		{"seqpacket", unix.AF_INET, unix.SOCK_SEQPACKET, 0, unix.ESOCKTNOSUPPORT},
		{"type 0", unix.AF_INET, 0, 0, unix.ESOCKTNOSUPPORT},
		{"type 11", unix.AF_INET, 11, 0, unix.EINVAL},
		{"bad flag", unix.AF_INET, unix.SOCK_STREAM | 0x1000, 0, unix.EINVAL},
		{"proto -1", unix.AF_INET, unix.SOCK_STREAM, -1, unix.EINVAL},
		{"proto 256", unix.AF_INET, unix.SOCK_STREAM, 256, unix.EPROTONOSUPPORT},
		{"unix", unix.AF_UNIX, unix.SOCK_STREAM, 0, unix.EAFNOSUPPORT},
		{"family -1", -1, unix.SOCK_STREAM, 0, unix.EAFNOSUPPORT},
		{"bad flag beats family", -1, unix.SOCK_STREAM | 0x1000, 0, unix.EINVAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fd, err := s.Socket(tc.domain, tc.typ, tc.pro)
			if err != tc.want {
				t.Fatalf("Socket(%d, %#x, %d) = %d, %v, want %v", tc.domain, tc.typ, tc.pro, fd, err, tc.want)
			}
			if err == nil {
				if err := s.Close(fd); err != nil {
					t.Errorf("Close(%d) = %v", fd, err)
				}
			} else if fd != -1 {
				t.Errorf("Socket(...) fd = %d on error, want -1", fd)
			}
		})
	}
}

func TestLowestFreeDescriptor(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	a := mustSocket(t, s, unix.AF_INET, unix.SOCK_STREAM, 0)
	b := mustSocket(t, s, unix.AF_INET, unix.SOCK_DGRAM, 0)
	if a != 0 || b != 1 {
		t.Fatalf("first descriptors = %d, %d, want 0, 1", a, b)
	}
	s.Close(a)
	if c := mustSocket(t, s, unix.AF_INET, unix.SOCK_STREAM, 0); c != 0 {
		t.Errorf("Socket after Close(0) = %d, want 0", c)
	}
	if err := s.Close(7); err != unix.EBADF {
		t.Errorf("Close(7) = %v, want EBADF", err)
	}
	if err := s.Close(-1); err != unix.EBADF {
		t.Errorf("Close(-1) = %v, want EBADF", err)
	}
}

func TestTCPEcho(t *testing.T) {
	for _, fam := range []struct {
		name string
		af   int
	}{{"ipv4", unix.AF_INET}, {"ipv6", unix.AF_INET6}} {
		t.Run(fam.name, func(t *testing.T) {
			leakcheck.Check(t)
			s := newTestSockets(t)
			c, srv := tcpPair(t, s, fam.af)
			want := bytes.Repeat([]byte("0123456789"), 100000) // 1 MB: more than the buffers
			done := make(chan error, 1)
			go func() {
				n, err := s.Write(c, want)
				if err == nil && n != len(want) {
					err = unix.EIO
				}
				if err == nil {
					err = s.Shutdown(c, unix.SHUT_WR)
				}
				done <- err
			}()
			var got []byte
			buf := make([]byte, 64<<10)
			for {
				n, err := s.Read(srv, buf)
				if err != nil {
					t.Fatalf("Read(%d) = %d, %v", srv, n, err)
				}
				if n == 0 {
					break
				}
				got = append(got, buf[:n]...)
			}
			if err := <-done; err != nil {
				t.Fatalf("Write+Shutdown(%d) = %v", c, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Read got %d bytes, want %d identical", len(got), len(want))
			}
			// Half-close the other way: the server still writes.
			if n, err := s.Write(srv, []byte("bye")); n != 3 || err != nil {
				t.Fatalf("Write(server after peer SHUT_WR) = %d, %v, want 3, nil", n, err)
			}
			if n, err := s.Read(c, buf); n != 3 || err != nil || string(buf[:3]) != "bye" {
				t.Fatalf("Read(client after own SHUT_WR) = %d, %v, want 3, nil", n, err)
			}
			if n, err := s.Write(c, []byte("x")); n != -1 || err != unix.EPIPE {
				t.Errorf("Write(after SHUT_WR) = %d, %v, want -1, EPIPE", n, err)
			}
		})
	}
}

func TestConnectRefused(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	c := mustSocket(t, s, unix.AF_INET, unix.SOCK_STREAM, 0)
	if err := s.Connect(c, loop4(1)); err != unix.ECONNREFUSED {
		t.Fatalf("Connect(closed port) = %v, want ECONNREFUSED", err)
	}
}

func TestConnectNonblocking(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	l, addr := listener(t, s, unix.AF_INET)
	c := mustSocket(t, s, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err := s.Connect(c, addr); err != unix.EINPROGRESS {
		t.Fatalf("Connect(nonblocking) = %v, want EINPROGRESS", err)
	}
	waitReady(t, s, c)
	if err := s.Connect(c, addr); err != nil {
		t.Errorf("Connect(after completion) = %v, want nil", err)
	}
	if err := s.Connect(c, addr); err != unix.EISCONN {
		t.Errorf("Connect(connected) = %v, want EISCONN", err)
	}
	if _, _, err := s.Accept(l); err != nil {
		t.Errorf("Accept = %v", err)
	}

	r := mustSocket(t, s, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err := s.Connect(r, loop4(1)); err != unix.EINPROGRESS {
		t.Fatalf("Connect(nonblocking, closed port) = %v, want EINPROGRESS", err)
	}
	waitReady(t, s, r)
	if v, err := s.GetsockoptInt(r, unix.SOL_SOCKET, unix.SO_ERROR); v != int(unix.ECONNREFUSED) || err != nil {
		t.Errorf("GetsockoptInt(SO_ERROR) = %d, %v, want ECONNREFUSED", v, err)
	}
	if v, err := s.GetsockoptInt(r, unix.SOL_SOCKET, unix.SO_ERROR); v != 0 || err != nil {
		t.Errorf("GetsockoptInt(SO_ERROR) again = %d, %v, want 0 (reported once)", v, err)
	}
}

// waitReady waits until fd is writable or in error, through the file
// interface Poll uses.
func waitReady(t *testing.T, s *Sockets, fd int) {
	t.Helper()
	_, sk, err := s.sock(fd)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for sk.Readiness(writeEvents) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("fd %d never became writable", fd)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCloseWakesBlockedCalls(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	c, srv := tcpPair(t, s, unix.AF_INET)
	l, _ := listener(t, s, unix.AF_INET)
	errs := make(chan error, 2)
	go func() { _, err := s.Read(c, make([]byte, 10)); errs <- err }()
	go func() { _, _, err := s.Accept(l); errs <- err }()
	time.Sleep(50 * time.Millisecond)
	s.Close(c)
	s.Close(l)
	for i := 0; i < 2; i++ {
		select {
		case err := <-errs:
			if err != unix.EBADF {
				t.Errorf("blocked call after Close = %v, want EBADF", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not wake a blocked call")
		}
	}
	s.Close(srv)
}

func TestGetsocknameGetpeername(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	c, srv := tcpPair(t, s, unix.AF_INET)
	local, err := s.Getsockname(c)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := s.Getpeername(srv)
	if err != nil {
		t.Fatal(err)
	}
	if *local.(*unix.SockaddrInet4) != *peer.(*unix.SockaddrInet4) {
		t.Errorf("Getsockname(client) = %+v, Getpeername(server) = %+v, want equal", local, peer)
	}
	u := mustSocket(t, s, unix.AF_INET6, unix.SOCK_STREAM, 0)
	if sa, err := s.Getsockname(u); err != nil || *sa.(*unix.SockaddrInet6) != (unix.SockaddrInet6{}) {
		t.Errorf("Getsockname(unbound v6) = %+v, %v, want [::]:0", sa, err)
	}
	if _, err := s.Getpeername(u); err != unix.ENOTCONN {
		t.Errorf("Getpeername(unconnected) = %v, want ENOTCONN", err)
	}
}

func TestV4MappedOnDualStack(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	l := mustSocket(t, s, unix.AF_INET6, unix.SOCK_STREAM, 0)
	if err := s.Bind(l, &unix.SockaddrInet6{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(l, 1); err != nil {
		t.Fatal(err)
	}
	sa, _ := s.Getsockname(l)
	c := mustSocket(t, s, unix.AF_INET, unix.SOCK_STREAM, 0)
	if err := s.Connect(c, loop4(portOf(sa))); err != nil {
		t.Fatalf("Connect(v4 to dual-stack listener) = %v", err)
	}
	srv, peer, err := s.Accept(l)
	if err != nil {
		t.Fatal(err)
	}
	want := [16]byte{10: 0xff, 11: 0xff, 12: 127, 15: 1}
	if p, ok := peer.(*unix.SockaddrInet6); !ok || p.Addr != want {
		t.Errorf("Accept peer = %+v, want ::ffff:127.0.0.1", peer)
	}
	if loc, _ := s.Getsockname(srv); loc.(*unix.SockaddrInet6).Addr != want {
		t.Errorf("Getsockname(accepted) = %+v, want ::ffff:127.0.0.1", loc)
	}
}

// TestShutdownReadKeepsData: after SHUT_RD, Linux still queues what the
// peer sends and reads return it before end of file; SHUT_RDWR with
// unread data sends a FIN, not a reset.
func TestShutdownReadKeepsData(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	c, srv := tcpPair(t, s, unix.AF_INET)
	if err := s.Shutdown(srv, unix.SHUT_RD); err != nil {
		t.Fatalf("Shutdown(SHUT_RD) = %v", err)
	}
	buf := make([]byte, 10)
	if n, err := s.Read(srv, buf); n != 0 || err != nil {
		t.Errorf("Read(after SHUT_RD, nothing queued) = %d, %v, want 0 (EOF)", n, err)
	}
	s.Write(c, []byte("late"))
	time.Sleep(20 * time.Millisecond)
	if n, err := s.Read(srv, buf); n != 4 || err != nil || string(buf[:4]) != "late" {
		t.Errorf("Read(after SHUT_RD, data sent later) = %d %q, %v, want 4 late", n, buf[:n], err)
	}
	s.Write(c, []byte("unread"))
	time.Sleep(20 * time.Millisecond)
	if err := s.Shutdown(srv, unix.SHUT_RDWR); err != nil {
		t.Fatalf("Shutdown(SHUT_RDWR) = %v", err)
	}
	s.SetsockoptTimeval(c, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 2})
	if n, err := s.Read(c, buf); n != 0 || err != nil {
		t.Errorf("Read(peer SHUT_RDWR with unread data) = %d, %v, want 0 (FIN, no reset)", n, err)
	}
}

// TestShutdownWhileConnecting: Linux's tcp_disconnect aborts the attempt,
// reports ECONNRESET once, and leaves the socket free to connect again.
func TestShutdownWhileConnecting(t *testing.T) {
	leakcheck.Check(t)
	s := blackHole(t)
	dst := &unix.SockaddrInet4{Port: 80, Addr: [4]byte{10, 9, 0, 2}}
	fd := mustSocket(t, s, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err := s.Connect(fd, dst); err != unix.EINPROGRESS {
		t.Fatalf("Connect = %v, want EINPROGRESS", err)
	}
	if err := s.Shutdown(fd, unix.SHUT_WR); err != nil {
		t.Fatalf("Shutdown(connecting) = %v", err)
	}
	_, sk, _ := s.sock(fd)
	if r := readyString(sk.Readiness(allEvents)); r != "OUT ERR HUP" {
		t.Errorf("Readiness after disconnect = %q, want OUT ERR HUP", r)
	}
	if v, _ := s.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); v != int(unix.ECONNRESET) {
		t.Errorf("SO_ERROR = %d, want ECONNRESET", v)
	}
	if err := s.Connect(fd, dst); err != unix.EINPROGRESS {
		t.Errorf("Connect again = %v, want EINPROGRESS (a new attempt)", err)
	}
}

// TestAcceptInheritsOptions: the accepted socket starts with the options
// set on its listener, as sk_clone copies them on Linux.
func TestAcceptInheritsOptions(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	l, addr := listener(t, s, unix.AF_INET6)
	set := []struct{ level, opt, v, want int }{
		{unix.IPPROTO_TCP, unix.TCP_NODELAY, 1, 1},
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1, 1},
		{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 77, 77},
		{unix.SOL_SOCKET, unix.SO_RCVBUF, 100000, 200000},
		{unix.IPPROTO_IP, unix.IP_TOS, 0x20, 0x20},
		{unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, 9, 9},
		{unix.SOL_SOCKET, unix.SO_PRIORITY, 3, 3},
	}
	for _, o := range set {
		if err := s.SetsockoptInt(l, o.level, o.opt, o.v); err != nil {
			t.Fatalf("SetsockoptInt(listener, %d, %d, %d) = %v", o.level, o.opt, o.v, err)
		}
	}
	s.SetsockoptLinger(l, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 3})
	s.SetsockoptTimeval(l, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &unix.Timeval{Sec: 5})
	c := mustSocket(t, s, unix.AF_INET6, unix.SOCK_STREAM, 0)
	if err := s.Connect(c, addr); err != nil {
		t.Fatal(err)
	}
	a, _, err := s.Accept(l)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range set {
		if v, err := s.GetsockoptInt(a, o.level, o.opt); v != o.want || err != nil {
			t.Errorf("GetsockoptInt(accepted, %d, %d) = %d, %v, want %d", o.level, o.opt, v, err, o.want)
		}
	}
	for _, o := range []struct{ opt, want int }{{unix.SO_LINGER, 1}, {unix.SO_SNDTIMEO, 5}} {
		if v, _ := s.GetsockoptInt(a, unix.SOL_SOCKET, o.opt); v != o.want {
			t.Errorf("GetsockoptInt(accepted, SOL_SOCKET, %d) = %d, want %d", o.opt, v, o.want)
		}
	}
}

// TestListenAgainSmaller: listening again with a backlog below the queued
// connections succeeds on Linux and keeps them.
func TestListenAgainSmaller(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	l, addr := listener(t, s, unix.AF_INET)
	for i := 0; i < 3; i++ {
		c := mustSocket(t, s, unix.AF_INET, unix.SOCK_STREAM, 0)
		if err := s.Connect(c, addr); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Listen(l, 1); err != nil {
		t.Errorf("Listen(3 queued, backlog 1) = %v, want nil", err)
	}
	for i := 0; i < 3; i++ {
		if _, _, err := s.Accept(l); err != nil {
			t.Errorf("Accept #%d after Listen again = %v", i+1, err)
		}
	}
}

// TestBlockedWriterWokenByReset: a writer blocked on a full window
// returns when the peer resets the connection, with the bytes it sent
// or the reset's errno.
func TestBlockedWriterWokenByReset(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	c, srv := tcpPair(t, s, unix.AF_INET)
	s.SetsockoptInt(srv, unix.SOL_SOCKET, unix.SO_RCVBUF, 1)
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := s.Write(c, make([]byte, 64<<20))
		done <- result{n, err}
	}()
	time.Sleep(50 * time.Millisecond)
	s.SetsockoptLinger(srv, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1})
	s.Close(srv)
	select {
	case r := <-done:
		if !(r.n > 0 && r.err == nil) && r.err != unix.ECONNRESET && r.err != unix.EPIPE {
			t.Errorf("Write blocked when the peer reset = %d, %v, want a partial count, ECONNRESET or EPIPE", r.n, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a blocked Write was not woken by the peer's reset")
	}
}
