package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/stack"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// harness joins a "namespace" stack (standing in for the namespace's
// kernel) to the relay's stack over an in-memory pipe, as the TUN device
// joins them in `ustack run`.
type harness struct {
	ns *stack.Stack
	gw *gstack.Stack
	r  *Relay
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	return newHarnessLink(t, cfg, nil)
}

// newHarnessLink is newHarness with the namespace's end of the pipe
// wrapped by wrap, if not nil (to see what the relay sends it).
func newHarnessLink(t *testing.T, cfg Config, wrap func(gstack.LinkEndpoint) gstack.LinkEndpoint) *harness {
	t.Helper()
	pa, b := pipe.New("", "", 65520)
	var a gstack.LinkEndpoint = pa
	if wrap != nil {
		a = wrap(pa)
	}
	nw := cfg.Network // one Network for both sides, as ustack run does
	ns, err := stack.New(stack.Config{
		NICs: []stack.NICConfig{{Name: "tap0", Endpoint: a, Addrs: []netip.Prefix{
			netip.PrefixFrom(nw.Guest4(), nw.Bits4()), netip.PrefixFrom(nw.Guest6(), nw.Bits6())}}},
		Routes: []stack.Route{
			{Dest: netip.MustParsePrefix("0.0.0.0/0"), Gateway: nw.Gateway4(), NIC: "tap0"},
			{Dest: netip.MustParsePrefix("::/0"), Gateway: nw.Gateway6(), NIC: "tap0"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	gwn, err := stack.New(StackConfig(b, nil, nw))
	if err != nil {
		ns.Close()
		t.Fatal(err)
	}
	cfg.Stack = gwn
	cfg.Logf = t.Logf
	r, err := New(cfg)
	if err != nil {
		ns.Close()
		gwn.Close()
		t.Fatal(err)
	}
	gwn.Resume()
	h := &harness{ns: ns, gw: gwn.GVisor(), r: r}
	t.Cleanup(func() {
		r.Close()
		ns.Close()
		gwn.Close()
	})
	return h
}

func full(ap netip.AddrPort) (tcpip.FullAddress, tcpip.NetworkProtocolNumber) {
	return tcpip.FullAddress{Addr: stack.Address(ap.Addr()), Port: ap.Port()}, stack.Protocol(ap.Addr())
}

// dial connects from the namespace stack to dst.
func (h *harness) dial(t *testing.T, dst string) (*gonet.TCPConn, error) {
	t.Helper()
	fa, proto := full(netip.MustParseAddrPort(dst))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return gonet.DialContextTCP(ctx, h.ns.GVisor(), fa, proto)
}

// echoServer runs a TCP echo server on host loopback until the test ends.
func echoServer(t *testing.T, network, addr string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	serveTCP(t, ln, func(c net.Conn) {
		// Hide ReadFrom: TCPConn-to-TCPConn io.Copy splices through
		// pipes the runtime caches, which leakcheck would count.
		io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{c})
		c.(*net.TCPConn).CloseWrite()
	})
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// serveTCP accepts connections on ln until the test ends, each handled by
// handle on a goroutine of its own and closed after it; then it closes ln.
func serveTCP(t *testing.T, ln net.Listener, handle func(net.Conn)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
}

// roundTrip sends data over c, half-closes, and checks the echo.
func roundTrip(t *testing.T, c net.Conn, n int) {
	t.Helper()
	want := make([]byte, n)
	rand.Read(want)
	go func() {
		c.Write(want)
		c.(interface{ CloseWrite() error }).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("echo: got %d bytes, err %v; want the %d bytes sent", len(got), err, n)
	}
}

func TestTCPGatewayToHostLoopback(t *testing.T) {
	leakcheck.Check(t)
	srv4 := echoServer(t, "tcp4", "127.0.0.1:0")
	srv6 := echoServer(t, "tcp6", "[::1]:0")
	h := newHarness(t, Config{AllowHostLoopback: true})
	for _, dst := range []netip.AddrPort{
		netip.AddrPortFrom(DefaultGateway4, srv4.Port()),
		netip.AddrPortFrom(DefaultGateway6, srv6.Port()),
	} {
		t.Run(dst.String(), func(t *testing.T) {
			c, err := h.dial(t, dst.String())
			if err != nil {
				t.Fatalf("dial %v = %v, want success with --allow-host-loopback", dst, err)
			}
			defer c.Close()
			roundTrip(t, c, 4<<20)
		})
	}
	if st := h.r.Stats(); st.TCPRelayed != 2 || st.BytesOut != 8<<20 || st.BytesIn != 8<<20 {
		t.Errorf("Stats() = %+v, want 2 relayed, 8 MiB each way", st)
	}
}

// TestBusyFlows checks the count of connections that moved bulk data
// each way since the previous call: two that echoed 1 MiB count both ways
// at a 1 MiB threshold and not at 2 MiB; one sending 1 MiB that is not
// echoed counts one way only; idle ones do not count the next time.
func TestBusyFlows(t *testing.T) {
	leakcheck.Check(t)
	srv := echoServer(t, "tcp4", "127.0.0.1:0")
	sink := sinkServer(t)
	h := newHarness(t, Config{AllowHostLoopback: true})
	dial := func(ap netip.AddrPort) *gonet.TCPConn {
		dst := netip.AddrPortFrom(DefaultGateway4, ap.Port()).String()
		c, err := h.dial(t, dst)
		if err != nil {
			t.Fatalf("dial %v: %v", dst, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	conns := []*gonet.TCPConn{dial(srv), dial(srv)}
	up := dial(sink)
	if out, in := h.r.BusyFlows(1); out != 0 || in != 0 {
		t.Errorf("BusyFlows(1) before any data = %d, %d; want 0, 0", out, in)
	}
	var total uint64
	echo := func() {
		for _, c := range conns {
			go c.Write(make([]byte, 1<<20))
			if _, err := io.ReadFull(c, make([]byte, 1<<20)); err != nil {
				t.Fatalf("reading the echo: %v", err)
			}
		}
		total += 2 << 20
		waitBytes(t, h.r, total, total)
	}
	echo()
	if out, in := h.r.BusyFlows(2 << 20); out != 0 || in != 0 {
		t.Errorf("BusyFlows(2 MiB) after 1 MiB each way per connection = %d, %d; want 0, 0", out, in)
	}
	echo()
	if _, err := up.Write(make([]byte, 1<<20)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	waitBytes(t, h.r, total+1<<20, total)
	if out, in := h.r.BusyFlows(1 << 20); out != 3 || in != 2 {
		t.Errorf("BusyFlows(1 MiB) = %d, %d; want 3 out (2 echoes, 1 upload), 2 in", out, in)
	}
	if out, in := h.r.BusyFlows(1); out != 0 || in != 0 {
		t.Errorf("BusyFlows(1) with nothing moved since = %d, %d; want 0, 0", out, in)
	}
}

// waitBytes waits until the relay's totals show out and in bytes: a copy
// loop counts what it moved just after moving it (the totals last).
func waitBytes(t *testing.T, r *Relay, out, in uint64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		st := r.Stats()
		if st.BytesOut == out && st.BytesIn == in {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Stats() = %+v, want %d bytes out, %d in", st, out, in)
		}
	}
}

// sinkServer runs a TCP server on host loopback that reads and discards
// until the test ends.
func sinkServer(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveTCP(t, ln, func(c net.Conn) { io.Copy(io.Discard, struct{ io.Reader }{c}) })
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

func TestTCPRefusedWithoutAllowHostLoopback(t *testing.T) {
	leakcheck.Check(t)
	srv := echoServer(t, "tcp4", "127.0.0.1:0")
	h := newHarness(t, Config{})
	_, err := h.dial(t, netip.AddrPortFrom(DefaultGateway4, srv.Port()).String())
	if err == nil || !errors.Is(err, syscall.ECONNREFUSED) && !bytes.Contains([]byte(err.Error()), []byte("refused")) {
		t.Fatalf("dial gateway without AllowHostLoopback = %v, want connection refused", err)
	}
	if st := h.r.Stats(); st.Denied != 1 || st.TCPRelayed != 0 {
		t.Errorf("Stats() = %+v, want 1 denied, none relayed", st)
	}
}

// udpEcho runs a UDP echo server on addr until the test ends.
func udpEcho(t *testing.T, network, addr string) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	echoPackets(t, pc)
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// echoPackets sends each datagram pc reads back to its sender until the
// test ends; then it closes pc.
func echoPackets(t *testing.T, pc net.PacketConn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
}

// udpExchange sends msg from the namespace stack to dst and returns the
// reply, or an error after a second.
func (h *harness) udpExchange(t *testing.T, dst netip.AddrPort, msg string) (string, error) {
	t.Helper()
	fa, proto := full(dst)
	c, err := gonet.DialUDP(h.ns.GVisor(), nil, &fa, proto)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	return string(buf[:n]), err
}

func TestUDPRelay(t *testing.T) {
	leakcheck.Check(t)
	srv4 := udpEcho(t, "udp4", "127.0.0.1:0")
	srv6 := udpEcho(t, "udp6", "[::1]:0")
	h := newHarness(t, Config{AllowHostLoopback: true})
	for _, dst := range []netip.AddrPort{
		netip.AddrPortFrom(DefaultGateway4, srv4.Port()),
		netip.AddrPortFrom(DefaultGateway6, srv6.Port()),
	} {
		if got, err := h.udpExchange(t, dst, "ping "+dst.String()); err != nil || got != "ping "+dst.String() {
			t.Errorf("UDP exchange with %v = %q, %v; want the echo", dst, got, err)
		}
	}
	if st := h.r.Stats(); st.UDPFlows != 2 {
		t.Errorf("Stats().UDPFlows = %d, want 2", st.UDPFlows)
	}
}

func TestDNSForwarder(t *testing.T) {
	leakcheck.Check(t)
	// An echo server stands in for the resolver: the forwarder relays
	// datagrams and never looks inside them.
	up := udpEcho(t, "udp4", "127.0.0.1:0")
	h := newHarness(t, Config{DNSUpstreams: []netip.AddrPort{up}})
	for _, dns := range []netip.Addr{DefaultDNS4, DefaultDNS6} {
		dst := netip.AddrPortFrom(dns, 53)
		if got, err := h.udpExchange(t, dst, "query"); err != nil || got != "query" {
			t.Errorf("query to %v = %q, %v; want it answered by the upstream", dst, got, err)
		}
	}
	// Other ports of the DNS address are closed: ICMP port unreachable.
	if _, err := h.udpExchange(t, netip.AddrPortFrom(DefaultDNS4, 54), "x"); err == nil {
		t.Errorf("datagram to %v:54 answered, want port unreachable", DefaultDNS4)
	}
	if st := h.r.Stats(); st.DNSQueries != 2 {
		t.Errorf("Stats().DNSQueries = %d, want 2", st.DNSQueries)
	}
}

func TestDeny(t *testing.T) {
	leakcheck.Check(t)
	h := newHarness(t, Config{Deny: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	if _, err := h.dial(t, "192.0.2.1:80"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("dial denied 192.0.2.1:80 = %v, want connection refused", err)
	}
	if _, err := h.udpExchange(t, netip.MustParseAddrPort("192.0.2.1:53"), "x"); err == nil {
		t.Errorf("UDP to denied 192.0.2.1:53 answered, want port unreachable")
	}
	if st := h.r.Stats(); st.Denied != 2 {
		t.Errorf("Stats().Denied = %d, want 2", st.Denied)
	}
}

func TestFlowLimit(t *testing.T) {
	leakcheck.Check(t)
	srv := echoServer(t, "tcp4", "127.0.0.1:0")
	h := newHarness(t, Config{AllowHostLoopback: true, MaxFlows: 1})
	dst := netip.AddrPortFrom(DefaultGateway4, srv.Port()).String()
	c1, err := h.dial(t, dst)
	if err != nil {
		t.Fatalf("first dial = %v", err)
	}
	defer c1.Close()
	if _, err := h.dial(t, dst); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("second dial at MaxFlows=1 = %v, want refused", err)
	}
	if st := h.r.Stats(); st.FlowLimitHits != 1 {
		t.Errorf("Stats().FlowLimitHits = %d, want 1", st.FlowLimitHits)
	}
	c1.Close()
	// The slot comes back once the first connection is gone.
	deadline := time.Now().Add(5 * time.Second)
	for h.r.Stats().TCPActive != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	c3, err := h.dial(t, dst)
	if err != nil {
		t.Fatalf("dial after the first closed = %v, want success", err)
	}
	c3.Close()
}

func TestHalfCloseTimeout(t *testing.T) {
	leakcheck.Check(t)
	// A host server that reads to EOF and then never answers or closes.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(io.Discard, c)
		held <- c
	}()
	h := newHarness(t, Config{AllowHostLoopback: true, HalfCloseTimeout: 200 * time.Millisecond})
	c, err := h.dial(t, netip.AddrPortFrom(DefaultGateway4, ln.Addr().(*net.TCPAddr).AddrPort().Port()).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("request"))
	c.CloseWrite()
	hc := <-held
	defer hc.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("read after half-close = %v, want EOF or reset once the relay gives up", err)
	}
	if st := h.r.Stats(); st.HalfOpenClosed != 1 {
		t.Errorf("Stats().HalfOpenClosed = %d, want 1", st.HalfOpenClosed)
	}
}

func TestUDPIdleExpiry(t *testing.T) {
	leakcheck.Check(t)
	srv := udpEcho(t, "udp4", "127.0.0.1:0")
	h := newHarness(t, Config{AllowHostLoopback: true, UDPIdleTimeout: 100 * time.Millisecond})
	if _, err := h.udpExchange(t, netip.AddrPortFrom(DefaultGateway4, srv.Port()), "x"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for h.r.Stats().UDPActive != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := h.r.Stats(); st.UDPActive != 0 || st.UDPExpired != 1 {
		t.Errorf("Stats() = %+v, want the idle flow expired (UDPExpired 1, UDPActive 0)", st)
	}
}

func TestUDPPortUnreachable(t *testing.T) {
	leakcheck.Check(t)
	h := newHarness(t, Config{AllowHostLoopback: true})
	for _, tc := range []struct {
		network, host string
		gw            netip.Addr
	}{
		{"udp4", "127.0.0.1:0", DefaultGateway4},
		{"udp6", "[::1]:0", DefaultGateway6},
	} {
		// A port that was just closed on host loopback.
		pc, err := net.ListenPacket(tc.network, tc.host)
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).AddrPort().Port()
		pc.Close()
		h.udpExchange(t, netip.AddrPortFrom(tc.gw, port), "anyone?")
	}
	// The namespace side received (and validated) one real port
	// unreachable per flow; the kernel turns it into ECONNREFUSED, which
	// TestRunUDP checks end to end.
	icmp := h.ns.GVisor().Stats().ICMP
	if v4, v6 := icmp.V4.PacketsReceived.DstUnreachable.Value(), icmp.V6.PacketsReceived.DstUnreachable.Value(); v4 != 1 || v6 != 1 {
		t.Errorf("namespace received %d ICMPv4 and %d ICMPv6 destination unreachable, want 1 each", v4, v6)
	}
	if st := h.r.Stats(); st.PortUnreachable != 2 {
		t.Errorf("Stats().PortUnreachable = %d, want 2", st.PortUnreachable)
	}
}

// TestTCPUnreachable: when the real dial fails as host or network
// unreachable, the namespace's connect fails the same way (through a
// real-looking ICMP error quoting its SYN), not as refused.
func TestTCPUnreachable(t *testing.T) {
	leakcheck.Check(t)
	for _, tc := range []struct {
		errno syscall.Errno
		dst   string
		want  string
	}{
		{syscall.EHOSTUNREACH, "192.0.2.1:80", "no route to host"},
		{syscall.ENETUNREACH, "[2001:db8::1]:80", "network is unreachable"},
		{syscall.ECONNREFUSED, "192.0.2.1:81", "refused"},
	} {
		t.Run(tc.errno.Error(), func(t *testing.T) {
			h := newHarness(t, Config{Dial: func(context.Context, string, string) (net.Conn, error) {
				return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", tc.errno)}
			}})
			_, err := h.dial(t, tc.dst)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("dial %s when the real dial fails with %v = %v, want %q", tc.dst, tc.errno, err, tc.want)
			}
		})
	}
}

// TestDNSFailover: when the current upstream refuses, the namespace's
// query fails at once (port unreachable) and the next query goes to the
// next upstream.
func TestDNSFailover(t *testing.T) {
	leakcheck.Check(t)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	pc.Close()
	live := udpEcho(t, "udp4", "127.0.0.1:0")
	h := newHarness(t, Config{DNSUpstreams: []netip.AddrPort{dead, live}})
	dst := netip.AddrPortFrom(DefaultDNS4, 53)
	if got, err := h.udpExchange(t, dst, "first"); err == nil {
		t.Fatalf("query while the first upstream is down = %q, want an error", got)
	}
	// The failed flow ends when its socket closes; wait for the switch.
	deadline := time.Now().Add(5 * time.Second)
	for h.r.dnsUpstream() != live && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got, err := h.udpExchange(t, dst, "second"); err != nil || got != "second" {
		t.Fatalf("query after failover = %q, %v; want it answered by the second upstream", got, err)
	}
}

// TestTCPDialTimeoutSilent: when the real destination never answers,
// the namespace's connect is not refused when the relay's dial gives up
// (the real network would not refuse it either); it times out on its
// own clock, each SYN it sends again is dialled again, and once it has
// given up the relay holds nothing for it.
func TestTCPDialTimeoutSilent(t *testing.T) {
	leakcheck.Check(t)
	dials := make(chan struct{}, 16)
	h := newHarness(t, Config{
		DialTimeout: 200 * time.Millisecond,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			dials <- struct{}{}
			<-ctx.Done() // a destination that never answers
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: ctx.Err()}
		},
	})
	fa, proto := full(netip.MustParseAddrPort("192.0.2.1:80"))
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	start := time.Now()
	c, err := gonet.DialContextTCP(ctx, h.ns.GVisor(), fa, proto)
	if err == nil {
		c.Close()
		t.Fatal("connect to a destination that never answers succeeded")
	}
	if elapsed := time.Since(start); elapsed < 2*time.Second || strings.Contains(err.Error(), "refused") {
		t.Fatalf("connect failed after %v with %v; want the caller's own timeout (2.5s), not a refusal after the relay's dial timeout (200ms)", elapsed.Round(time.Millisecond), err)
	}
	// The first SYN and at least its retransmission (gVisor's first
	// retransmission timeout is 1s) were each dialled.
	if n := len(dials); n < 2 {
		t.Errorf("%d dials for a connect that sent its SYN again, want one per SYN", n)
	}
	// Nothing stays behind once the last dial has timed out.
	notes := func() int {
		h.r.synMu.Lock()
		defer h.r.synMu.Unlock()
		return len(h.r.syns)
	}
	deadline := time.Now().Add(2 * time.Second)
	for h.r.flows.Load() != 0 || notes() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d flows and %d SYN notes held after the namespace gave up", h.r.flows.Load(), notes())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s := h.r.Stats(); s.TCPActive != 0 || s.TCPDialFailed < 2 {
		t.Errorf("stats %+v: want no active connection and every dial counted as failed", s)
	}
}
