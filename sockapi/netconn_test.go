//go:build linux

package sockapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/stack"
	"golang.org/x/net/nettest"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
)

// netLoopback returns the sockets of a loopback-only stack, closed
// when the test ends.
func netLoopback(t testing.TB) *Sockets {
	t.Helper()
	st, err := stack.New(stack.Config{})
	if err != nil {
		t.Fatalf("stack.New = %v", err)
	}
	return netSockets(t, st)
}

func netSockets(t testing.TB, st *stack.Stack) *Sockets {
	s := New(st)
	t.Cleanup(func() {
		s.CloseAll()
		st.Close()
	})
	return s
}

// Addresses of the two stacks of netPair.
var (
	netA4, netB4 = netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	netA6, netB6 = netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
)

// netPair returns the sockets of two stacks joined by an in-memory
// link: a has 10.0.0.1/24 and fd00::1/64, b has 10.0.0.2 and fd00::2.
func netPair(t testing.TB) (a, b *Sockets) {
	t.Helper()
	ea, eb := pipe.New("\x02\x00\x00\x00\x00\x01", "\x02\x00\x00\x00\x00\x02", 1500)
	mk := func(ep *pipe.Endpoint, v4, v6 netip.Addr) *Sockets {
		st, err := stack.New(stack.Config{NICs: []stack.NICConfig{{Endpoint: ep, Addrs: []netip.Prefix{
			netip.PrefixFrom(v4, 24), netip.PrefixFrom(v6, 64)}}}})
		if err != nil {
			t.Fatalf("stack.New = %v", err)
		}
		return netSockets(t, st)
	}
	return mk(ea, netA4, netA6), mk(eb, netB4, netB6)
}

// netConnPair returns both ends of a TCP connection from client to a
// listener of server on addr ("ip:0").
func netConnPair(t testing.TB, server, client *Sockets, network, addr string) (c1, c2 net.Conn, stop func(), err error) {
	ctx := context.Background()
	l, err := (&ListenConfig{Sockets: server}).Listen(ctx, network, addr)
	if err != nil {
		return nil, nil, nil, err
	}
	defer l.Close()
	type result struct {
		c   net.Conn
		err error
	}
	accepted := make(chan result)
	go func() {
		c, err := l.Accept()
		accepted <- result{c, err}
	}()
	c1, err = (&Dialer{Sockets: client}).DialContext(ctx, network, l.Addr().String())
	r := <-accepted
	if err == nil {
		err = r.err
	}
	if err != nil {
		for _, c := range []net.Conn{c1, r.c} {
			if c != nil {
				c.Close()
			}
		}
		return nil, nil, nil, err
	}
	return c1, r.c, func() { c1.Close(); r.c.Close() }, nil
}

// netSetups are the configurations every connection test runs on.
var netSetups = []struct {
	name           string
	network, laddr string
	pair           bool
}{
	{"loopback4", "tcp", "127.0.0.1:0", false},
	{"loopback6", "tcp", "[::1]:0", false},
	{"pair4", "tcp4", netA4.String() + ":0", true},
	{"pair6", "tcp6", "[" + netA6.String() + "]:0", true},
}

// forNetSetups runs f as a subtest for each of netSetups, with leak
// checks, on the setup's server and client Sockets (one loopback stack,
// or two stacks joined in memory).
func forNetSetups(t *testing.T, f func(t *testing.T, server, client *Sockets, network, laddr string)) {
	for _, su := range netSetups {
		t.Run(su.name, func(t *testing.T) {
			leakcheck.Check(t)
			server := netLoopback(t)
			client := server
			if su.pair {
				server, client = netPair(t)
			}
			f(t, server, client, su.network, su.laddr)
		})
	}
}

func TestNetConnConformance(t *testing.T) {
	forNetSetups(t, func(t *testing.T, server, client *Sockets, network, laddr string) {
		nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
			return netConnPair(t, server, client, network, laddr)
		})
	})
}

// netPipe is netConnPair on a fresh loopback stack, failing t on error.
func netPipe(t *testing.T) (c1, c2 net.Conn) {
	t.Helper()
	s := netLoopback(t)
	c1, c2, stop, err := netConnPair(t, s, s, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("netConnPair = %v", err)
	}
	t.Cleanup(stop)
	return c1, c2
}

// netBlockedRead starts c.Read in a goroutine and returns its result.
func netBlockedRead(c net.Conn) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 10))
		done <- err
	}()
	return done
}

func netWantTimeout(t *testing.T, what string, err error) {
	t.Helper()
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("%s = %v, want a timeout satisfying os.ErrDeadlineExceeded", what, err)
	}
}

// netWaitErr returns the error from done, failing t if it takes over 5s.
func netWaitErr(t *testing.T, what string, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("%s still blocked after 5s", what)
		return nil
	}
}

func TestNetDeadlineWakesBlockedRead(t *testing.T) {
	tests := []struct {
		name string
		dl   func() time.Time
	}{
		// net/http's Server aborts its background read this way.
		{"past", func() time.Time { return time.Unix(1, 0) }},
		{"now", time.Now},
		{"soon", func() time.Time { return time.Now().Add(30 * time.Millisecond) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakcheck.Check(t)
			c1, _ := netPipe(t)
			done := netBlockedRead(c1)
			time.Sleep(50 * time.Millisecond) // let Read block
			if err := c1.SetReadDeadline(tt.dl()); err != nil {
				t.Fatalf("SetReadDeadline = %v", err)
			}
			netWantTimeout(t, "blocked Read", netWaitErr(t, "Read", done))
		})
	}
}

func TestNetDeadlineExtendedWhileBlocked(t *testing.T) {
	leakcheck.Check(t)
	c1, c2 := netPipe(t)
	c1.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	done := make(chan error, 1)
	go func() {
		b := make([]byte, 5)
		_, err := io.ReadFull(c1, b)
		if err == nil && string(b) != "hello" {
			err = errors.New("read " + string(b))
		}
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	c1.SetReadDeadline(time.Time{})    // no deadline: the Read keeps waiting
	time.Sleep(600 * time.Millisecond) // past the deadline that was cleared
	if _, err := c2.Write([]byte("hello")); err != nil {
		t.Fatalf("Write = %v", err)
	}
	if err := netWaitErr(t, "Read", done); err != nil {
		t.Errorf("Read after the deadline was cleared = %v, want hello", err)
	}
}

func TestNetDeadlineWakesBlockedWrite(t *testing.T) {
	leakcheck.Check(t)
	c1, c2 := netPipe(t)
	done := make(chan error, 1)
	var n int
	go func() {
		var err error
		// c2 reads one byte only: the buffers fill and Write blocks.
		n, err = c1.Write(make([]byte, 64<<20))
		done <- err
	}()
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c2.Read(make([]byte, 1)); err != nil {
		t.Fatalf("peer Read = %v, want the Write under way", err)
	}
	time.Sleep(50 * time.Millisecond) // let Write block
	c1.SetWriteDeadline(time.Now())
	netWantTimeout(t, "blocked Write", netWaitErr(t, "Write", done))
	if n <= 0 || n >= 64<<20 {
		t.Errorf("Write wrote %d bytes before its deadline, want part of the buffer", n)
	}
}

func TestNetCloseWakesBlockedCalls(t *testing.T) {
	leakcheck.Check(t)
	c1, _ := netPipe(t)
	done := netBlockedRead(c1)
	time.Sleep(50 * time.Millisecond)
	if err := c1.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := netWaitErr(t, "Read", done); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read blocked across Close = %v, want net.ErrClosed", err)
	}
}

func TestNetUseAfterClose(t *testing.T) {
	leakcheck.Check(t)
	c1, _ := netPipe(t)
	c1.Close()
	tc := c1.(*TCPConn)
	calls := map[string]func() error{
		"Read":             func() error { _, err := c1.Read(make([]byte, 1)); return err },
		"Read(empty)":      func() error { _, err := c1.Read(nil); return err },
		"Write":            func() error { _, err := c1.Write([]byte("x")); return err },
		"Close":            c1.Close,
		"CloseWrite":       tc.CloseWrite,
		"CloseRead":        tc.CloseRead,
		"SetDeadline":      func() error { return c1.SetDeadline(time.Now()) },
		"SetReadDeadline":  func() error { return c1.SetReadDeadline(time.Now()) },
		"SetWriteDeadline": func() error { return c1.SetWriteDeadline(time.Now()) },
		"SetNoDelay":       func() error { return tc.SetNoDelay(true) },
	}
	for name, call := range calls {
		err := call()
		var oe *net.OpError
		if !errors.Is(err, net.ErrClosed) || !errors.As(err, &oe) {
			t.Errorf("%s after Close = %v, want a *net.OpError wrapping net.ErrClosed", name, err)
		}
	}
}

func TestNetHalfClose(t *testing.T) {
	forNetSetups(t, func(t *testing.T, server, client *Sockets, network, laddr string) {
		c1, c2, stop, err := netConnPair(t, server, client, network, laddr)
		if err != nil {
			t.Fatalf("netConnPair = %v", err)
		}
		defer stop()
		netTestHalfClose(t, c1.(*TCPConn), c2.(*TCPConn))
	})
}

func netTestHalfClose(t *testing.T, client, server *TCPConn) {
	// The client sends a request and closes its writing side; the
	// server reads to EOF and can still answer.
	if _, err := client.Write([]byte("request")); err != nil {
		t.Fatalf("client Write = %v", err)
	}
	if err := client.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite = %v", err)
	}
	got, err := io.ReadAll(server)
	if err != nil || string(got) != "request" {
		t.Fatalf("server ReadAll = %q, %v; want \"request\", nil", got, err)
	}
	if _, err := client.Write([]byte("more")); !errors.Is(err, unix.EPIPE) {
		t.Errorf("Write after CloseWrite = %v, want EPIPE", err)
	}
	if _, err := server.Write([]byte("answer")); err != nil {
		t.Fatalf("server Write after peer's CloseWrite = %v", err)
	}
	server.CloseWrite()
	got, err = io.ReadAll(client)
	if err != nil || string(got) != "answer" {
		t.Errorf("client ReadAll = %q, %v; want \"answer\", nil", got, err)
	}
}

func TestNetCloseRead(t *testing.T) {
	leakcheck.Check(t)
	c1, c2 := netPipe(t)
	// After CloseRead, reads see end of stream, as after shutdown(SHUT_RD),
	// and the other direction still works.
	if err := c2.(*TCPConn).CloseRead(); err != nil {
		t.Fatalf("CloseRead = %v", err)
	}
	if n, err := c2.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Errorf("Read after CloseRead = %d, %v; want 0, EOF", n, err)
	}
	if _, err := c2.Write([]byte("still")); err != nil {
		t.Fatalf("Write after CloseRead = %v", err)
	}
	b := make([]byte, 5)
	if _, err := io.ReadFull(c1, b); err != nil || string(b) != "still" {
		t.Errorf("peer ReadFull = %q, %v; want \"still\"", b, err)
	}
}

func TestNetReset(t *testing.T) {
	leakcheck.Check(t)
	c1, c2 := netPipe(t)
	// SO_LINGER 0: Close resets the connection.
	if err := c2.(*TCPConn).SetLinger(0); err != nil {
		t.Fatalf("SetLinger(0) = %v", err)
	}
	c2.Close()
	c1.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c1.Read(make([]byte, 10))
	var oe *net.OpError
	if !errors.Is(err, unix.ECONNRESET) || !errors.As(err, &oe) || oe.Op != "read" {
		t.Errorf("Read after the peer's reset = %v, want read: ECONNRESET", err)
	}
}

func TestNetConnAddrs(t *testing.T) {
	forNetSetups(t, func(t *testing.T, server, client *Sockets, network, laddr string) {
		c1, c2, stop, err := netConnPair(t, server, client, network, laddr)
		if err != nil {
			t.Fatalf("netConnPair = %v", err)
		}
		defer stop()
		for _, a := range []net.Addr{c1.LocalAddr(), c1.RemoteAddr(), c2.LocalAddr(), c2.RemoteAddr()} {
			if _, ok := a.(*net.TCPAddr); !ok {
				t.Fatalf("address %v is a %T, want *net.TCPAddr", a, a)
			}
		}
		if c1.LocalAddr().String() != c2.RemoteAddr().String() || c1.RemoteAddr().String() != c2.LocalAddr().String() {
			t.Errorf("client %v -> %v, server %v <- %v: want mirrored addresses",
				c1.LocalAddr(), c1.RemoteAddr(), c2.LocalAddr(), c2.RemoteAddr())
		}
		want := netip.MustParseAddrPort(laddr).Addr()
		if got := c1.RemoteAddr().(*net.TCPAddr).AddrPort().Addr(); got != want {
			t.Errorf("client RemoteAddr = %v, want %v", got, want)
		}
	})
}

func TestNetLargeTransfer(t *testing.T) {
	leakcheck.Check(t)
	server, client := netPair(t)
	c1, c2, stop, err := netConnPair(t, server, client, "tcp", "10.0.0.1:0")
	if err != nil {
		t.Fatalf("netConnPair = %v", err)
	}
	defer stop()
	want := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	errc := make(chan error, 1)
	go func() {
		_, err := c1.Write(want)
		c1.(*TCPConn).CloseWrite()
		errc <- err
	}()
	got, err := io.ReadAll(c2)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("ReadAll = %d bytes, %v; want %d bytes", len(got), err, len(want))
	}
	if err := <-errc; err != nil {
		t.Errorf("Write = %v", err)
	}
}

func TestNetDescriptorClosedUnderneath(t *testing.T) {
	leakcheck.Check(t)
	s := netLoopback(t)
	c1, _, stop, err := netConnPair(t, s, s, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("netConnPair = %v", err)
	}
	defer stop()
	done := netBlockedRead(c1)
	time.Sleep(50 * time.Millisecond)
	// The embedder tears the sockets down while the conn is in use.
	s.CloseAll()
	if err := netWaitErr(t, "Read", done); !errors.Is(err, unix.EBADF) {
		t.Errorf("Read blocked across CloseAll = %v, want EBADF", err)
	}
	// A new socket takes the conn's old descriptor number; the conn must
	// not reach it.
	want := c1.(*TCPConn).fd.fd
	var fd int
	for {
		if fd, err = s.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0); err != nil {
			t.Fatalf("Socket = %v", err)
		}
		defer s.Close(fd)
		if fd >= want {
			break
		}
	}
	if fd != want {
		t.Fatalf("new sockets skipped the conn's old descriptor %d", want)
	}
	if _, err := c1.Write([]byte("x")); !errors.Is(err, unix.EBADF) {
		t.Errorf("Write after CloseAll = %v, want EBADF", err)
	}
	if err := c1.Close(); !errors.Is(err, unix.EBADF) {
		t.Errorf("Close after CloseAll = %v, want EBADF", err)
	}
	if _, err := s.Getsockname(fd); err != nil {
		t.Errorf("the new socket %d after the old conn's Close: Getsockname = %v, want it still open", fd, err)
	}
}

func TestNetConnOptions(t *testing.T) {
	leakcheck.Check(t)
	c1, _ := netPipe(t)
	tc := c1.(*TCPConn)
	s, fd := tc.fd.s, tc.fd.fd
	get := func(level, opt int) int {
		t.Helper()
		v, err := s.GetsockoptInt(fd, level, opt)
		if err != nil {
			t.Fatalf("GetsockoptInt(%d, %d) = %v", level, opt, err)
		}
		return v
	}
	if get(unix.IPPROTO_TCP, unix.TCP_NODELAY) == 0 {
		t.Errorf("a dialled TCPConn has TCP_NODELAY off, want on as in Go")
	}
	steps := []struct {
		name        string
		set         func() error
		level, opt  int
		want, atMin int // want exactly, or at least atMin
	}{
		{"SetNoDelay(false)", func() error { return tc.SetNoDelay(false) }, unix.IPPROTO_TCP, unix.TCP_NODELAY, 0, 0},
		{"SetKeepAlive(true)", func() error { return tc.SetKeepAlive(true) }, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1, 0},
		{"SetKeepAlivePeriod(1.5s)", func() error { return tc.SetKeepAlivePeriod(1500 * time.Millisecond) }, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 2, 0},
		{"SetKeepAlivePeriod(1.5s) interval", func() error { return nil }, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 2, 0},
		{"SetReadBuffer(64KiB)", func() error { return tc.SetReadBuffer(64 << 10) }, unix.SOL_SOCKET, unix.SO_RCVBUF, -1, 64 << 10},
		{"SetWriteBuffer(64KiB)", func() error { return tc.SetWriteBuffer(64 << 10) }, unix.SOL_SOCKET, unix.SO_SNDBUF, -1, 64 << 10},
	}
	for _, st := range steps {
		if err := st.set(); err != nil {
			t.Errorf("%s = %v", st.name, err)
			continue
		}
		got := get(st.level, st.opt)
		if st.want >= 0 && got != st.want || st.want < 0 && got < st.atMin {
			t.Errorf("after %s the option reads %d, want %d (at least %d)", st.name, got, st.want, st.atMin)
		}
	}
	// As the net package: 0 is 15s, a negative period changes nothing.
	tc.SetKeepAlivePeriod(0)
	tc.SetKeepAlivePeriod(-time.Second)
	if got := get(unix.IPPROTO_TCP, unix.TCP_KEEPIDLE); got != 15 {
		t.Errorf("after SetKeepAlivePeriod(0) and (-1s), TCP_KEEPIDLE = %d, want 15", got)
	}
}
