package relay

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
)

// When CMD exits, everything it wrote and closed has been acknowledged to
// its kernel by the relay's stack, which may still hold megabytes of it:
// `ustack run -- socat -u FILE TCP:host:port` lost the file's last 2.7 MB.
// Drain lets those bytes reach the host before Close; a kernel would keep
// sending them after the process exits.
func TestDrainDeliversWhatTheNamespaceSent(t *testing.T) {
	leakcheck.Check(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer c.Close()
		time.Sleep(200 * time.Millisecond) // a slow reader: the bytes wait in the relay
		n, _ := io.Copy(io.Discard, struct{ io.Reader }{c})
		got <- n
	}()
	h := newHarness(t, Config{AllowHostLoopback: true})
	c, err := h.dial(t, netip.AddrPortFrom(DefaultGateway4, ln.Addr().(*net.TCPAddr).AddrPort().Port()).String())
	if err != nil {
		t.Fatal(err)
	}
	const size = 8 << 20
	if n, err := c.Write(make([]byte, size)); n != size || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	c.Close() // returns once the relay's stack holds the bytes
	h.r.Drain(10 * time.Second)
	h.r.Close()
	if n := <-got; n != size {
		t.Errorf("host received %d bytes of the %d the namespace sent and closed before Drain, Close", n, size)
	}
}

// Drain gives up after its timeout when the host does not take the bytes.
func TestDrainBounded(t *testing.T) {
	leakcheck.Check(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // never read
		}
	}()
	h := newHarness(t, Config{AllowHostLoopback: true})
	c, err := h.dial(t, netip.AddrPortFrom(DefaultGateway4, ln.Addr().(*net.TCPAddr).AddrPort().Port()).String())
	if err != nil {
		t.Fatal(err)
	}
	hc := <-accepted
	defer hc.Close()
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write(make([]byte, 64<<20)) // fills every buffer on the way
	c.Close()
	start := time.Now()
	h.r.Drain(100 * time.Millisecond)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Drain(100ms) took %v with a host that never reads", d)
	}
}
