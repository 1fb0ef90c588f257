package relay

import (
	"context"
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
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// A reset must cross the relay as a reset. Turned into an orderly close,
// a reset in the middle of a response reads as its end (an HTTP/1.0 body,
// a stream to EOF): a truncated transfer the program cannot tell from a
// complete one. The kernel reports ECONNRESET on both sides, and so must
// the relay.

func TestTCPHostResetReachesNamespace(t *testing.T) {
	leakcheck.Check(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Read(make([]byte, 10))
		c.Write(make([]byte, 64<<10))
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}()
	h := newHarness(t, Config{AllowHostLoopback: true})
	c, err := h.dial(t, netip.AddrPortFrom(DefaultGateway4, ln.Addr().(*net.TCPAddr).AddrPort().Port()).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("request"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	time.Sleep(100 * time.Millisecond) // the host's bytes and reset reach the relay first
	got, err := io.ReadAll(c)
	// As without ustack: the bytes sent before the reset, then the reset.
	if len(got) != 64<<10 || err == nil || !strings.Contains(err.Error(), "reset") {
		t.Errorf("namespace read after 64 KiB and the host peer's reset = %d bytes, %v; want 65536 bytes, then a connection reset", len(got), err)
	}
}

func TestTCPNamespaceResetReachesHost(t *testing.T) {
	leakcheck.Check(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	res := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			res <- err
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadAll(c)
		res <- err
	}()
	h := newHarness(t, Config{AllowHostLoopback: true})
	var wq waiter.Queue
	ep, terr := h.ns.GVisor().NewEndpoint(tcp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		t.Fatal(terr)
	}
	entry, notify := waiter.NewChannelEntry(waiter.WritableEvents)
	wq.EventRegister(&entry)
	fa, _ := full(netip.AddrPortFrom(DefaultGateway4, ln.Addr().(*net.TCPAddr).AddrPort().Port()))
	if terr := ep.Connect(fa); terr != nil {
		if _, ok := terr.(*tcpip.ErrConnectStarted); !ok {
			t.Fatal(terr)
		}
		<-notify
	}
	wq.EventUnregister(&entry)
	c := gonet.NewTCPConn(&wq, ep)
	c.Write([]byte("request"))
	time.Sleep(100 * time.Millisecond) // the request reaches the host
	ep.SocketOptions().SetLinger(tcpip.LingerOption{Enabled: true})
	c.Close()
	if err := <-res; !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("host read after the namespace's reset = %v, want ECONNRESET", err)
	}
}

// nsAcceptOne accepts one connection on the namespace stack at guest and
// hands it to f on a goroutine the test waits for.
func (h *harness) nsAcceptOne(t *testing.T, guest netip.AddrPort, f func(ep tcpip.Endpoint, c net.Conn)) {
	t.Helper()
	fa, proto := full(guest)
	var wq waiter.Queue
	ln, terr := h.ns.GVisor().NewEndpoint(tcp.ProtocolNumber, proto, &wq)
	if terr != nil {
		t.Fatal(terr)
	}
	if terr := ln.Bind(fa); terr != nil {
		t.Fatal(terr)
	}
	if terr := ln.Listen(1); terr != nil {
		t.Fatal(terr)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		entry, notify := waiter.NewChannelEntry(waiter.ReadableEvents)
		wq.EventRegister(&entry)
		defer wq.EventUnregister(&entry)
		for {
			ep, cwqp, terr := ln.Accept(nil)
			if _, ok := terr.(*tcpip.ErrWouldBlock); ok {
				select {
				case <-notify:
					continue
				case <-time.After(5 * time.Second):
					return
				}
			}
			if terr != nil {
				return
			}
			c := gonet.NewTCPConn(cwqp, ep)
			f(ep, c)
			return
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
}

func TestForwardResetsPassedOn(t *testing.T) {
	leakcheck.Check(t)
	h := newHarness(t, Config{})
	port := freePort(t, "tcp4", "127.0.0.1:0")
	f := Forward{Proto: "tcp", HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: port, GuestPort: 80}
	if err := h.r.AddForward(f); err != nil {
		t.Fatal(err)
	}
	defer h.r.RemoveForward(f)
	hostAddr := net.JoinHostPort("127.0.0.1", itoa(port))
	guest := netip.AddrPortFrom(DefaultGuest4, 80)

	t.Run("server inside resets", func(t *testing.T) {
		h.nsAcceptOne(t, guest, func(ep tcpip.Endpoint, c net.Conn) {
			c.Write([]byte("partial"))
			time.Sleep(50 * time.Millisecond)
			ep.SocketOptions().SetLinger(tcpip.LingerOption{Enabled: true})
			c.Close()
		})
		c, err := net.DialTimeout("tcp4", hostAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(c)
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("host client read after the server's reset = %q, %v; want ECONNRESET", got, err)
		}
	})
	t.Run("host client resets", func(t *testing.T) {
		res := make(chan error, 1)
		h.nsAcceptOne(t, guest, func(ep tcpip.Endpoint, c net.Conn) {
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			_, err := io.ReadAll(c)
			res <- err
		})
		c, err := net.DialTimeout("tcp4", hostAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("request"))
		time.Sleep(100 * time.Millisecond)
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
		if err := <-res; err == nil || !strings.Contains(err.Error(), "reset") {
			t.Errorf("server read after the host client's reset = %v, want a connection reset", err)
		}
	})
}

// Go's dialer reports ECONNRESET when the connection was established and
// the server reset it before the dialer read SO_ERROR (a server that
// answers and resets at once, as Linux does when closing with the
// request unread). A kernel client's connect succeeded there and its
// read gets the reset; the relay refused the namespace's SYN instead, so
// connect said ECONNREFUSED, as if nothing listened.
func TestTCPDialResetIsAcceptedThenReset(t *testing.T) {
	leakcheck.Check(t)
	h := newHarness(t, Config{AllowHostLoopback: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ECONNRESET)}
	}})
	c, err := h.dial(t, netip.AddrPortFrom(DefaultGateway4, 9).String())
	if err != nil {
		t.Fatalf("connect when the real connection was made and reset = %v, want success", err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err == nil || !strings.Contains(err.Error(), "reset") {
		t.Errorf("read = %v, want a connection reset", err)
	}
}
