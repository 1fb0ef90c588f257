//go:build linux

package sockapi

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"golang.org/x/sys/unix"
)

// netUnreachablePeer is an address on the link of netPair where nobody
// answers: a SYN to it gets no reply, so a connect stays in progress.
const netUnreachablePeer = "10.0.0.3:80"

// netWantNoDescriptors checks that s has no descriptor open, by the lowest
// free number a new socket gets (0).
func netWantNoDescriptors(t *testing.T, s *Sockets) {
	t.Helper()
	fd, err := s.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("Socket = %v", err)
	}
	s.Close(fd)
	if fd != 0 {
		t.Errorf("a new socket is descriptor %d, want 0: a failed dial left its descriptor open", fd)
	}
}

func TestNetDialContextCancel(t *testing.T) {
	leakcheck.Check(t)
	a, _ := netPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	c, err := (&Dialer{Sockets: a}).DialContext(ctx, "tcp", netUnreachablePeer)
	if err == nil {
		c.Close()
		t.Fatalf("DialContext(%s) succeeded, want it cancelled", netUnreachablePeer)
	}
	var oe *net.OpError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &oe) || oe.Op != "dial" {
		t.Errorf("DialContext cancelled = %v, want a dial *net.OpError wrapping context.Canceled", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("cancelled DialContext returned after %v, want promptly", d)
	}
	netWantNoDescriptors(t, a)
}

func TestNetDialTimeout(t *testing.T) {
	leakcheck.Check(t)
	a, _ := netPair(t)
	for _, d := range []*Dialer{
		{Sockets: a, Timeout: 100 * time.Millisecond},
		{Sockets: a, Deadline: time.Now().Add(100 * time.Millisecond)},
	} {
		_, err := d.Dial("tcp", netUnreachablePeer)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Dial with Timeout %v Deadline %v = %v, want a timeout", d.Timeout, d.Deadline, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := (&Dialer{Sockets: a}).DialContext(ctx, "tcp", netUnreachablePeer)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("DialContext past its context's deadline = %v, want a timeout matching context.DeadlineExceeded "+
			"and, as net's, not os.ErrDeadlineExceeded", err)
	}
	netWantNoDescriptors(t, a)
}

func TestNetDialErrors(t *testing.T) {
	leakcheck.Check(t)
	s := netLoopback(t)
	d := &Dialer{Sockets: s}
	tests := []struct {
		network, addr string
		want          error
	}{
		{"tcp", "127.0.0.1:1", unix.ECONNREFUSED},
		{"tcp6", "[::1]:1", unix.ECONNREFUSED},
		{"tcp6", "127.0.0.1:1", nil}, // no suitable address
		{"tcp4", "[::1]:1", nil},
		{"sctp", "127.0.0.1:1", nil},
		{"tcp", "127.0.0.1", nil}, // missing port
	}
	for _, tt := range tests {
		c, err := d.Dial(tt.network, tt.addr)
		if err == nil {
			c.Close()
		}
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "dial" || oe.Net != tt.network {
			t.Errorf("Dial(%q, %q) = %v, want a dial *net.OpError", tt.network, tt.addr, err)
			continue
		}
		if tt.want != nil {
			var se *os.SyscallError
			if !errors.Is(err, tt.want) || !errors.As(err, &se) || se.Syscall != "connect" {
				t.Errorf("Dial(%q, %q) = %v, want connect: %v", tt.network, tt.addr, err, tt.want)
			}
			if oe.Addr == nil || oe.Addr.String() != tt.addr {
				t.Errorf("Dial(%q, %q) error Addr = %v, want %s", tt.network, tt.addr, oe.Addr, tt.addr)
			}
		}
	}
	var ue net.UnknownNetworkError
	if _, err := d.Dial("sctp", "127.0.0.1:1"); !errors.As(err, &ue) {
		t.Errorf("Dial(sctp) = %v, want net.UnknownNetworkError", err)
	}
	if _, err := (&Dialer{}).Dial("tcp", "127.0.0.1:1"); err == nil {
		t.Errorf("Dial with no Sockets succeeded")
	}
	netWantNoDescriptors(t, s)
}

func TestNetDialLocalAddr(t *testing.T) {
	leakcheck.Check(t)
	a, b := netPair(t)
	l, err := (&ListenConfig{Sockets: a}).Listen(context.Background(), "tcp", ":0")
	if err != nil {
		t.Fatalf("Listen = %v", err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	local := &net.TCPAddr{IP: net.ParseIP("10.0.0.2"), Port: 40000}
	d := &Dialer{Sockets: b, LocalAddr: local}
	c, err := d.Dial("tcp", net.JoinHostPort("10.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("Dial from %v = %v", local, err)
	}
	defer c.Close()
	if got := c.LocalAddr().String(); got != local.String() {
		t.Errorf("LocalAddr = %s, want %s", got, local)
	}
	// A wildcard listener of "tcp" takes IPv4 and IPv6 connections.
	c6, err := (&Dialer{Sockets: b}).Dial("tcp", net.JoinHostPort("fd00::1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("Dial over IPv6 to a dual-stack listener = %v", err)
	}
	c6.Close()
	if _, err := (&Dialer{Sockets: b, LocalAddr: &net.UDPAddr{}}).Dial("tcp", "10.0.0.1:1"); err == nil {
		t.Errorf("Dial tcp with a *net.UDPAddr LocalAddr succeeded")
	}
}

func TestNetDialUnspecifiedMeansLocal(t *testing.T) {
	leakcheck.Check(t)
	s := netLoopback(t)
	l, err := (&ListenConfig{Sockets: s}).Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen = %v", err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
		}
	}()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	c, err := (&Dialer{Sockets: s}).Dial("tcp", ":"+port)
	if err != nil {
		t.Fatalf("Dial(:%s) = %v, want a connection to this host", port, err)
	}
	c.Close()
}

func TestNetListenErrors(t *testing.T) {
	leakcheck.Check(t)
	s := netLoopback(t)
	lc := &ListenConfig{Sockets: s}
	ctx := context.Background()
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen = %v", err)
	}
	defer l.Close()
	_, err = lc.Listen(ctx, "tcp", l.Addr().String())
	var oe *net.OpError
	if !errors.Is(err, unix.EADDRINUSE) || !errors.As(err, &oe) || oe.Op != "listen" {
		t.Errorf("Listen on %v again = %v, want listen: EADDRINUSE", l.Addr(), err)
	}
	if _, err := lc.Listen(ctx, "udp", "127.0.0.1:0"); err == nil {
		t.Errorf("Listen(udp) succeeded, want an unknown network error")
	}
	if _, err := lc.ListenPacket(ctx, "tcp", "127.0.0.1:0"); err == nil {
		t.Errorf("ListenPacket(tcp) succeeded, want an unknown network error")
	}
	if _, err := (&ListenConfig{Sockets: s, Backlog: -1}).Listen(ctx, "tcp", ":0"); err == nil {
		t.Errorf("Listen with a negative Backlog succeeded")
	}
}

func TestNetListenerCloseWakesAccept(t *testing.T) {
	leakcheck.Check(t)
	s := netLoopback(t)
	l, err := (&ListenConfig{Sockets: s}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen = %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	l.Close()
	var oe *net.OpError
	if err := netWaitErr(t, "Accept", done); !errors.Is(err, net.ErrClosed) || !errors.As(err, &oe) || oe.Op != "accept" {
		t.Errorf("Accept blocked across Close = %v, want accept: net.ErrClosed", err)
	}
	tl := l.(*TCPListener)
	if err := tl.SetDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("SetDeadline after Close = %v, want net.ErrClosed", err)
	}
}

func TestNetListenerDeadline(t *testing.T) {
	leakcheck.Check(t)
	s := netLoopback(t)
	l, err := (&ListenConfig{Sockets: s}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen = %v", err)
	}
	defer l.Close()
	tl := l.(*TCPListener)
	done := make(chan error, 1)
	go func() {
		_, err := tl.Accept()
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	tl.SetDeadline(time.Now().Add(20 * time.Millisecond))
	netWantTimeout(t, "Accept", netWaitErr(t, "Accept", done))
}

func TestNetZones(t *testing.T) {
	leakcheck.Check(t)
	a, _ := netPair(t) // NIC 2 is "eth2"
	tests := []struct {
		in       string
		wantID   uint32
		wantBack string
	}{
		{"[fe80::1%eth2]:80", 2, "[fe80::1%eth2]:80"},
		{"[fe80::1%2]:80", 2, "[fe80::1%eth2]:80"},
		{"[fe80::1%lo]:80", 1, "[fe80::1%lo]:80"},
		{"[fe80::1%9]:80", 9, "[fe80::1%9]:80"}, // no such NIC: the number stays
		{"[fe80::1]:80", 0, "[fe80::1]:80"},
	}
	for _, tt := range tests {
		sa, err := a.netSockaddr(unix.AF_INET6, netip.MustParseAddrPort(tt.in))
		if err != nil {
			t.Errorf("netSockaddr(%s) = %v", tt.in, err)
			continue
		}
		if id := sa.(*unix.SockaddrInet6).ZoneId; id != tt.wantID {
			t.Errorf("netSockaddr(%s) zone id = %d, want %d", tt.in, id, tt.wantID)
		}
		if back := a.netAddrPort(sa).String(); back != tt.wantBack {
			t.Errorf("netAddrPort(netSockaddr(%s)) = %s, want %s", tt.in, back, tt.wantBack)
		}
	}
	if _, err := (&Dialer{Sockets: a}).Dial("tcp", "[fe80::1%nosuchnic]:80"); err == nil {
		t.Errorf("Dial with an unknown zone succeeded")
	}
}

func TestNetKeepAliveDefaults(t *testing.T) {
	leakcheck.Check(t)
	s := netLoopback(t)
	keepalive := func(c net.Conn) (on, idle int) {
		t.Helper()
		fd := c.(*TCPConn).fd.fd
		on, err1 := s.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE)
		idle, err2 := s.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
		if err1 != nil || err2 != nil {
			t.Fatalf("GetsockoptInt = %v, %v", err1, err2)
		}
		return on, idle
	}
	tests := []struct {
		keepAlive time.Duration
		on, idle  int
	}{
		{0, 1, 15}, // the net package's default
		{30 * time.Second, 1, 30},
		{-1, 0, -1}, // off; the idle time is whatever the stack has
	}
	for _, tt := range tests {
		l, err := (&ListenConfig{Sockets: s, KeepAlive: tt.keepAlive}).Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("Listen = %v", err)
		}
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := l.Accept()
			accepted <- c
		}()
		c, err := (&Dialer{Sockets: s, KeepAlive: tt.keepAlive}).Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatalf("Dial = %v", err)
		}
		sc := <-accepted
		l.Close()
		if sc == nil {
			t.Fatalf("Accept failed")
		}
		for side, conn := range map[string]net.Conn{"dialled": c, "accepted": sc} {
			on, idle := keepalive(conn)
			if on != tt.on || tt.idle >= 0 && idle != tt.idle {
				t.Errorf("KeepAlive %v: %s conn has SO_KEEPALIVE %d, TCP_KEEPIDLE %d; want %d, %d", tt.keepAlive, side, on, idle, tt.on, tt.idle)
			}
		}
		c.Close()
		sc.Close()
	}
}

// mapCtxErr is the text package net gives a context's error.
func mapCtxErr(err error) string {
	if err == context.DeadlineExceeded {
		return "i/o timeout"
	}
	return "operation was canceled"
}

// TestNetDialCancelledAsNet compares a dial cancelled before and during
// the connect, and during a name lookup, with net.Dialer's: the same
// text ("operation was canceled", which net's mapErr gives
// context.Canceled), still matching context.Canceled.
func TestNetDialCancelledAsNet(t *testing.T) {
	leakcheck.Check(t)
	a, _ := netPair(t)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	for _, ctx := range []context.Context{cancelled, expired} {
		for _, target := range []string{"127.0.0.1:1", "localhost:1"} {
			_, want := (&net.Dialer{}).DialContext(ctx, "tcp", target)
			_, got := (&Dialer{Sockets: a}).DialContext(ctx, "tcp", target)
			// With a name and a context already done, net's lookup
			// races the context against the hosts-file answer (a
			// select on both), so net says either of two things; ours
			// is always the lookup's, which is one of them.
			lookupErr := (&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: mapCtxErr(ctx.Err()), Name: "localhost"}}).Error()
			ok := got != nil && want != nil && (got.Error() == want.Error() || target == "localhost:1" && got.Error() == lookupErr)
			if !ok || !errors.Is(got, ctx.Err()) {
				t.Errorf("DialContext(%v, %q) = %v, want %v (matching the context's error)", ctx.Err(), target, got, want)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, got := (&Dialer{Sockets: a}).DialContext(ctx, "tcp", netUnreachablePeer)
	if want := "dial tcp " + netUnreachablePeer + ": operation was canceled"; got == nil || got.Error() != want || !errors.Is(got, context.Canceled) {
		t.Errorf("DialContext cancelled while connecting = %v, want %q matching context.Canceled", got, want)
	}
}
