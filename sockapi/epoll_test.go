//go:build linux

package sockapi

import (
	"fmt"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/waiter"
)

// mustEpoll creates an epoll instance or fails the test.
func mustEpoll(t testing.TB, s *Sockets) int {
	t.Helper()
	ep, err := s.EpollCreate1(0)
	if err != nil {
		t.Fatalf("EpollCreate1(0) = %v", err)
	}
	return ep
}

// mustCtl runs EpollCtl with data (fd, pad) or fails the test.
func mustCtl(t testing.TB, s *Sockets, ep, op, fd int, events uint32, pad int32) {
	t.Helper()
	ev := &unix.EpollEvent{Events: events, Fd: int32(fd), Pad: pad}
	if err := s.EpollCtl(ep, op, fd, ev); err != nil {
		t.Fatalf("EpollCtl(%d, %d, %d, %#x) = %v", ep, op, fd, events, err)
	}
}

// waitEvents calls EpollWait and returns the events it reported.
func waitEvents(t testing.TB, s *Sockets, ep, max, msec int) []unix.EpollEvent {
	t.Helper()
	evs := make([]unix.EpollEvent, max)
	n, err := s.EpollWait(ep, evs, msec)
	if err != nil {
		t.Fatalf("EpollWait(%d, %d, %d) = %d, %v", ep, max, msec, n, err)
	}
	return evs[:n]
}

func evString(evs []unix.EpollEvent) string {
	return fmt.Sprintf("%+v", evs)
}

func TestEpollCtlErrors(t *testing.T) {
	leakcheck.Check(t)
	s := newFakeSockets(t)
	ep := mustEpoll(t, s)
	_, fd := newFake(t, s)
	_, fd2 := newFake(t, s)
	mustCtl(t, s, ep, unix.EPOLL_CTL_ADD, fd2, unix.EPOLLOUT|unix.EPOLLEXCLUSIVE, 0)
	ep2 := mustEpoll(t, s)
	in := &unix.EpollEvent{Events: unix.EPOLLIN}
	tests := []struct {
		name      string
		epfd, op  int
		fd        int
		ev        *unix.EpollEvent
		want      error
		wantAfter error // a second identical call
	}{
		{"nil event ADD", ep, unix.EPOLL_CTL_ADD, fd, nil, unix.EFAULT, nil},
		{"nil event before EBADF", 99, unix.EPOLL_CTL_MOD, 99, nil, unix.EFAULT, nil},
		{"closed epfd", 99, unix.EPOLL_CTL_ADD, fd, in, unix.EBADF, nil},
		{"closed fd", ep, unix.EPOLL_CTL_ADD, 99, in, unix.EBADF, nil},
		{"unknown op, closed fd", ep, 7, 99, in, unix.EBADF, nil},
		{"epfd not epoll", fd, unix.EPOLL_CTL_ADD, fd2, in, unix.EINVAL, nil},
		{"epfd is fd", ep, unix.EPOLL_CTL_ADD, ep, in, unix.EINVAL, nil},
		{"unknown op", ep, 7, fd, in, unix.EINVAL, nil},
		{"DEL absent", ep, unix.EPOLL_CTL_DEL, fd, nil, unix.ENOENT, nil},
		{"MOD absent", ep, unix.EPOLL_CTL_MOD, fd, in, unix.ENOENT, nil},
		{"ADD twice", ep, unix.EPOLL_CTL_ADD, fd, in, nil, unix.EEXIST},
		{"MOD exclusive item", ep, unix.EPOLL_CTL_MOD, fd2, in, unix.EINVAL, nil},
		{"MOD with EPOLLEXCLUSIVE", ep, unix.EPOLL_CTL_MOD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE}, unix.EINVAL, nil},
		{"EPOLLEXCLUSIVE with RDHUP", ep2, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLRDHUP | unix.EPOLLEXCLUSIVE}, unix.EINVAL, nil},
		{"EPOLLEXCLUSIVE on epoll", ep2, unix.EPOLL_CTL_ADD, ep, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE}, unix.EINVAL, nil},
		{"DEL nil event", ep, unix.EPOLL_CTL_DEL, fd, nil, nil, unix.ENOENT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.EpollCtl(tt.epfd, tt.op, tt.fd, tt.ev); err != tt.want {
				t.Errorf("EpollCtl(%d, %d, %d) = %v, want %v", tt.epfd, tt.op, tt.fd, err, tt.want)
			}
			if tt.wantAfter != nil {
				if err := s.EpollCtl(tt.epfd, tt.op, tt.fd, tt.ev); err != tt.wantAfter {
					t.Errorf("EpollCtl(%d, %d, %d) again = %v, want %v", tt.epfd, tt.op, tt.fd, err, tt.wantAfter)
				}
			}
		})
	}
}

func TestEpollCreateWaitErrors(t *testing.T) {
	leakcheck.Check(t)
	s := newFakeSockets(t)
	if fd, err := s.EpollCreate1(1); fd != -1 || err != unix.EINVAL {
		t.Errorf("EpollCreate1(1) = %d, %v; want -1, EINVAL", fd, err)
	}
	ep, err := s.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatalf("EpollCreate1(EPOLL_CLOEXEC) = %v", err)
	}
	plain := mustEpoll(t, s)
	for _, c := range []struct{ fd, want int }{{ep, unix.FD_CLOEXEC}, {plain, 0}} {
		if got, err := s.Fcntl(c.fd, unix.F_GETFD, 0); got != c.want || err != nil {
			t.Errorf("Fcntl(%d, F_GETFD) = %d, %v; want %d", c.fd, got, err, c.want)
		}
	}
	_, fd := newFake(t, s)
	evs := make([]unix.EpollEvent, 1)
	tests := []struct {
		name string
		epfd int
		evs  []unix.EpollEvent
		want error
	}{
		{"no room", ep, nil, unix.EINVAL},
		{"no room before EBADF", 99, evs[:0], unix.EINVAL},
		{"closed epfd", 99, evs, unix.EBADF},
		{"not epoll", fd, evs, unix.EINVAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n, err := s.EpollWait(tt.epfd, tt.evs, 0); n != -1 || err != tt.want {
				t.Errorf("EpollWait(%d, len %d) = %d, %v; want -1, %v", tt.epfd, len(tt.evs), n, err, tt.want)
			}
		})
	}
}

func TestEpollLevelTriggered(t *testing.T) {
	leakcheck.Check(t)
	s := newFakeSockets(t)
	ep := mustEpoll(t, s)
	f, fd := newFake(t, s)
	f.set(waiter.ReadableEvents | waiter.WritableEvents)
	mustCtl(t, s, ep, unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN, 77)
	want := fmt.Sprintf("[{Events:1 Fd:%d Pad:77}]", fd)
	for i := 0; i < 3; i++ {
		if got := evString(waitEvents(t, s, ep, 4, 0)); got != want {
			t.Fatalf("EpollWait #%d = %s, want %s", i, got, want)
		}
	}
	f.set(waiter.WritableEvents)
	if got := waitEvents(t, s, ep, 4, 0); len(got) != 0 {
		t.Errorf("EpollWait after readable cleared = %s, want none", evString(got))
	}
	// MOD changes events and data; the item is ready at once.
	mustCtl(t, s, ep, unix.EPOLL_CTL_MOD, fd, unix.EPOLLOUT|unix.EPOLLRDNORM, -5)
	// Only asked-for bits come back: EPOLLOUT, not EPOLLWRNORM.
	want = fmt.Sprintf("[{Events:4 Fd:%d Pad:-5}]", fd)
	if got := evString(waitEvents(t, s, ep, 4, 0)); got != want {
		t.Errorf("EpollWait after MOD = %s, want %s", got, want)
	}
	// Errors and hang-ups are reported even when not registered.
	mustCtl(t, s, ep, unix.EPOLL_CTL_MOD, fd, 0, 1)
	f.set(waiter.EventHUp | waiter.EventErr | waiter.ReadableEvents)
	want = fmt.Sprintf("[{Events:24 Fd:%d Pad:1}]", fd)
	if got := evString(waitEvents(t, s, ep, 4, 0)); got != want {
		t.Errorf("EpollWait with events 0 = %s, want %s", got, want)
	}
	mustCtl(t, s, ep, unix.EPOLL_CTL_DEL, fd, 0, 0)
	if got := waitEvents(t, s, ep, 4, 0); len(got) != 0 || f.waiters() {
		t.Errorf("EpollWait after DEL = %s (waiters left: %v), want none", evString(got), f.waiters())
	}
}

func TestEpollEdgeTriggered(t *testing.T) {
	leakcheck.Check(t)
	s := newFakeSockets(t)
	ep := mustEpoll(t, s)
	f, fd := newFake(t, s)
	f.set(waiter.ReadableEvents)
	mustCtl(t, s, ep, unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN|unix.EPOLLET, 0)
	if got := waitEvents(t, s, ep, 4, 0); len(got) != 1 || got[0].Events != unix.EPOLLIN {
		t.Fatalf("first EpollWait = %s, want EPOLLIN", evString(got))
	}
	if got := waitEvents(t, s, ep, 4, 0); len(got) != 0 {
		t.Fatalf("EpollWait with no new event = %s, want none (edge-triggered)", evString(got))
	}
	f.set(waiter.ReadableEvents) // more data: a new edge
	if got := waitEvents(t, s, ep, 4, 0); len(got) != 1 {
		t.Fatalf("EpollWait after new event = %s, want one", evString(got))
	}
	// An edge for events not registered and not ready reports nothing.
	f.set(waiter.WritableEvents)
	if got := waitEvents(t, s, ep, 4, 0); len(got) != 0 {
		t.Errorf("EpollWait after unregistered event = %s, want none", evString(got))
	}
}

func TestEpollOneshot(t *testing.T) {
	leakcheck.Check(t)
	s := newFakeSockets(t)
	ep := mustEpoll(t, s)
	f, fd := newFake(t, s)
	f.set(waiter.ReadableEvents)
	mustCtl(t, s, ep, unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN|unix.EPOLLONESHOT, 1)
	if got := waitEvents(t, s, ep, 4, 0); len(got) != 1 || got[0].Pad != 1 {
		t.Fatalf("first EpollWait = %s, want one", evString(got))
	}
	f.set(waiter.ReadableEvents | waiter.EventHUp)
	if got := waitEvents(t, s, ep, 4, 20); len(got) != 0 {
		t.Fatalf("EpollWait on disarmed item = %s, want none, not even HUP", evString(got))
	}
	mustCtl(t, s, ep, unix.EPOLL_CTL_MOD, fd, unix.EPOLLIN|unix.EPOLLONESHOT, 2)
	want := fmt.Sprintf("[{Events:17 Fd:%d Pad:2}]", fd)
	if got := evString(waitEvents(t, s, ep, 4, 0)); got != want {
		t.Errorf("EpollWait after re-arming MOD = %s, want %s", got, want)
	}
	if err := s.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{}); err != unix.EEXIST {
		t.Errorf("ADD of a disarmed item = %v, want EEXIST", err)
	}
}

func TestEpollRoundRobin(t *testing.T) {
	leakcheck.Check(t)
	s := newFakeSockets(t)
	ep := mustEpoll(t, s)
	var fds []int
	for i := 0; i < 3; i++ {
		f, fd := newFake(t, s)
		f.set(waiter.ReadableEvents)
		mustCtl(t, s, ep, unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN, int32(i))
		fds = append(fds, fd)
	}
	// epoll_wait(2): successive calls round robin through more ready
	// descriptors than fit.
	seen := map[int32]int{}
	for i := 0; i < 3; i++ {
		for _, ev := range waitEvents(t, s, ep, 2, 0) {
			seen[ev.Pad]++
		}
	}
	for i := range fds {
		if seen[int32(i)] != 2 {
			t.Errorf("descriptor %d reported %d times in 3 waits of 2, want 2 (%v)", i, seen[int32(i)], seen)
		}
	}
}

func TestEpollCloseRemoves(t *testing.T) {
	leakcheck.Check(t)
	s := newFakeSockets(t)
	ep := mustEpoll(t, s)
	ep2 := mustEpoll(t, s)
	f, fd := newFake(t, s)
	f.set(waiter.ReadableEvents)
	mustCtl(t, s, ep, unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN, 1)
	mustCtl(t, s, ep2, unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN|unix.EPOLLET, 1)
	closeFD(t, s, fd)
	if f.waiters() {
		t.Error("closed descriptor still has epoll waiters")
	}
	for _, e := range []int{ep, ep2} {
		if got := waitEvents(t, s, e, 4, 0); len(got) != 0 {
			t.Errorf("EpollWait(%d) after close = %s, want none", e, evString(got))
		}
	}
	// The number is free again: a new file under it can be added.
	g, gfd := newFake(t, s)
	if gfd != fd {
		t.Fatalf("new descriptor %d, want reused %d", gfd, fd)
	}
	g.set(waiter.WritableEvents)
	mustCtl(t, s, ep, unix.EPOLL_CTL_ADD, gfd, unix.EPOLLOUT, 2)
	if got := waitEvents(t, s, ep, 4, 0); len(got) != 1 || got[0].Pad != 2 {
		t.Errorf("EpollWait on reused number = %s, want the new registration", evString(got))
	}
	// Closing the epoll instance unregisters from every file.
	closeFD(t, s, ep)
	if g.waiters() {
		t.Error("closed epoll instance left waiters on its files")
	}
}

func TestEpollWaitBlocks(t *testing.T) {
	leakcheck.Check(t)
	s := newFakeSockets(t)
	ep := mustEpoll(t, s)
	f, fd := newFake(t, s)
	mustCtl(t, s, ep, unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN, 0)
	t.Run("wakes on event", func(t *testing.T) {
		time.AfterFunc(20*time.Millisecond, func() { f.set(waiter.ReadableEvents) })
		if got := waitEvents(t, s, ep, 4, -1); len(got) != 1 {
			t.Errorf("EpollWait = %s, want one", evString(got))
		}
		f.set(0)
	})
	t.Run("times out", func(t *testing.T) {
		start := time.Now()
		if got := waitEvents(t, s, ep, 4, 30); len(got) != 0 || time.Since(start) < 30*time.Millisecond {
			t.Errorf("EpollWait = %s after %v, want none after 30ms", evString(got), time.Since(start))
		}
	})
	t.Run("close of epfd wakes with EBADF", func(t *testing.T) {
		ep2 := mustEpoll(t, s)
		time.AfterFunc(20*time.Millisecond, func() { closeFD(t, s, ep2) })
		if n, err := s.EpollWait(ep2, make([]unix.EpollEvent, 1), -1); n != -1 || err != unix.EBADF {
			t.Errorf("EpollWait on closed epfd = %d, %v; want -1, EBADF", n, err)
		}
	})
}

func TestEpollNested(t *testing.T) {
	leakcheck.Check(t)
	s := newFakeSockets(t)
	inner := mustEpoll(t, s)
	outer := mustEpoll(t, s)
	f, fd := newFake(t, s)
	mustCtl(t, s, inner, unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN, 0)
	mustCtl(t, s, outer, unix.EPOLL_CTL_ADD, inner, unix.EPOLLIN, 9)
	p := []unix.PollFd{{Fd: int32(inner), Events: unix.POLLIN | unix.POLLOUT}}
	if n, _ := s.Poll(p, 0); n != 0 {
		t.Errorf("Poll(idle epoll) = %d, %#x; want 0", n, p[0].Revents)
	}
	time.AfterFunc(20*time.Millisecond, func() { f.set(waiter.ReadableEvents) })
	got := waitEvents(t, s, outer, 4, 5000)
	if want := fmt.Sprintf("[{Events:1 Fd:%d Pad:9}]", inner); evString(got) != want {
		t.Errorf("EpollWait(outer) = %s, want %s", evString(got), want)
	}
	if n, _ := s.Poll(p, 0); n != 1 || p[0].Revents != unix.POLLIN {
		t.Errorf("Poll(ready epoll) = %d, %#x; want 1, POLLIN", n, p[0].Revents)
	}
	// Once the inner file is no longer ready, neither is the inner
	// instance.
	f.set(0)
	if got := waitEvents(t, s, outer, 4, 0); len(got) != 0 {
		t.Errorf("EpollWait(outer) after inner idle = %s, want none", evString(got))
	}
	if err := s.EpollCtl(inner, unix.EPOLL_CTL_ADD, outer, &unix.EpollEvent{Events: unix.EPOLLIN}); err != unix.ELOOP {
		t.Errorf("EpollCtl adding a cycle = %v, want ELOOP", err)
	}
}

func TestEpollNestingDepth(t *testing.T) {
	leakcheck.Check(t)
	s := newFakeSockets(t)
	// Linux allows a chain of 5 instances (4 nestings) and refuses a 6th,
	// measured from both ends of the new link.
	chain := []int{mustEpoll(t, s)}
	for i := 1; i < 5; i++ {
		e := mustEpoll(t, s)
		mustCtl(t, s, e, unix.EPOLL_CTL_ADD, chain[len(chain)-1], unix.EPOLLIN, 0)
		chain = append(chain, e)
	}
	top := mustEpoll(t, s)
	if err := s.EpollCtl(top, unix.EPOLL_CTL_ADD, chain[4], &unix.EpollEvent{Events: unix.EPOLLIN}); err != unix.ELOOP {
		t.Errorf("6th level = %v, want ELOOP", err)
	}
	bottom := mustEpoll(t, s)
	if err := s.EpollCtl(chain[0], unix.EPOLL_CTL_ADD, bottom, &unix.EpollEvent{Events: unix.EPOLLIN}); err != unix.ELOOP {
		t.Errorf("new level below = %v, want ELOOP", err)
	}
	// Removing a link makes room again.
	mustCtl(t, s, chain[4], unix.EPOLL_CTL_DEL, chain[3], 0, 0)
	mustCtl(t, s, top, unix.EPOLL_CTL_ADD, chain[3], unix.EPOLLIN, 0)
}

func TestEpollScalesWithReady(t *testing.T) {
	leakcheck.Check(t)
	s := newFakeSockets(t)
	ep := mustEpoll(t, s)
	const total = 10000
	files := make([]*fakeFile, total)
	for i := range files {
		f, fd := newFake(t, s)
		mustCtl(t, s, ep, unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN|unix.EPOLLOUT, int32(i))
		files[i] = f
	}
	for _, f := range files {
		f.polls.Store(0)
	}
	ready := []int{3, 5000, 9999}
	for _, i := range ready {
		files[i].set(waiter.ReadableEvents)
	}
	got := waitEvents(t, s, ep, 16, 0)
	if len(got) != len(ready) {
		t.Fatalf("EpollWait = %d events, want %d", len(got), len(ready))
	}
	var polls int64
	for _, f := range files {
		polls += f.polls.Load()
	}
	// Each ready file is looked at once; the 9997 idle ones never.
	if polls != int64(len(ready)) {
		t.Errorf("EpollWait polled files %d times, want %d", polls, len(ready))
	}
}

// TestEpollConcurrent races waits, registrations, readiness changes and
// closes, for the race detector and to catch lock-order deadlocks.
func TestEpollConcurrent(t *testing.T) {
	leakcheck.Check(t)
	s := newFakeSockets(t)
	ep := mustEpoll(t, s)
	inner := mustEpoll(t, s)
	mustCtl(t, s, ep, unix.EPOLL_CTL_ADD, inner, unix.EPOLLIN, 0)
	const n = 8
	files := make([]*fakeFile, n)
	fds := make([]int, n)
	for i := range files {
		files[i], fds[i] = newFake(t, s)
	}
	stop := make(chan struct{})
	const loops = 5
	done := make(chan struct{}, loops)
	loop := func(body func(i int)) {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
					body(i)
				}
			}
		}()
	}
	loop(func(i int) {
		files[i%n].set(waiter.EventMask(i) & (waiter.ReadableEvents | waiter.WritableEvents | waiter.EventHUp))
	})
	loop(func(i int) {
		e := []int{ep, inner}[i%2]
		flags := []uint32{0, unix.EPOLLET, unix.EPOLLONESHOT}[i%3]
		_ = s.EpollCtl(e, 1+i%3, fds[i%n], &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | flags})
	})
	loop(func(int) { _, _ = s.EpollWait(ep, make([]unix.EpollEvent, 4), 1) })
	loop(func(int) { _, _ = s.Poll([]unix.PollFd{{Fd: int32(inner), Events: unix.POLLIN}}, 1) })
	loop(func(int) {
		f, fd := newFake(t, s)
		_ = s.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN})
		_ = s.EpollCtl(inner, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET})
		f.set(waiter.ReadableEvents)
		closeFD(t, s, fd)
		if f.waiters() {
			t.Error("closed descriptor still has waiters")
		}
	})
	time.Sleep(300 * time.Millisecond)
	close(stop)
	for i := 0; i < loops; i++ {
		<-done
	}
}
