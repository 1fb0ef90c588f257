//go:build linux

package sockapi

import (
	"testing"

	"github.com/ustack/ustack/stack"
	"golang.org/x/sys/unix"
)

// newTestSockets returns Sockets over a fresh loopback-only stack, both
// closed when the test ends.
func newTestSockets(t testing.TB) *Sockets {
	t.Helper()
	st, err := stack.New(stack.Config{})
	if err != nil {
		t.Fatalf("stack.New: %v", err)
	}
	s := New(st)
	t.Cleanup(func() {
		if err := s.CloseAll(); err != nil {
			t.Errorf("CloseAll() = %v", err)
		}
		st.Close()
	})
	return s
}

func mustSocket(t testing.TB, s *Sockets, domain, typ, proto int) int {
	t.Helper()
	fd, err := s.Socket(domain, typ, proto)
	if err != nil {
		t.Fatalf("Socket(%d, %#x, %d) = %v", domain, typ, proto, err)
	}
	return fd
}

func loop4(port int) *unix.SockaddrInet4 {
	return &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
}

func loop6(port int) *unix.SockaddrInet6 {
	return &unix.SockaddrInet6{Port: port, Addr: [16]byte{15: 1}}
}

func portOf(sa unix.Sockaddr) int {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return a.Port
	case *unix.SockaddrInet6:
		return a.Port
	}
	return -1
}

// listener returns a listening TCP socket on 127.0.0.1 (or ::1) and its
// address.
func listener(t testing.TB, s *Sockets, family int) (int, unix.Sockaddr) {
	t.Helper()
	fd := mustSocket(t, s, family, unix.SOCK_STREAM, 0)
	var sa unix.Sockaddr = loop4(0)
	if family == unix.AF_INET6 {
		sa = loop6(0)
	}
	if err := s.Bind(fd, sa); err != nil {
		t.Fatalf("Bind(%d, %v) = %v", fd, sa, err)
	}
	if err := s.Listen(fd, 16); err != nil {
		t.Fatalf("Listen(%d) = %v", fd, err)
	}
	addr, err := s.Getsockname(fd)
	if err != nil {
		t.Fatalf("Getsockname(%d) = %v", fd, err)
	}
	return fd, addr
}

// tcpPair returns a connected client descriptor and the accepted server
// descriptor.
func tcpPair(t testing.TB, s *Sockets, family int) (client, server int) {
	t.Helper()
	l, addr := listener(t, s, family)
	defer s.Close(l)
	c := mustSocket(t, s, family, unix.SOCK_STREAM, 0)
	if err := s.Connect(c, addr); err != nil {
		t.Fatalf("Connect(%d, %v) = %v", c, addr, err)
	}
	srv, _, err := s.Accept(l)
	if err != nil {
		t.Fatalf("Accept(%d) = %v", l, err)
	}
	return c, srv
}
