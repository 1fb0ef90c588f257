package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/netip"
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
	a, b := pipe.New("", "", 65520)
	ns, err := stack.New(stack.Config{
		NICs: []stack.NICConfig{{Name: "tap0", Endpoint: a, Addrs: []netip.Prefix{
			netip.PrefixFrom(DefaultGuest4, 24), netip.PrefixFrom(DefaultGuest6, 64)}}},
		Routes: []stack.Route{
			{Dest: netip.MustParsePrefix("0.0.0.0/0"), Gateway: DefaultGateway4, NIC: "tap0"},
			{Dest: netip.MustParsePrefix("::/0"), Gateway: DefaultGateway6, NIC: "tap0"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := NewStack(StackConfig{Endpoint: b})
	if err != nil {
		ns.Close()
		t.Fatal(err)
	}
	cfg.Stack = gw
	cfg.Logf = t.Logf
	r, err := New(cfg)
	if err != nil {
		ns.Close()
		gw.Close()
		gw.Wait()
		t.Fatal(err)
	}
	h := &harness{ns: ns, gw: gw, r: r}
	t.Cleanup(func() {
		r.Close()
		ns.Close()
		gw.Close()
		gw.Wait()
	})
	return h
}

func full(ap netip.AddrPort) (tcpip.FullAddress, tcpip.NetworkProtocolNumber) {
	return tcpip.FullAddress{Addr: toTCPIP(ap.Addr()), Port: ap.Port()}, protoOf(ap.Addr())
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
				// Hide ReadFrom: TCPConn-to-TCPConn io.Copy splices
				// through pipes the runtime caches, which leakcheck
				// would count.
				io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{c})
				c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().(*net.TCPAddr).AddrPort()
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
