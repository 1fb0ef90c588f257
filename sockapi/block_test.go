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

// TestBlockDeadlineAndCancel drives the wait helper the way the net
// adapters do: an absolute deadline, and a cancel channel closed when a
// deadline changes mid-call.
func TestBlockDeadlineAndCancel(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	c, srv := tcpPair(t, s, unix.AF_INET)
	buf := make([]byte, 4)

	start := time.Now()
	n, _, err := s.recvfrom(c, buf, 0, waitOpts{deadline: start.Add(30 * time.Millisecond)})
	if n != -1 || err != unix.EAGAIN || time.Since(start) < 25*time.Millisecond {
		t.Errorf("recvfrom(deadline 30ms) = %d, %v after %v, want -1, EAGAIN after 30ms", n, err, time.Since(start))
	}
	n, _, err = s.recvfrom(c, buf, 0, waitOpts{deadline: time.Now().Add(-time.Second)})
	if n != -1 || err != unix.EAGAIN {
		t.Errorf("recvfrom(deadline passed) = %d, %v, want -1, EAGAIN", n, err)
	}

	cancel := make(chan struct{})
	go func() { time.Sleep(20 * time.Millisecond); close(cancel) }()
	n, _, err = s.recvfrom(c, buf, 0, waitOpts{cancel: cancel})
	if n != -1 || err != unix.EINTR {
		t.Errorf("recvfrom(cancelled) = %d, %v, want -1, EINTR", n, err)
	}

	// Data already there wins over a passed deadline, as on Linux.
	s.Write(srv, []byte("abcd"))
	s.SetsockoptTimeval(c, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5})
	n, _, err = s.recvfrom(c, buf, unix.MSG_WAITALL, waitOpts{deadline: time.Now().Add(5 * time.Second)})
	if n != 4 || err != nil {
		t.Errorf("recvfrom(data waiting) = %d, %v, want 4, nil", n, err)
	}
	// The shorter of SO_RCVTIMEO and the deadline bounds the wait.
	s.SetsockoptTimeval(c, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 20000})
	start = time.Now()
	s.recvfrom(c, buf, 0, waitOpts{deadline: start.Add(10 * time.Second)})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("recvfrom with SO_RCVTIMEO 20ms and deadline 10s waited %v", d)
	}
}

func TestCloseAllWakesEverything(t *testing.T) {
	leakcheck.Check(t)
	st, err := stack.New(stack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := New(st)
	c, _ := tcpPair(t, s, unix.AF_INET)
	u, _ := boundUDP(t, s, unix.AF_INET6)
	errs := make(chan error, 2)
	go func() { _, err := s.Read(c, make([]byte, 1)); errs <- err }()
	go func() { _, _, err := s.Recvfrom(u, make([]byte, 1), 0); errs <- err }()
	time.Sleep(20 * time.Millisecond)
	if err := s.CloseAll(); err != nil {
		t.Fatalf("CloseAll() = %v", err)
	}
	for i := 0; i < 2; i++ {
		if err := <-errs; err != unix.EBADF {
			t.Errorf("blocked call after CloseAll = %v, want EBADF", err)
		}
	}
	if _, err := s.Getsockname(c); err != unix.EBADF {
		t.Errorf("Getsockname after CloseAll = %v, want EBADF", err)
	}
	// The Sockets value stays usable.
	fd := mustSocket(t, s, unix.AF_INET, unix.SOCK_STREAM, 0)
	if fd != 0 {
		t.Errorf("first Socket after CloseAll = %d, want 0", fd)
	}
	s.CloseAll()
}

// blackHole returns Sockets over a stack with a NIC whose packets go
// nowhere, so that connections to 10.9.0.2 never complete.
func blackHole(t *testing.T) *Sockets {
	t.Helper()
	ch := channel.New(256, 1500, "\x02\x00\x00\x00\x00\x01")
	st, err := stack.New(stack.Config{NICs: []stack.NICConfig{{
		Endpoint: ch, Addrs: []netip.Prefix{netip.MustParsePrefix("10.9.0.1/24")},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	s := New(st)
	t.Cleanup(func() { s.CloseAll(); st.Close() })
	return s
}

func TestConnectPending(t *testing.T) {
	leakcheck.Check(t)
	s := blackHole(t)
	dst := &unix.SockaddrInet4{Port: 80, Addr: [4]byte{10, 9, 0, 2}}

	fd := mustSocket(t, s, unix.AF_INET, unix.SOCK_STREAM, 0)
	s.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &unix.Timeval{Usec: 30000})
	if err := s.Connect(fd, dst); err != unix.EINPROGRESS {
		t.Errorf("Connect(SO_SNDTIMEO 30ms, no answer) = %v, want EINPROGRESS", err)
	}
	if err := s.Connect(fd, dst); err != unix.EALREADY {
		t.Errorf("Connect(again, SO_SNDTIMEO 30ms) = %v, want EALREADY", err)
	}

	nb := mustSocket(t, s, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err := s.Connect(nb, dst); err != unix.EINPROGRESS {
		t.Errorf("Connect(nonblocking) = %v, want EINPROGRESS", err)
	}
	if err := s.Connect(nb, dst); err != unix.EALREADY {
		t.Errorf("Connect(nonblocking, again) = %v, want EALREADY", err)
	}
	if n, err := s.Write(nb, []byte("x")); n != -1 || err != unix.EAGAIN {
		t.Errorf("Write(connecting, nonblocking) = %d, %v, want -1, EAGAIN", n, err)
	}

	blocked := mustSocket(t, s, unix.AF_INET, unix.SOCK_STREAM, 0)
	done := make(chan error, 1)
	go func() { done <- s.Connect(blocked, dst) }()
	time.Sleep(20 * time.Millisecond)
	s.Close(blocked)
	select {
	case err := <-done:
		if err != unix.EBADF {
			t.Errorf("Connect interrupted by Close = %v, want EBADF", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake a blocked Connect")
	}
}

// TestStackClosedUnderSockets: closing the stack first (the wrong order)
// aborts the endpoints; blocked calls return and later calls fail with an
// errno, and nothing panics or leaks.
func TestStackClosedUnderSockets(t *testing.T) {
	leakcheck.Check(t)
	st, err := stack.New(stack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s := New(st)
	c, srv := tcpPair(t, s, unix.AF_INET)
	l, addr := listener(t, s, unix.AF_INET)
	errs := make(chan error, 2)
	go func() { _, err := s.Read(c, make([]byte, 1)); errs <- err }()
	go func() { _, _, err := s.Accept(l); errs <- err }()
	time.Sleep(20 * time.Millisecond)
	st.Close()
	for i := 0; i < 2; i++ {
		select {
		case <-errs:
		case <-time.After(5 * time.Second):
			t.Fatal("a blocked call did not return after the stack closed")
		}
	}
	if n, err := s.Write(srv, []byte("x")); err == nil {
		t.Errorf("Write after the stack closed = %d, nil, want an errno", n)
	}
	fd, err := s.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err == nil {
		if err := s.Connect(fd, addr); err == nil {
			t.Errorf("Connect after the stack closed = nil, want an errno")
		}
	}
	if err := s.CloseAll(); err != nil {
		t.Errorf("CloseAll() = %v", err)
	}
}
