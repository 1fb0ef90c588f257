//go:build linux

package sockapi

import (
	"math"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/waiter"
)

func fdSet(fds ...int) *unix.FdSet {
	s := new(unix.FdSet)
	for _, fd := range fds {
		s.Set(fd)
	}
	return s
}

func TestSelectSets(t *testing.T) {
	leakcheck.Check(t)
	s := newFakeSockets(t)
	rd, rfd := newFake(t, s)
	wr, wfd := newFake(t, s)
	idle, ifd := newFake(t, s)
	pri, pfd := newFake(t, s)
	bad, bfd := newFake(t, s)
	rd.set(waiter.ReadableEvents | waiter.WritableEvents)
	wr.set(waiter.WritableEvents)
	idle.set(0)
	pri.set(waiter.EventPri)
	bad.set(waiter.EventErr | waiter.EventHUp)
	all := []int{rfd, wfd, ifd, pfd, bfd}
	r, w, e := fdSet(all...), fdSet(all...), fdSet(all...)
	n, err := s.Select(bfd+1, r, w, e, &unix.Timeval{})
	// readable: rd, bad (HUP/ERR count as readable); writable: rd, wr,
	// bad (ERR counts as writable); exceptional: pri.
	if n != 6 || err != nil {
		t.Fatalf("Select = %d, %v; want 6, nil", n, err)
	}
	if *r != *fdSet(rfd, bfd) || *w != *fdSet(rfd, wfd, bfd) || *e != *fdSet(pfd) {
		t.Errorf("Select sets r=%v w=%v e=%v", r.Bits[0], w.Bits[0], e.Bits[0])
	}
}

func TestSelectErrors(t *testing.T) {
	leakcheck.Check(t)
	s := newFakeSockets(t)
	_, fd := newFake(t, s)
	_, gone := newFake(t, s)
	closeFD(t, s, gone)
	tests := []struct {
		name string
		nfd  int
		r    *unix.FdSet
		tv   *unix.Timeval
		want error
	}{
		{"negative nfd", -1, nil, &unix.Timeval{}, unix.EINVAL},
		{"negative sec", 1, nil, &unix.Timeval{Sec: -1}, unix.EINVAL},
		{"negative usec", 1, nil, &unix.Timeval{Sec: 1, Usec: -1}, unix.EINVAL},
		{"usec a second", 1, nil, &unix.Timeval{Usec: 1000000}, unix.EINVAL},
		{"closed fd in set", gone + 1, fdSet(fd, gone), &unix.Timeval{}, unix.EBADF},
		{"bad timeout before EBADF", gone + 1, fdSet(gone), &unix.Timeval{Usec: -1}, unix.EINVAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before unix.FdSet
			if tt.r != nil {
				before = *tt.r
			}
			n, err := s.Select(tt.nfd, tt.r, nil, nil, tt.tv)
			if n != -1 || err != tt.want {
				t.Errorf("Select(%d) = %d, %v; want -1, %v", tt.nfd, n, err, tt.want)
			}
			if tt.r != nil && *tt.r != before {
				t.Errorf("failed Select changed the set")
			}
		})
	}
}

func TestSelectClipsNfd(t *testing.T) {
	leakcheck.Check(t)
	s := newFakeSockets(t)
	f, fd := newFake(t, s)
	f.set(waiter.ReadableEvents)
	// Bits past the table's size (64 descriptors until it grows) are
	// ignored, as Linux ignores bits past max_fds; so is nfd past
	// FD_SETSIZE.
	r := fdSet(fd, 70, 999)
	n, err := s.Select(5000, r, nil, nil, &unix.Timeval{})
	if n != 1 || err != nil {
		t.Fatalf("Select(5000) = %d, %v; want 1, nil", n, err)
	}
	// Linux writes back only the words covering nfd: it clears bit fd+5
	// (same word, not looked at) but leaves 70 and 999 (later words).
	r = fdSet(fd, fd+5, 70, 999)
	if n, err := s.Select(fd+1, r, nil, nil, &unix.Timeval{}); n != 1 || err != nil {
		t.Fatalf("Select(%d) = %d, %v; want 1, nil", fd+1, n, err)
	}
	if *r != *fdSet(fd, 70, 999) {
		t.Errorf("Select(%d) set = %x, want only %d, 70, 999", fd+1, r.Bits, fd)
	}
}

func TestSelectTimeout(t *testing.T) {
	leakcheck.Check(t)
	s := newFakeSockets(t)
	_, fd := newFake(t, s)
	r := fdSet(fd)
	tv := unix.Timeval{Usec: 30000}
	start := time.Now()
	n, err := s.Select(fd+1, r, nil, nil, &tv)
	if n != 0 || err != nil || *r != (unix.FdSet{}) {
		t.Errorf("Select = %d, %v, set %x; want 0, nil, empty", n, err, r.Bits)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("Select returned after %v, before its 30ms timeout", d)
	}
	if tv != (unix.Timeval{Usec: 30000}) {
		t.Errorf("Select changed the timeout to %+v; x/sys/unix (pselect6) leaves it", tv)
	}
	// With no descriptors select is a sleep.
	start = time.Now()
	if n, err := s.Select(0, nil, nil, nil, &unix.Timeval{Usec: 20000}); n != 0 || err != nil || time.Since(start) < 20*time.Millisecond {
		t.Errorf("Select(0) = %d, %v after %v; want 0, nil after 20ms", n, err, time.Since(start))
	}
}

func TestSelectBlocks(t *testing.T) {
	leakcheck.Check(t)
	s := newFakeSockets(t)
	f, fd := newFake(t, s)
	other, ofd := newFake(t, s)
	time.AfterFunc(20*time.Millisecond, func() { f.set(waiter.ReadableEvents) })
	r, w := fdSet(fd, ofd), fdSet(fd)
	n, err := s.Select(ofd+1, r, w, nil, nil)
	if n != 1 || err != nil || *r != *fdSet(fd) || *w != (unix.FdSet{}) {
		t.Errorf("Select = %d, %v, r=%x w=%x; want 1, nil, r={%d}", n, err, r.Bits[0], w.Bits[0], fd)
	}
	if f.waiters() || other.waiters() {
		t.Error("Select left waiters registered")
	}
	// A descriptor closed while select waits is skipped, not EBADF.
	time.AfterFunc(20*time.Millisecond, func() { closeFD(t, s, ofd) })
	time.AfterFunc(60*time.Millisecond, func() { f.set(waiter.WritableEvents) })
	r, w = fdSet(ofd), fdSet(fd)
	n, err = s.Select(ofd+1, r, w, nil, nil)
	if n != 1 || err != nil || *r != (unix.FdSet{}) || *w != *fdSet(fd) {
		t.Errorf("Select after close = %d, %v, r=%x w=%x; want 1, nil, w={%d}", n, err, r.Bits[0], w.Bits[0], fd)
	}
}

// TestHugeTimeouts checks that timeouts beyond time.Duration's range
// block rather than wrap to "return at once".
func TestHugeTimeouts(t *testing.T) {
	leakcheck.Check(t)
	s := newFakeSockets(t)
	f, fd := newFake(t, s)
	time.AfterFunc(20*time.Millisecond, func() { f.set(waiter.ReadableEvents) })
	if n, err := s.Select(fd+1, fdSet(fd), nil, nil, &unix.Timeval{Sec: 1 << 62}); n != 1 || err != nil {
		t.Errorf("Select(huge timeout) = %d, %v; want 1, nil", n, err)
	}
	f.set(0)
	time.AfterFunc(20*time.Millisecond, func() { f.set(waiter.ReadableEvents) })
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if n, err := s.Poll(p, math.MaxInt); n != 1 || err != nil {
		t.Errorf("Poll(huge timeout) = %d, %v; want 1, nil", n, err)
	}
}
