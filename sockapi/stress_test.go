//go:build linux

package sockapi

import (
	"sync"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"golang.org/x/sys/unix"
)

// TestConcurrentCallsOnOneSocket runs every kind of call on the same
// descriptors from several goroutines while they are closed and reused,
// for the race detector: nothing may panic, hang or leak, and every call
// returns either a result or an errno.
func TestConcurrentCallsOnOneSocket(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	l, addr := listener(t, s, unix.AF_INET)
	s.SetNonblock(l, true)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	worker := func(f func(i int)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				f(i)
			}
		}()
	}
	buf := make([]byte, 64)
	// Descriptors 1..8 are created, used and closed concurrently.
	worker(func(i int) {
		fd, err := s.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
		if err != nil {
			return
		}
		s.Connect(fd, addr)
		if i%3 == 0 {
			s.Close(fd)
		}
	})
	worker(func(int) {
		if fd, _, err := s.Accept(l); err == nil {
			s.Write(fd, []byte("hello"))
			s.Close(fd)
		}
	})
	for w := 0; w < 3; w++ {
		worker(func(i int) {
			fd := 1 + i%8
			switch i % 7 {
			case 0:
				s.Recv(fd, buf, unix.MSG_DONTWAIT)
			case 1:
				s.Send(fd, []byte("x"), unix.MSG_DONTWAIT)
			case 2:
				s.Shutdown(fd, unix.SHUT_RDWR)
			case 3:
				s.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, i&1)
			case 4:
				s.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
			case 5:
				s.Connect(fd, addr)
			case 6:
				s.Close(fd)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("calls still running 10s after stop: a call hung")
	}
}
