//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ustack/ustack/sockapi"
	"github.com/ustack/ustack/stack"
	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"
)

// embedDNS is where the embed mode's DNS server listens, on the stack's
// own loopback.
var embedDNS = netip.MustParseAddrPort("127.0.0.53:53")

// embedLoad is a program that embeds the stack: one loopback stack, one
// Sockets, servers that live through the run, and clients that churn.
type embedLoad struct {
	st    *stack.Stack
	s     *sockapi.Sockets
	echo4 string // Go-adapter echo server, 127.0.0.1:port
	echo6 string // [::1]:port
	maxFD atomic.Int64
	wg    sync.WaitGroup
	stop  []func()
}

func soakEmbed(ctx context.Context, o options) (bool, error) {
	e, err := startEmbed()
	if err != nil {
		return false, err
	}
	defer e.close()
	rec := newRecorder(e.figures, mGoroutines, mThreads, mFDs, mRSS, mHeap, mHeapObj, mEndpoints, mCleanup, mEstab, mMaxFD)
	// The Go runtime starts some goroutines (GC workers, the timer
	// scavenger) on first need; let them start before the baseline.
	runtime.GC()
	if err := rec.takeBaseline(); err != nil {
		return false, err
	}
	fmt.Printf("soak: embed: in this process, load %v at %d op/s with %d workers\n", o.duration, o.rate, o.workers)
	t := newTally()
	ok := phases(ctx, o, "sockapi embedded", rec, func(ctx context.Context) {
		runOps(ctx, o.workers, pacer(ctx, o.rate), e.ops(), t)
	})
	t.print(os.Stdout, "embed")
	return ok, nil
}

func startEmbed() (*embedLoad, error) {
	st, err := stack.New(stack.Config{})
	if err != nil {
		return nil, err
	}
	e := &embedLoad{st: st, s: sockapi.New(st)}
	if err := e.s.SetResolver(sockapi.ResolverConfig{Nameservers: []netip.AddrPort{embedDNS}, Timeout: time.Second}); err != nil {
		e.close()
		return nil, err
	}
	lc := &sockapi.ListenConfig{Sockets: e.s}
	for _, a := range []string{"127.0.0.1:0", "[::1]:0"} {
		l, err := lc.Listen(context.Background(), "tcp", a)
		if err != nil {
			e.close()
			return nil, err
		}
		if e.echo4 == "" {
			e.echo4 = l.Addr().String()
		} else {
			e.echo6 = l.Addr().String()
		}
		e.stop = append(e.stop, func() { l.Close() })
		e.wg.Add(1)
		go func() { defer e.wg.Done(); serveEcho(l) }()
	}
	pc, err := lc.ListenPacket(context.Background(), "udp", embedDNS.String())
	if err != nil {
		e.close()
		return nil, err
	}
	e.stop = append(e.stop, func() { pc.Close() })
	e.wg.Add(1)
	go func() { defer e.wg.Done(); serveDNS(pc, [4]byte{127, 0, 0, 1}) }()
	return e, nil
}

func (e *embedLoad) close() {
	for _, f := range e.stop {
		f()
	}
	e.wg.Wait()
	e.s.CloseAll()
	e.st.Close()
}

// serveEcho echoes every connection l accepts, until l is closed
// (serveConns).
func serveEcho(l net.Listener) {
	serveConns(l, 30*time.Second, func(c net.Conn) { io.Copy(c, c) })
}

// serveConns handles every connection l accepts with handle, each on its
// own goroutine, with a deadline timeout from the accept, and closes it
// after; until l is closed. It waits for them.
func serveConns(l net.Listener, timeout time.Duration, handle func(net.Conn)) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			c.SetDeadline(time.Now().Add(timeout))
			handle(c)
		}()
	}
}

// serveDNS answers every A query with a, until pc is closed.
func serveDNS(pc net.PacketConn, a [4]byte) {
	servePackets(pc, 1500, func(req []byte) []byte { return dnsAnswer(req, a) })
}

// servePackets reads datagrams of up to size bytes from pc and sends each
// sender what answer returns for its datagram (nothing for nil), until pc
// is closed.
func servePackets(pc net.PacketConn, size int, answer func(req []byte) []byte) {
	buf := make([]byte, size)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if reply := answer(buf[:n]); reply != nil {
			pc.WriteTo(reply, from)
		}
	}
}

func dnsAnswer(req []byte, a [4]byte) []byte {
	var m dnsmessage.Message
	if err := m.Unpack(req); err != nil || len(m.Questions) != 1 {
		return nil
	}
	q := m.Questions[0]
	m.Response, m.Authoritative, m.RecursionAvailable = true, true, true
	m.Answers = nil
	if q.Type == dnsmessage.TypeA {
		m.Answers = []dnsmessage.Resource{{
			Header: dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 1},
			Body:   &dnsmessage.AResource{A: a},
		}}
	}
	m.Additionals = nil
	b, err := m.Pack()
	if err != nil {
		return nil
	}
	return b
}

func (e *embedLoad) figures() (map[string]float64, error) {
	v, err := procFigures(os.Getpid())
	if err != nil {
		return nil, err
	}
	runtime.GC() // the live heap, as ustackFigures reads it
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	v[mGoroutines.name] = float64(runtime.NumGoroutine())
	v[mHeap.name] = float64(m.HeapAlloc)
	v[mHeapObj.name] = float64(m.HeapObjects)
	st, ep := e.st.Stats(), e.st.Endpoints()
	v[mEndpoints.name] = float64(ep.Registered)
	v[mCleanup.name] = float64(ep.Cleanup)
	v[mEstab.name] = float64(st.TCP.CurrentEstablished)
	v[mMaxFD.name] = float64(e.maxFD.Swap(0))
	return v, nil
}

// seen records the highest descriptor number handed out since the last
// sample: descriptors are allocated lowest first, so it grows only if
// some are never closed.
func (e *embedLoad) seen(fds ...int) {
	for _, fd := range fds {
		for {
			cur := e.maxFD.Load()
			if int64(fd) <= cur || e.maxFD.CompareAndSwap(cur, int64(fd)) {
				break
			}
		}
	}
}

func (e *embedLoad) ops() []op {
	d := &sockapi.Dialer{Sockets: e.s, Timeout: 5 * time.Second}
	return []op{
		{"raw-tcp-epoll", 20, e.rawTCP},
		{"raw-udp-poll", 15, e.rawUDP},
		{"adapter-echo", 20, func(ctx context.Context) error { return adapterEcho(ctx, d, pickOf(e.echo4, e.echo6)) }},
		{"adapter-by-name", 8, func(ctx context.Context) error {
			_, port, _ := net.SplitHostPort(e.echo4)
			return adapterEcho(ctx, d, fmt.Sprintf("h%d.soak.:%s", randInt(1000), port))
		}},
		{"getaddrinfo", 10, e.getaddrinfo},
		{"reset-midway", 6, func(ctx context.Context) error { return adapterReset(ctx, d, e.echo4) }},
		{"refused", 4, e.refused},
		{"nonblock-connect", 6, e.nonblockConnect},
		{"close-while-blocked", 4, e.closeWhileBlocked},
		{"sockets-cycle", 2, e.socketsCycle},
	}
}

func pickOf(a, b string) string {
	if randInt(2) == 0 {
		return a
	}
	return b
}

// randomLoopback returns IPv4 or IPv6, at random, and that family's
// loopback address (port 0).
func randomLoopback() (int, unix.Sockaddr) {
	if randInt(2) == 0 {
		return unix.AF_INET6, &unix.SockaddrInet6{Addr: netip.IPv6Loopback().As16()}
	}
	return unix.AF_INET, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
}

// rawTCP: listen, connect, accept, data through epoll and poll, close.
func (e *embedLoad) rawTCP(ctx context.Context) error {
	s := e.s
	family, addr := randomLoopback()
	var fds []int
	defer func() {
		for _, fd := range fds {
			s.Close(fd)
		}
	}()
	lfd, err := s.Socket(family, unix.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	fds = append(fds, lfd)
	if err := s.Bind(lfd, addr); err != nil {
		return err
	}
	if err := s.Listen(lfd, 8); err != nil {
		return err
	}
	la, err := s.Getsockname(lfd)
	if err != nil {
		return err
	}
	cfd, err := s.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	fds = append(fds, cfd)
	if err := s.Connect(cfd, la); err != nil {
		return err
	}
	afd, _, err := s.Accept4(lfd, unix.SOCK_NONBLOCK)
	if err != nil {
		return err
	}
	fds = append(fds, afd)
	ep, err := s.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	fds = append(fds, ep)
	e.seen(lfd, cfd, afd, ep)
	if err := s.EpollCtl(ep, unix.EPOLL_CTL_ADD, afd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(afd)}); err != nil {
		return err
	}
	msg := make([]byte, 1+randInt(16<<10))
	if _, err := s.Write(cfd, msg); err != nil {
		return err
	}
	got := 0
	buf := make([]byte, 32<<10)
	for got < len(msg) {
		evs := make([]unix.EpollEvent, 4)
		if n, err := s.EpollWait(ep, evs, 2000); err != nil || n == 0 {
			return fmt.Errorf("epoll_wait = %d, %v; want the data", n, err)
		}
		n, err := s.Read(afd, buf)
		if err != nil && err != unix.EAGAIN {
			return err
		}
		got += max(n, 0)
	}
	if _, err := s.Write(afd, msg[:1]); err != nil {
		return err
	}
	pfd := []unix.PollFd{{Fd: int32(cfd), Events: unix.POLLIN}}
	if n, err := s.Poll(pfd, 2000); n != 1 || err != nil {
		return fmt.Errorf("poll = %d, %v; want 1", n, err)
	}
	if randInt(2) == 0 {
		// The client closes first (TIME_WAIT on its side), else the server.
		fds[1], fds[2] = fds[2], fds[1]
	}
	return nil
}

// rawUDP: two sockets, a datagram each way, poll, close.
func (e *embedLoad) rawUDP(ctx context.Context) error {
	s := e.s
	family, addr := randomLoopback()
	a, err := s.Socket(family, unix.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	defer s.Close(a)
	b, err := s.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer s.Close(b)
	e.seen(a, b)
	if err := s.Bind(b, addr); err != nil {
		return err
	}
	bAddr, err := s.Getsockname(b)
	if err != nil {
		return err
	}
	if err := s.Sendto(a, []byte("ping"), 0, bAddr); err != nil {
		return err
	}
	pfd := []unix.PollFd{{Fd: int32(b), Events: unix.POLLIN}}
	if n, err := s.Poll(pfd, 2000); n != 1 || err != nil {
		return fmt.Errorf("poll = %d, %v; want 1", n, err)
	}
	buf := make([]byte, 64)
	n, from, err := s.Recvfrom(b, buf, 0)
	if err != nil {
		return err
	}
	if err := s.Sendto(b, buf[:n], 0, from); err != nil {
		return err
	}
	if err := s.SetsockoptTimeval(a, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 2}); err != nil {
		return err
	}
	_, _, err = s.Recvfrom(a, buf, 0)
	return err
}

func adapterEcho(ctx context.Context, d *sockapi.Dialer, addr string) error {
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	msg := make([]byte, 1+randInt(32<<10))
	errc := make(chan error, 1)
	go func() { _, err := c.Write(msg); errc <- err }()
	if _, err := io.ReadFull(c, make([]byte, len(msg))); err != nil {
		return err
	}
	return <-errc
}

func adapterReset(ctx context.Context, d *sockapi.Dialer, addr string) error {
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	go c.Write(make([]byte, 64<<10)) // ends with the connection
	if _, err := io.ReadFull(c, make([]byte, 1+randInt(4096))); err != nil {
		c.Close()
		return err
	}
	c.(*sockapi.TCPConn).SetLinger(0)
	return c.Close()
}

func (e *embedLoad) getaddrinfo(ctx context.Context) error {
	name := fmt.Sprintf("n%d.soak.", randInt(100000))
	if randInt(4) == 0 {
		name = "localhost"
	}
	res, err := e.s.Getaddrinfo(name, "80", &sockapi.AddrInfo{Socktype: unix.SOCK_STREAM})
	if err != nil {
		return err
	}
	if len(res) == 0 {
		return errors.New("getaddrinfo: no results")
	}
	return nil
}

// refused connects to a port nothing listens on.
func (e *embedLoad) refused(ctx context.Context) error {
	fd, err := e.s.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	defer e.s.Close(fd)
	e.seen(fd)
	if err := e.s.Connect(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: 1}); err != unix.ECONNREFUSED {
		return fmt.Errorf("connect to a closed port = %v, want ECONNREFUSED", err)
	}
	return nil
}

// nonblockConnect starts a connect, waits for EPOLLOUT, reads SO_ERROR,
// and closes, sometimes before the connection is accepted.
func (e *embedLoad) nonblockConnect(ctx context.Context) error {
	s := e.s
	_, portText, _ := net.SplitHostPort(e.echo4)
	var port int
	fmt.Sscan(portText, &port)
	fd, err := s.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer s.Close(fd)
	ep, err := s.EpollCreate1(0)
	if err != nil {
		return err
	}
	defer s.Close(ep)
	e.seen(fd, ep)
	if err := s.Connect(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}); err != unix.EINPROGRESS && err != nil {
		return err
	}
	if err := s.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLET, Fd: int32(fd)}); err != nil {
		return err
	}
	evs := make([]unix.EpollEvent, 1)
	if n, err := s.EpollWait(ep, evs, 2000); n != 1 || err != nil {
		return fmt.Errorf("epoll_wait = %d, %v; want EPOLLOUT", n, err)
	}
	if soerr, err := s.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || soerr != 0 {
		return fmt.Errorf("SO_ERROR = %d, %v", soerr, err)
	}
	return nil
}

// closeWhileBlocked closes a descriptor another goroutine is blocked
// reading; the read must end with EBADF. It uses Sockets of its own: in
// the shared one another worker could be given the closed number before
// the reader's call starts, as in a kernel process.
func (e *embedLoad) closeWhileBlocked(ctx context.Context) error {
	s := sockapi.New(e.st)
	defer s.CloseAll()
	fd, err := s.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	if err := s.Bind(fd, &unix.SockaddrInet6{Addr: netip.IPv6Loopback().As16()}); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := s.Recvfrom(fd, make([]byte, 16), 0)
		done <- err
	}()
	time.Sleep(time.Duration(randInt(20)) * time.Millisecond)
	s.Close(fd)
	select {
	case err := <-done:
		if err != unix.EBADF {
			return fmt.Errorf("recvfrom after close = %v, want EBADF", err)
		}
		return nil
	case <-time.After(5 * time.Second):
		return errors.New("recvfrom still blocked 5s after close")
	}
}

// socketsCycle makes a second Sockets on the same stack, uses it, and
// ends it with CloseAll, as a program that embeds a stack per session
// might.
func (e *embedLoad) socketsCycle(ctx context.Context) error {
	s2 := sockapi.New(e.st)
	defer s2.CloseAll()
	d := &sockapi.Dialer{Sockets: s2, Timeout: 5 * time.Second}
	var conns []net.Conn
	for range 4 {
		c, err := d.DialContext(ctx, "tcp", e.echo4)
		if err != nil {
			return err
		}
		conns = append(conns, c)
	}
	_, err := conns[0].Write([]byte("x"))
	return err // CloseAll closes the rest
}
