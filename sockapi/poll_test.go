//go:build linux

package sockapi

import (
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/waiter"
)

func TestEventMapping(t *testing.T) {
	leakcheck.Check(t)
	tests := []struct {
		name string
		ev   waiter.EventMask
		want uint32
	}{
		{"in", waiter.EventIn, unix.POLLIN | unix.EPOLLRDNORM},
		{"rdnorm", waiter.EventRdNorm, unix.POLLIN | unix.EPOLLRDNORM},
		{"out", waiter.EventOut, unix.POLLOUT | unix.EPOLLWRNORM},
		{"wrnorm", waiter.EventWrNorm, unix.POLLOUT | unix.EPOLLWRNORM},
		{"pri", waiter.EventPri, unix.POLLPRI},
		{"err", waiter.EventErr, unix.POLLERR},
		{"hup", waiter.EventHUp, unix.POLLHUP},
		{"rdhup", waiter.EventRdHUp, unix.POLLRDHUP},
		{"none", 0, 0},
		{"internal only", waiter.EventInternal, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := toLinux(tt.ev); got != tt.want {
				t.Errorf("toLinux(%#x) = %#x, want %#x", tt.ev, got, tt.want)
			}
		})
	}
	// A waiter for any poll bit must be woken by the events gVisor
	// raises for it, and always by errors and hang-ups.
	wakes := []struct {
		events uint32
		by     waiter.EventMask
	}{
		{unix.POLLIN, waiter.EventIn},
		{unix.POLLOUT, waiter.EventOut},
		{unix.POLLRDHUP, waiter.EventIn}, // gVisor announces FIN as readable
		{unix.POLLPRI, waiter.EventIn},
		{unix.EPOLLWRBAND, waiter.EventOut},
		{0, waiter.EventErr},
		{0, waiter.EventHUp},
	}
	for _, w := range wakes {
		if notifyMask(w.events)&w.by == 0 {
			t.Errorf("notifyMask(%#x) = %#x, misses %#x", w.events, notifyMask(w.events), w.by)
		}
	}
}

func TestPollRevents(t *testing.T) {
	leakcheck.Check(t)
	s := newFakeSockets(t)
	f, fd := newFake(t, s)
	closed, cfd := newFake(t, s)
	closeFD(t, s, cfd)
	_ = closed
	tests := []struct {
		name   string
		ready  waiter.EventMask
		fd     int32
		events int16
		want   int16
	}{
		{"readable asked", waiter.ReadableEvents, int32(fd), unix.POLLIN, unix.POLLIN},
		{"readable not asked", waiter.ReadableEvents, int32(fd), unix.POLLOUT, 0},
		{"rdnorm asked", waiter.EventIn, int32(fd), unix.EPOLLRDNORM, unix.EPOLLRDNORM},
		{"both asked", waiter.ReadableEvents | waiter.WritableEvents, int32(fd), unix.POLLIN | unix.POLLOUT, unix.POLLIN | unix.POLLOUT},
		{"hup unasked", waiter.EventHUp, int32(fd), 0, unix.POLLHUP},
		{"err unasked", waiter.EventErr | waiter.WritableEvents, int32(fd), unix.POLLIN, unix.POLLERR},
		{"rdhup asked", waiter.EventRdHUp | waiter.ReadableEvents, int32(fd), unix.POLLRDHUP, unix.POLLRDHUP},
		{"rdhup unasked", waiter.EventRdHUp | waiter.ReadableEvents, int32(fd), unix.POLLIN, unix.POLLIN},
		{"pri", waiter.EventPri, int32(fd), unix.POLLPRI | unix.POLLIN, unix.POLLPRI},
		{"closed fd", 0, int32(cfd), unix.POLLIN, unix.POLLNVAL},
		{"unknown fd, no events", 0, 1000, 0, unix.POLLNVAL},
		{"negative fd ignored", waiter.ReadableEvents, -1, unix.POLLIN, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.set(tt.ready)
			p := []unix.PollFd{{Fd: tt.fd, Events: tt.events, Revents: 0x7fff}}
			n, err := s.Poll(p, 0)
			wantN := 0
			if tt.want != 0 {
				wantN = 1
			}
			if n != wantN || err != nil || p[0].Revents != tt.want {
				t.Errorf("Poll(%+v) = %d, %v, revents %#x; want %d, nil, %#x", p[0], n, err, p[0].Revents, wantN, tt.want)
			}
		})
	}
}

func TestPollCountsEntries(t *testing.T) {
	leakcheck.Check(t)
	s := newFakeSockets(t)
	a, afd := newFake(t, s)
	_, bfd := newFake(t, s)
	a.set(waiter.ReadableEvents)
	p := []unix.PollFd{
		{Fd: int32(afd), Events: unix.POLLIN},
		{Fd: int32(bfd), Events: unix.POLLIN},
		{Fd: -3, Events: unix.POLLIN},
		{Fd: 77, Events: unix.POLLIN},
		{Fd: int32(afd), Events: unix.POLLIN | unix.POLLOUT}, // twice is fine
	}
	n, err := s.Poll(p, 0)
	if n != 3 || err != nil {
		t.Fatalf("Poll = %d, %v; want 3, nil (%+v)", n, err, p)
	}
	want := []int16{unix.POLLIN, 0, 0, unix.POLLNVAL, unix.POLLIN}
	for i := range p {
		if p[i].Revents != want[i] {
			t.Errorf("entry %d revents %#x, want %#x", i, p[i].Revents, want[i])
		}
	}
}

func TestPollErrors(t *testing.T) {
	leakcheck.Check(t)
	s := newFakeSockets(t)
	big := make([]unix.PollFd, pollNofile()+1)
	for i := range big {
		big[i].Fd = -1
	}
	if n, err := s.Poll(big, 0); n != -1 || err != unix.EINVAL {
		t.Errorf("Poll(RLIMIT_NOFILE+1 entries) = %d, %v; want -1, EINVAL", n, err)
	}
	if n, err := s.Poll(big[:len(big)-1], 0); n != 0 || err != nil {
		t.Errorf("Poll(RLIMIT_NOFILE entries) = %d, %v; want 0, nil", n, err)
	}
	if n, err := s.Poll(nil, 0); n != 0 || err != nil {
		t.Errorf("Poll(nil, 0) = %d, %v; want 0, nil", n, err)
	}
}

func TestPollBlocks(t *testing.T) {
	leakcheck.Check(t)
	s := newFakeSockets(t)
	f, fd := newFake(t, s)
	t.Run("wakes on readiness", func(t *testing.T) {
		f.set(0)
		time.AfterFunc(20*time.Millisecond, func() { f.set(waiter.WritableEvents) })
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		n, err := s.Poll(p, -1)
		if n != 1 || err != nil || p[0].Revents != unix.POLLOUT {
			t.Errorf("Poll = %d, %v, %#x; want 1, nil, POLLOUT", n, err, p[0].Revents)
		}
		if f.waiters() {
			t.Error("Poll left a waiter registered")
		}
	})
	t.Run("unrelated events keep waiting", func(t *testing.T) {
		f.set(0)
		f2 := time.AfterFunc(10*time.Millisecond, func() { f.set(waiter.WritableEvents) })
		defer f2.Stop()
		start := time.Now()
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := s.Poll(p, 100)
		if n != 0 || err != nil || p[0].Revents != 0 || time.Since(start) < 100*time.Millisecond {
			t.Errorf("Poll = %d, %v, %#x after %v; want 0, nil, 0 after 100ms", n, err, p[0].Revents, time.Since(start))
		}
	})
	t.Run("close while waiting reports POLLNVAL", func(t *testing.T) {
		g, gfd := newFake(t, s)
		time.AfterFunc(20*time.Millisecond, func() { closeFD(t, s, gfd) })
		p := []unix.PollFd{{Fd: int32(gfd), Events: unix.POLLIN}}
		n, err := s.Poll(p, 5000)
		if n != 1 || err != nil || p[0].Revents != unix.POLLNVAL {
			t.Errorf("Poll = %d, %v, %#x; want 1, nil, POLLNVAL", n, err, p[0].Revents)
		}
		if g.waiters() {
			t.Error("Poll left a waiter on the closed file")
		}
	})
}
