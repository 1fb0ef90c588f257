package relay

import (
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
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
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	dir, err := os.Open("/")
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	rc, err := c.(*net.TCPConn).SyscallConn()
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
