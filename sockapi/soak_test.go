//go:build linux

package sockapi

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/stack"
	"golang.org/x/sys/unix"
)

// soakFigures is what a program that embeds the stack for days must see
// stay flat under churn.
type soakFigures struct {
	goroutines int
	endpoints  uint64 // the stack's transport endpoints, cleanup stage included
	table      int    // slots of the descriptor table (it never shrinks)
	heap       uint64 // live heap
}

func readSoakFigures(st *stack.Stack, s *Sockets) soakFigures {
	runtime.GC()
	runtime.GC() // sync.Pool contents take two collections
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	e := st.Endpoints()
	s.fds.mu.Lock()
	table := len(s.fds.entries)
	s.fds.mu.Unlock()
	return soakFigures{runtime.NumGoroutine(), e.Registered + e.Cleanup, table, ms.HeapAlloc}
}

// TestSoakChurnReturnsToBaseline is the CI-sized soak of an embedding
// program (tests/soak -mode embed is the long one): warm up with every
// kind of churn an embedder makes (connections closed from either end
// and through epoll, datagrams through poll, Go adapter dials by number
// and by name, lookups over DNS on the stack, non-blocking connects
// closed early, refused connects, reads woken by Close, a second Sockets
// ended with CloseAll), take the figures, churn ten times as much again,
// and require goroutines, endpoints and descriptor slots back at the
// warm-up figures and the live heap within 256 KiB: a leak of one small
// object per cycle shows.
func TestSoakChurnReturnsToBaseline(t *testing.T) {
	leakcheck.Check(t)
	st, err := stack.New(stack.Config{TCP: stack.TCPConfig{TimeWaitTimeout: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := New(st)
	defer s.CloseAll()
	dns := startDNS(t, st.GVisor(), "127.0.0.53:53")
	for i := range 10 {
		dns.add(soakName(i), "A 127.0.0.1")
	}
	if err := s.SetResolver(ResolverConfig{Nameservers: []netip.AddrPort{dns.addr}}); err != nil {
		t.Fatal(err)
	}
	// The echo server has Sockets of its own, so that when it closes its
	// side does not change how many of s's descriptors are open at once.
	echo := soakEcho(t, New(st))

	settle := func() soakFigures {
		// TIME_WAIT (20 ms here) and gVisor's last timers end the closed
		// connections; the echo server's goroutines end with them.
		dns.queries() // the test server's log of queries, not ours
		deadline := time.Now().Add(5 * time.Second)
		prev := readSoakFigures(st, s)
		for time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			f := readSoakFigures(st, s)
			if f.goroutines == prev.goroutines && f.endpoints == prev.endpoints && f.endpoints <= 3 {
				return f
			}
			prev = f
		}
		return prev
	}
	const warm, churn = 30, 300
	for i := range warm {
		soakCycle(t, st, s, echo, i)
	}
	base := settle()
	for i := range churn {
		soakCycle(t, st, s, echo, i)
	}
	got := settle()
	t.Logf("warm-up %+v, after %+v", base, got)
	if got.goroutines > base.goroutines || got.endpoints > base.endpoints || got.table > base.table {
		t.Errorf("after %d more cycles: goroutines %d, endpoints %d, descriptor slots %d; want at most %d, %d, %d (after the warm-up)",
			churn, got.goroutines, got.endpoints, got.table, base.goroutines, base.endpoints, base.table)
	}
	// Measured 40-50 KB; 860 KB while DNS exchanges left their
	// deadline timers pending (TestDNSExchangesLeaveNoTimers).
	if grown := int64(got.heap) - int64(base.heap); grown > 256<<10 {
		t.Errorf("after %d more cycles the live heap grew by %d bytes (%d per cycle), want under 256 KiB", churn, grown, grown/churn)
	}
}

func soakName(i int) string { return "n" + string(rune('a'+i%10)) + ".soak." }

// soakEcho runs a Go-adapter echo server on 127.0.0.1 on s until the test
// ends, then closes s.
func soakEcho(t *testing.T, s *Sockets) string {
	t.Helper()
	l, err := (&ListenConfig{Sockets: s}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() { l.Close(); wg.Wait(); s.CloseAll() })
	return l.Addr().String()
}

// soakCycle makes one of each kind of churn.
func soakCycle(t *testing.T, st *stack.Stack, s *Sockets, echo string, i int) {
	t.Helper()
	family := unix.AF_INET
	if i%2 == 1 {
		family = unix.AF_INET6
	}
	// A connection through epoll and poll, closed from either end.
	c, a := tcpPair(t, s, family)
	ep, err := s.EpollCreate1(0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EpollCtl(ep, unix.EPOLL_CTL_ADD, a, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(a)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(c, make([]byte, 1000+i)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.EpollWait(ep, make([]unix.EpollEvent, 1), 5000); n != 1 || err != nil {
		t.Fatalf("EpollWait = %d, %v; want the data", n, err)
	}
	if _, err := s.Read(a, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	if i%3 == 0 {
		c, a = a, c
	}
	for _, fd := range []int{ep, c, a} {
		if err := s.Close(fd); err != nil {
			t.Fatal(err)
		}
	}

	// A datagram each way through poll.
	u1, u2 := mustSocket(t, s, family, unix.SOCK_DGRAM, 0), mustSocket(t, s, family, unix.SOCK_DGRAM, 0)
	var any unix.Sockaddr = loop4(0)
	if family == unix.AF_INET6 {
		any = loop6(0)
	}
	if err := s.Bind(u2, any); err != nil {
		t.Fatal(err)
	}
	to, _ := s.Getsockname(u2)
	if err := s.Sendto(u1, []byte("x"), 0, to); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Poll([]unix.PollFd{{Fd: int32(u2), Events: unix.POLLIN}}, 5000); n != 1 || err != nil {
		t.Fatalf("Poll = %d, %v; want the datagram", n, err)
	}
	if _, _, err := s.Recvfrom(u2, make([]byte, 8), 0); err != nil {
		t.Fatal(err)
	}
	s.Close(u1)

	// A read woken by Close.
	woken := make(chan error, 1)
	go func() { _, _, err := s.Recvfrom(u2, make([]byte, 8), 0); woken <- err }()
	// Whether Close comes before the read starts or while it waits,
	// the read ends with EBADF: nothing takes the number in between.
	runtime.Gosched()
	s.Close(u2)
	if err := <-woken; err != unix.EBADF {
		t.Fatalf("Recvfrom woken by Close = %v, want EBADF", err)
	}

	// Go adapters: by number, by name over DNS, and a reset midway.
	d := &Dialer{Sockets: s, Timeout: 5 * time.Second}
	_, port, _ := net.SplitHostPort(echo)
	for _, addr := range []string{echo, net.JoinHostPort(soakName(i), port)} {
		conn, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(conn, make([]byte, 4)); err != nil {
			t.Fatal(err)
		}
		if addr != echo {
			conn.(*TCPConn).SetLinger(0)
		}
		conn.Close()
	}
	if _, err := s.Getaddrinfo(soakName(i+1), "http", &AddrInfo{Socktype: unix.SOCK_STREAM}); err != nil {
		t.Fatal(err)
	}

	// A non-blocking connect closed before anything accepts it, and a
	// refused one.
	nb := mustSocket(t, s, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err := s.Connect(nb, loop4(int(netip.MustParseAddrPort(echo).Port()))); err != nil && err != unix.EINPROGRESS {
		t.Fatal(err)
	}
	s.Close(nb)
	rf := mustSocket(t, s, unix.AF_INET, unix.SOCK_STREAM, 0)
	if err := s.Connect(rf, loop4(1)); err != unix.ECONNREFUSED {
		t.Fatalf("Connect to a closed port = %v, want ECONNREFUSED", err)
	}
	s.Close(rf)

	// Sockets of their own, ended by CloseAll with a connection open.
	s2 := New(st)
	conn, err := (&Dialer{Sockets: s2}).Dial("tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.CloseAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("x")); !errors.Is(err, net.ErrClosed) && !errors.Is(err, unix.EBADF) {
		t.Fatalf("Write after CloseAll = %v, want a closed-descriptor error", err)
	}
}
