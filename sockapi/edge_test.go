//go:build linux

package sockapi

import (
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"golang.org/x/sys/unix"
)

// TestMisuseErrno checks calls made in the wrong state against the errno
// Linux 6.x returns for them (measured with x/sys/unix on loopback).
func TestMisuseErrno(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	tcp := func() int { return mustSocket(t, s, unix.AF_INET, unix.SOCK_STREAM, 0) }
	udp := func() int { return mustSocket(t, s, unix.AF_INET, unix.SOCK_DGRAM, 0) }
	l, laddr := listener(t, s, unix.AF_INET)
	buf := make([]byte, 10)
	for _, tc := range []struct {
		name string
		call func() error
		want error
	}{
		{"Read(unconnected tcp)", func() error { _, err := s.Read(tcp(), buf); return err }, unix.ENOTCONN},
		{"Write(unconnected tcp)", func() error { _, err := s.Write(tcp(), buf); return err }, unix.EPIPE},
		{"Shutdown(unconnected tcp)", func() error { return s.Shutdown(tcp(), unix.SHUT_RD) }, unix.ENOTCONN},
		{"Shutdown(how=5)", func() error { return s.Shutdown(tcp(), 5) }, unix.EINVAL},
		{"Accept(not listening)", func() error { _, _, err := s.Accept(tcp()); return err }, unix.EINVAL},
		{"Accept4(bad flags)", func() error { _, _, err := s.Accept4(l, 1); return err }, unix.EINVAL},
		{"Read(listener)", func() error { _, err := s.Read(l, buf); return err }, unix.ENOTCONN},
		{"Connect(listener)", func() error { return s.Connect(l, laddr) }, unix.EISCONN},
		{"Listen(listener again)", func() error { return s.Listen(l, 10) }, nil},
		{"Shutdown(listener, SHUT_WR)", func() error { return s.Shutdown(l, unix.SHUT_WR) }, nil},
		{"Bind(tcp4, v6 addr)", func() error { return s.Bind(tcp(), &unix.SockaddrInet6{}) }, unix.EAFNOSUPPORT},
		{"Connect(tcp4, v6 addr)", func() error { return s.Connect(tcp(), &unix.SockaddrInet6{Port: 9}) }, unix.EAFNOSUPPORT},
		{"Bind(tcp6, v4 addr)", func() error {
			return s.Bind(mustSocket(t, s, unix.AF_INET6, unix.SOCK_STREAM, 0), &unix.SockaddrInet4{})
		}, unix.EINVAL},
		{"Bind(non-local)", func() error { return s.Bind(tcp(), &unix.SockaddrInet4{Addr: [4]byte{10, 1, 2, 3}}) }, unix.EADDRNOTAVAIL},
		{"Bind(in use)", func() error { return s.Bind(tcp(), laddr) }, unix.EADDRINUSE},
		{"Bind(twice)", func() error {
			fd := tcp()
			s.Bind(fd, &unix.SockaddrInet4{})
			return s.Bind(fd, &unix.SockaddrInet4{})
		}, unix.EINVAL},
		{"Connect(port 0)", func() error { return s.Connect(tcp(), loop4(0)) }, unix.ECONNREFUSED},
		{"Listen(udp)", func() error { return s.Listen(udp(), 1) }, unix.EOPNOTSUPP},
		{"Accept(udp)", func() error { _, _, err := s.Accept(udp()); return err }, unix.EOPNOTSUPP},
		{"Write(unconnected udp)", func() error { _, err := s.Write(udp(), buf); return err }, unix.EDESTADDRREQ},
		{"Shutdown(unconnected udp)", func() error { return s.Shutdown(udp(), unix.SHUT_RD) }, unix.ENOTCONN},
		{"Sendto(udp, MSG_OOB)", func() error { return s.Sendto(udp(), buf, unix.MSG_OOB, loop4(9)) }, unix.EOPNOTSUPP},
		{"Recv(udp, MSG_OOB|MSG_DONTWAIT)", func() error { _, err := s.Recv(udp(), buf, unix.MSG_OOB|unix.MSG_DONTWAIT); return err }, unix.EAGAIN},
		{"Sendto(udp, 65508 bytes)", func() error { return s.Sendto(udp(), make([]byte, 65508), 0, loop4(9)) }, unix.EMSGSIZE},
		{"Sendto(udp, 65507 bytes)", func() error { return s.Sendto(udp(), make([]byte, 65507), 0, loop4(9)) }, nil},
		// Linux looks for a route first; a loopback-only namespace has
		// none (TestUDPBroadcast covers the EACCES with a route).
		{"Sendto(udp, limited broadcast, lo only)", func() error {
			return s.Sendto(udp(), nil, 0, &unix.SockaddrInet4{Port: 9, Addr: [4]byte{255, 255, 255, 255}})
		}, unix.ENETUNREACH},
		{"Sendto(udp6, v4 addr)", func() error {
			return s.Sendto(mustSocket(t, s, unix.AF_INET6, unix.SOCK_DGRAM, 0), buf, 0, loop4(9))
		}, nil},
		{"Connect(udp6, v4 addr)", func() error {
			return s.Connect(mustSocket(t, s, unix.AF_INET6, unix.SOCK_DGRAM, 0), loop4(9))
		}, nil},
		{"Read(closed fd)", func() error { _, err := s.Read(99, buf); return err }, unix.EBADF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); err != tc.want {
				t.Errorf("%s = %v, want %v", tc.name, err, tc.want)
			}
		})
	}
}

func TestStreamRecvFlags(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	c, srv := tcpPair(t, s, unix.AF_INET)
	buf := make([]byte, 10)
	if n, err := s.Recv(c, buf[:0], unix.MSG_DONTWAIT); n != -1 || err != unix.EAGAIN {
		t.Errorf("Recv(0 bytes, no data, MSG_DONTWAIT) = %d, %v, want -1, EAGAIN", n, err)
	}
	if n, err := s.Recv(c, buf, unix.MSG_DONTWAIT); n != -1 || err != unix.EAGAIN {
		t.Errorf("Recv(no data, MSG_DONTWAIT) = %d, %v, want -1, EAGAIN", n, err)
	}
	if n, err := s.Write(srv, []byte("hello")); n != 5 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if n, err := s.Recv(c, buf[:0], 0); n != 0 || err != nil {
		t.Errorf("Recv(0 bytes, data) = %d, %v, want 0, nil", n, err)
	}
	if n, err := s.Recv(c, buf[:3], unix.MSG_PEEK); n != 3 || err != nil || string(buf[:3]) != "hel" {
		t.Errorf("Recv(MSG_PEEK) = %d, %v %q, want 3 hel", n, err, buf[:3])
	}
	if n, err := s.Recv(c, buf, unix.MSG_OOB); n != -1 || err != unix.EINVAL {
		t.Errorf("Recv(MSG_OOB) = %d, %v, want -1, EINVAL", n, err)
	}
	for i := range buf {
		buf[i] = 0
	}
	if n, err := s.Recv(c, buf[:2], unix.MSG_TRUNC); n != 2 || err != nil || buf[0] != 0 {
		t.Errorf("Recv(2, MSG_TRUNC) = %d, %v, %q, want 2 bytes discarded", n, err, buf[:2])
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		s.Write(srv, []byte("world"))
	}()
	if n, err := s.Recv(c, buf[:8], unix.MSG_WAITALL); n != 8 || err != nil || string(buf[:8]) != "loworld" && string(buf[:8]) != "lloworld" {
		t.Errorf("Recv(8, MSG_WAITALL) = %d, %v, %q, want 8 lloworld", n, err, buf[:8])
	}
	if n, err := s.Write(c, nil); n != 0 || err != nil {
		t.Errorf("Write(0 bytes) = %d, %v, want 0, nil", n, err)
	}
	u := mustSocket(t, s, unix.AF_INET, unix.SOCK_STREAM, 0)
	if n, err := s.Write(u, nil); n != -1 || err != unix.EPIPE {
		t.Errorf("Write(0 bytes, unconnected) = %d, %v, want -1, EPIPE", n, err)
	}
	// read(2) of zero bytes returns 0 before looking at the socket
	// (sock_read_iter); recv(2) does look.
	if n, err := s.Read(u, nil); n != 0 || err != nil {
		t.Errorf("Read(0 bytes, unconnected) = %d, %v, want 0, nil", n, err)
	}
	if n, err := s.Recv(u, nil, 0); n != -1 || err != unix.ENOTCONN {
		t.Errorf("Recv(0 bytes, unconnected) = %d, %v, want -1, ENOTCONN", n, err)
	}
	if err := s.Shutdown(c, unix.SHUT_RD); err != nil {
		t.Fatalf("Shutdown(SHUT_RD) = %v", err)
	}
	if n, err := s.Read(c, buf); n != 0 || err != nil {
		t.Errorf("Read(after SHUT_RD) = %d, %v, want 0, nil", n, err)
	}
}

// TestIPv6Scopes: sin6_scope_id matters only for addresses that need a
// scope (link-local), and they need one (Linux: EINVAL without).
func TestIPv6Scopes(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	ll := [16]byte{0: 0xfe, 1: 0x80, 15: 1}
	for _, tc := range []struct {
		name string
		call func(fd int) error
		want error
	}{
		{"Bind(fe80::1, no scope)", func(fd int) error { return s.Bind(fd, &unix.SockaddrInet6{Addr: ll}) }, unix.EINVAL},
		{"Connect(fe80::1, no scope)", func(fd int) error { return s.Connect(fd, &unix.SockaddrInet6{Addr: ll, Port: 9}) }, unix.EINVAL},
		{"Bind(::1%99)", func(fd int) error { return s.Bind(fd, &unix.SockaddrInet6{Addr: [16]byte{15: 1}, ZoneId: 99}) }, nil},
	} {
		fd := mustSocket(t, s, unix.AF_INET6, unix.SOCK_STREAM, 0)
		if err := tc.call(fd); err != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, err, tc.want)
		}
	}
	u := mustSocket(t, s, unix.AF_INET6, unix.SOCK_DGRAM, 0)
	s.Bind(u, &unix.SockaddrInet6{Addr: [16]byte{10: 0xff, 11: 0xff}})
	want := [16]byte{10: 0xff, 11: 0xff}
	if sa, err := s.Getsockname(u); err != nil || sa.(*unix.SockaddrInet6).Addr != want {
		t.Errorf("Getsockname(bound to ::ffff:0.0.0.0) = %+v, %v, want ::ffff:0.0.0.0", sa, err)
	}
}

// TestBindAfterConnectionEnded: a socket whose connection is over may
// bind again on Linux (its port was released), unless it had bound one.
func TestBindAfterConnectionEnded(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	c, srv := tcpPair(t, s, unix.AF_INET)
	s.Close(srv)
	s.Shutdown(c, unix.SHUT_WR)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, sk, _ := s.sock(c)
		if sk.finished() || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.Bind(c, loop4(0)); err != nil {
		t.Errorf("Bind(after the connection ended) = %v, want nil", err)
	}
	if err := s.Bind(c, loop4(0)); err != unix.EINVAL {
		t.Errorf("Bind(again) = %v, want EINVAL", err)
	}
}
