//go:build linux

package sockapi

import (
	"os"
	"os/signal"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"golang.org/x/sys/unix"
)

// kernelPair returns a connected TCP pair over the host's loopback,
// closed at the end of the test.
func kernelPair(t *testing.T, k API) (c, s int) {
	t.Helper()
	ln, err := k.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatalf("Socket = %v", err)
	}
	defer k.Close(ln)
	if err := k.Bind(ln, v4.lo(0)); err != nil {
		t.Fatalf("Bind = %v", err)
	}
	if err := k.Listen(ln, 1); err != nil {
		t.Fatalf("Listen = %v", err)
	}
	addr, _ := k.Getsockname(ln)
	if c, err = k.Socket(unix.AF_INET, unix.SOCK_STREAM, 0); err != nil {
		t.Fatalf("Socket = %v", err)
	}
	if err := k.Connect(c, addr); err != nil {
		t.Fatalf("Connect = %v", err)
	}
	if s, _, err = k.Accept(ln); err != nil {
		t.Fatalf("Accept = %v", err)
	}
	return c, s
}

func TestKernelDescriptorsAreCloseOnExec(t *testing.T) {
	leakcheck.Check(t)
	k := Kernel()
	c, s := kernelPair(t, k)
	ep, err := k.EpollCreate1(0)
	if err != nil {
		t.Fatalf("EpollCreate1(0) = %v", err)
	}
	for name, fd := range map[string]int{"socket": c, "accepted": s, "epoll": ep} {
		if v, err := k.Fcntl(fd, unix.F_GETFD, 0); err != nil || v&unix.FD_CLOEXEC == 0 {
			t.Errorf("%s: Fcntl(F_GETFD) = %#x, %v, want FD_CLOEXEC", name, v, err)
		}
		k.Close(fd)
	}
}

// TestKernelWriteNoSIGPIPE writes to a connection the peer has reset:
// the write fails with EPIPE and no SIGPIPE is raised (MSG_NOSIGNAL).
func TestKernelWriteNoSIGPIPE(t *testing.T) {
	// os/signal starts its one receiving goroutine on first use and keeps
	// it for the life of the process; start it before the baseline.
	warm := make(chan os.Signal, 1)
	signal.Notify(warm, unix.SIGPIPE)
	signal.Stop(warm)
	leakcheck.Check(t)
	k := Kernel()
	c, s := kernelPair(t, k)
	defer k.Close(c)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, unix.SIGPIPE)
	defer signal.Stop(sig)
	k.SetsockoptLinger(s, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1})
	k.Close(s)
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = k.Write(c, []byte("x"))
		time.Sleep(time.Millisecond)
	}
	if err != unix.EPIPE && err != unix.ECONNRESET {
		t.Fatalf("Write after peer reset = %v, want EPIPE (or ECONNRESET first)", err)
	}
	if _, err = k.Write(c, []byte("x")); err != unix.EPIPE {
		t.Errorf("Write after reset seen = %v, want EPIPE", err)
	}
	select {
	case <-sig:
		t.Errorf("Write raised SIGPIPE")
	case <-time.After(50 * time.Millisecond):
	}
}

// TestKernelCloseWhileBlocked documents Linux's behaviour: Close returns
// at once while another goroutine is blocked in Read on the descriptor,
// but the blocked Read is not woken; it holds the socket open and
// returns when data arrives. Shutdown is what wakes it.
func TestKernelCloseWhileBlocked(t *testing.T) {
	leakcheck.Check(t)
	k := Kernel()
	c, s := kernelPair(t, k)
	defer k.Close(s)
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		p := make([]byte, 8)
		n, err := k.Read(c, p)
		done <- result{n, err}
	}()
	time.Sleep(50 * time.Millisecond) // let Read block
	start := time.Now()
	if err := k.Close(c); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v while a Read was blocked", d)
	}
	select {
	case r := <-done:
		t.Fatalf("Read returned %d, %v after Close; Linux keeps it blocked", r.n, r.err)
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := k.Write(s, []byte("late")); err != nil {
		t.Fatalf("peer Write = %v", err)
	}
	select {
	case r := <-done:
		if r.err != nil || r.n != 4 {
			t.Errorf("blocked Read = %d, %v, want the peer's 4 bytes", r.n, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocked Read did not return after the peer wrote")
	}
}

func TestKernelShutdownWakesBlockedRead(t *testing.T) {
	leakcheck.Check(t)
	k := Kernel()
	c, s := kernelPair(t, k)
	defer k.Close(s)
	defer k.Close(c)
	done := make(chan error, 1)
	go func() {
		n, err := k.Read(c, make([]byte, 8))
		if err == nil && n != 0 {
			err = unix.EINVAL
		}
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := k.Shutdown(c, unix.SHUT_RDWR); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Read woken by Shutdown = %v, want 0 bytes (EOF)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not wake the blocked Read")
	}
}

// TestKernelPollRetriesKeepTimeout checks that poll-like calls wait for
// their timeout and no longer, retries included.
func TestKernelPollRetriesKeepTimeout(t *testing.T) {
	leakcheck.Check(t)
	k := Kernel()
	fd, err := k.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close(fd)
	start := time.Now()
	n, err := k.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 100)
	if d := time.Since(start); n != 0 || err != nil || d < 90*time.Millisecond || d > 2*time.Second {
		t.Errorf("Poll(100ms) = %d, %v after %v", n, err, d)
	}
}
