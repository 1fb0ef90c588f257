//go:build linux

package sockapi

import (
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
	"golang.org/x/sys/unix"
)

// TestConnectAgainAfterFailure: Linux returns a socket whose connect
// failed to the unconnected state, so connecting again starts a new
// attempt (measured: ECONNREFUSED three times in a row; non-blocking
// EINPROGRESS, ECONNREFUSED, EINPROGRESS; a later listener is reached).
func TestConnectAgainAfterFailure(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	fd := mustSocket(t, s, unix.AF_INET, unix.SOCK_STREAM, 0)
	for i := 0; i < 3; i++ {
		if err := s.Connect(fd, loop4(1)); err != unix.ECONNREFUSED {
			t.Errorf("Connect #%d (closed port) = %v, want ECONNREFUSED", i+1, err)
		}
	}
	nb := mustSocket(t, s, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	for i, want := range []error{unix.EINPROGRESS, unix.ECONNREFUSED, unix.EINPROGRESS} {
		if i > 0 {
			waitReady(t, s, nb)
		}
		if err := s.Connect(nb, loop4(1)); err != want {
			t.Errorf("nonblocking Connect #%d (closed port) = %v, want %v", i+1, err, want)
		}
	}
	l, addr := listener(t, s, unix.AF_INET)
	if err := s.Connect(fd, addr); err != nil {
		t.Fatalf("Connect(after failures, to a listener) = %v, want nil", err)
	}
	srv, _, err := s.Accept(l)
	if err != nil {
		t.Fatalf("Accept = %v", err)
	}
	if n, err := s.Write(fd, []byte("hi")); n != 2 || err != nil {
		t.Errorf("Write on the reconnected socket = %d, %v", n, err)
	}
	if n, err := s.Read(srv, make([]byte, 2)); n != 2 || err != nil {
		t.Errorf("Read = %d, %v", n, err)
	}
}
