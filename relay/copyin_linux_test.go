package relay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// failingReadConn is a host socket whose receive queue holds bytes
// (Control reaches the real one, for SIOCINQ) but whose read fails with
// a host errno: readFD is a directory, which read(2) answers with EISDIR,
// standing in for ETIMEDOUT or ECONNABORTED met by the read.
type failingReadConn struct {
	syscall.RawConn
	readFD uintptr
}

func (c failingReadConn) Read(f func(uintptr) bool) error {
	f(c.readFD)
	return nil
}

// payloadEndpoint is the part of a gVisor TCP endpoint directIn uses:
// Write reads the payload, and a failed read fails the write as gVisor's
// does (ErrBadBuffer).
type payloadEndpoint struct{ tcpip.Endpoint }

func (payloadEndpoint) Write(p tcpip.Payloader, _ tcpip.WriteOptions) (int64, tcpip.Error) {
	b := make([]byte, p.Len())
	n, err := p.Read(b)
	if err != nil {
		return 0, &tcpip.ErrBadBuffer{}
	}
	return int64(n), nil
}

// TestDirectInHostErrorIsReset: a host error other than a reset met
// while directIn reads the socket is passed on as a reset. Read once, the
// error is gone (the socket then reads EOF), and step returned stepRead:
// copyHalf's Read saw EOF and CMD got a FIN, a transfer cut short reading
// as complete, which 2cf4bb5 had fixed for copyHalf's own reads.
func TestDirectInHostErrorIsReset(t *testing.T) {
	leakcheck.Check(t)
	c, s := tcpPair(t)
	if _, err := s.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	dir, err := os.Open("/")
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fake := failingReadConn{RawConn: rc, readFD: dir.Fd()}
	d := &directIn{rc: fake, src: nsEndpoint{ep: payloadEndpoint{}, wq: &waiter.Queue{}}, notify: make(chan struct{})}
	d.rd.rc = fake
	for deadline := time.Now().Add(2 * time.Second); d.inq() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the 4 bytes never reached the socket's receive queue")
		}
	}
	var total atomic.Uint64
	if got := d.step(counter{total: &total}); got != stepHostReset {
		t.Errorf("step with the host read failing with %v = %d, want stepHostReset (%d)", unix.EISDIR, got, stepHostReset)
	}
}

// wrappedConn is a host connection Config.Dial may return that is not a
// *net.TCPConn (a wrapper adding socket options, say): the relay then
// copies through its buffer, without directIn and copyOut.
type wrappedConn struct{ *net.TCPConn }

// TestNSResetPassedOnWithoutDirect: on the buffered path (Config.Dial
// returning a wrapper), CMD resetting its connection reaches the server
// as a reset. copyHalf recognised the namespace side by its type
// (*nsConn), which it never had there (a *gonet.TCPConn), so the reset
// was passed on as an orderly close: the server read EOF.
func TestNSResetPassedOnWithoutDirect(t *testing.T) {
	leakcheck.Check(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	h := newHarness(t, Config{AllowHostLoopback: true, Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return wrappedConn{c.(*net.TCPConn)}, nil
	}})
	// The namespace's endpoint itself, for SO_LINGER 0 (gonet hides it).
	var wq waiter.Queue
	ep, terr := h.ns.GVisor().NewEndpoint(tcp.ProtocolNumber, header.IPv4ProtocolNumber, &wq)
	if terr != nil {
		t.Fatal(terr)
	}
	defer ep.Close()
	entry, ready := waiter.NewChannelEntry(waiter.WritableEvents)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	fa, _ := full(netip.AddrPortFrom(DefaultGateway4, port))
	if terr := ep.Connect(fa); terr != nil {
		if _, ok := terr.(*tcpip.ErrConnectStarted); !ok {
			t.Fatalf("Connect: %v", terr)
		}
		select {
		case <-ready:
		case <-time.After(5 * time.Second):
			t.Fatal("connect through the relay timed out")
		}
	}
	if terr := ep.LastError(); terr != nil {
		t.Fatalf("connect through the relay: %v", terr)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A byte through first: the relay has the connection from the
	// namespace too (a reset during its handshake is another path).
	var b bytes.Reader
	b.Reset([]byte("x"))
	if _, terr := ep.Write(&b, tcpip.WriteOptions{}); terr != nil {
		t.Fatalf("Write: %v", terr)
	}
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
		t.Fatalf("server reading CMD's byte: %v", err)
	}
	ep.SocketOptions().SetLinger(tcpip.LingerOption{Enabled: true})
	ep.Close() // a reset
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = s.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("server read after CMD reset its connection: %v; want ECONNRESET", err)
	}
}
