//go:build linux

package sockapi

import (
	"fmt"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"golang.org/x/sys/unix"
)

// pollAPI is the part of API these tests use; *Sockets and Kernel() both
// have it.
type pollAPI interface {
	Socket(domain, typ, proto int) (int, error)
	Bind(fd int, sa unix.Sockaddr) error
	Listen(fd int, backlog int) error
	Accept(fd int) (int, unix.Sockaddr, error)
	Connect(fd int, sa unix.Sockaddr) error
	Read(fd int, p []byte) (int, error)
	Write(fd int, p []byte) (int, error)
	Sendto(fd int, p []byte, flags int, to unix.Sockaddr) error
	Shutdown(fd int, how int) error
	Close(fd int) error
	Getsockname(fd int) (unix.Sockaddr, error)
	SetsockoptLinger(fd, level, opt int, l *unix.Linger) error
	Poll(fds []unix.PollFd, timeout int) (int, error)
	Select(nfd int, r, w, e *unix.FdSet, timeout *unix.Timeval) (int, error)
	EpollCreate1(flag int) (int, error)
	EpollCtl(epfd int, op int, fd int, event *unix.EpollEvent) error
	EpollWait(epfd int, events []unix.EpollEvent, msec int) (int, error)
}

// pollEnv runs a test's calls on one implementation and closes every
// descriptor it opened when the test ends.
type pollEnv struct {
	t   testing.TB
	api pollAPI
	fds map[int]bool
}

// forBoth runs f on the host kernel and on the userspace stack, so each
// expectation is checked against Linux itself in the same run.
func forBoth(t *testing.T, f func(t *testing.T, e *pollEnv)) {
	leakcheck.Check(t)
	for _, name := range []string{"kernel", "ustack"} {
		t.Run(name, func(t *testing.T) {
			leakcheck.Check(t)
			var api pollAPI = Kernel()
			if name == "ustack" {
				api = newTestSockets(t)
			}
			e := &pollEnv{t: t, api: api, fds: map[int]bool{}}
			t.Cleanup(func() {
				for fd := range e.fds {
					e.api.Close(fd)
				}
			})
			f(t, e)
		})
	}
}

func (e *pollEnv) check(what string, err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("%s: %v", what, err)
	}
}

func (e *pollEnv) socket(typ int) int {
	e.t.Helper()
	fd, err := e.api.Socket(unix.AF_INET, typ, 0)
	e.check("socket", err)
	e.fds[fd] = true
	return fd
}

func (e *pollEnv) close(fd int) {
	e.t.Helper()
	e.check(fmt.Sprintf("close(%d)", fd), e.api.Close(fd))
	delete(e.fds, fd)
}

// listen returns a listening TCP socket on 127.0.0.1 and its address.
func (e *pollEnv) listen() (int, unix.Sockaddr) {
	e.t.Helper()
	ln := e.socket(unix.SOCK_STREAM)
	e.check("bind", e.api.Bind(ln, loop4(0)))
	e.check("listen", e.api.Listen(ln, 64))
	sa, err := e.api.Getsockname(ln)
	e.check("getsockname", err)
	return ln, sa
}

// pair returns a connected client and its accepted server side.
func (e *pollEnv) pair() (c, s int) {
	e.t.Helper()
	ln, sa := e.listen()
	c = e.socket(unix.SOCK_STREAM)
	e.check("connect", e.api.Connect(c, sa))
	s, _, err := e.api.Accept(ln)
	e.check("accept", err)
	e.fds[s] = true
	e.close(ln)
	return c, s
}

// revents polls fd for every event without waiting.
func (e *pollEnv) revents(fd int) int16 {
	e.t.Helper()
	p := []unix.PollFd{{Fd: int32(fd), Events: -1}}
	_, err := e.api.Poll(p, 0)
	e.check("poll", err)
	return p[0].Revents
}

// waitFor polls fd until one of events is reported or 2s pass.
func (e *pollEnv) waitFor(fd int, events int16) int16 {
	e.t.Helper()
	p := []unix.PollFd{{Fd: int32(fd), Events: events}}
	n, err := e.api.Poll(p, 2000)
	e.check("poll", err)
	if n != 1 || p[0].Revents&events == 0 {
		e.t.Fatalf("poll(fd %d, %#x, 2s) = %d, revents %#x", fd, events, n, p[0].Revents)
	}
	return p[0].Revents
}

func (e *pollEnv) expect(what string, got, want int16) {
	e.t.Helper()
	if got != want {
		e.t.Errorf("%s: revents %#x, want %#x", what, uint16(got), uint16(want))
	}
}

// Linux's revents for the socket states below, checked on this kernel.
const (
	pIn    = unix.POLLIN | unix.EPOLLRDNORM
	pOut   = unix.POLLOUT | unix.EPOLLWRNORM
	pRdHUp = unix.POLLRDHUP
)

func TestPollSocketStates(t *testing.T) {
	forBoth(t, func(t *testing.T, e *pollEnv) {
		fresh := e.socket(unix.SOCK_STREAM)
		e.expect("fresh TCP socket", e.revents(fresh), pOut|unix.POLLHUP)
		udp := e.socket(unix.SOCK_DGRAM)
		e.expect("fresh UDP socket", e.revents(udp), pOut|unix.EPOLLWRBAND)

		ln, sa := e.listen()
		e.expect("idle listener", e.revents(ln), 0)
		c := e.socket(unix.SOCK_STREAM)
		e.check("connect", e.api.Connect(c, sa))
		e.expect("listener with a pending connection", e.waitFor(ln, unix.POLLIN), unix.POLLIN)
		e.expect("listener with a pending connection", e.revents(ln), pIn)
		s, _, err := e.api.Accept(ln)
		e.check("accept", err)
		e.fds[s] = true
		e.expect("connected", e.revents(c), pOut)
		e.expect("accepted", e.revents(s), pOut)

		e.check("shutdown", e.api.Shutdown(s, unix.SHUT_WR))
		e.waitFor(c, unix.POLLRDHUP)
		e.expect("peer shut down writing (EOF)", e.revents(c), pIn|pOut|pRdHUp)
		e.expect("own write side shut", e.revents(s), pOut)
		e.check("shutdown", e.api.Shutdown(c, unix.SHUT_WR))
		e.waitFor(s, unix.POLLRDHUP)
		// Linux reports POLLHUP as soon as shutdown returns (LAST_ACK);
		// ustack's socket.Readiness drops RDHUP/HUP in LAST_ACK until the
		// peer's ACK closes the connection, so wait for that here.
		e.waitFor(c, unix.POLLHUP)
		e.expect("both directions shut (closer)", e.revents(c), pIn|pOut|pRdHUp|unix.POLLHUP)
		e.expect("both directions shut (peer)", e.revents(s), pIn|pOut|pRdHUp|unix.POLLHUP)

		c2 := e.socket(unix.SOCK_STREAM)
		e.check("connect", e.api.Connect(c2, sa))
		e.expect("own read side shut", func() int16 {
			e.check("shutdown", e.api.Shutdown(c2, unix.SHUT_RD))
			return e.revents(c2)
		}(), pIn|pOut|pRdHUp)
	})
}

func TestPollUDPShutdown(t *testing.T) {
	forBoth(t, func(t *testing.T, e *pollEnv) {
		u := e.socket(unix.SOCK_DGRAM)
		e.check("connect", e.api.Connect(u, loop4(9)))
		e.check("shutdown", e.api.Shutdown(u, unix.SHUT_WR))
		e.expect("UDP write side shut", e.revents(u), pOut|unix.EPOLLWRBAND)
		v := e.socket(unix.SOCK_DGRAM)
		e.check("connect", e.api.Connect(v, loop4(9)))
		e.check("shutdown", e.api.Shutdown(v, unix.SHUT_RD))
		e.expect("UDP read side shut", e.revents(v), pIn|pOut|unix.EPOLLWRBAND|pRdHUp)
		w := e.socket(unix.SOCK_DGRAM)
		e.check("connect", e.api.Connect(w, loop4(9)))
		e.check("shutdown", e.api.Shutdown(w, unix.SHUT_RDWR))
		e.expect("UDP both sides shut", e.revents(w), pIn|pOut|unix.EPOLLWRBAND|pRdHUp|unix.POLLHUP)
		// Linux answers ENOTCONN for an unconnected socket but still
		// records the shutdown (inet_shutdown), which poll shows.
		x := e.socket(unix.SOCK_DGRAM)
		if err := e.api.Shutdown(x, unix.SHUT_RDWR); err != unix.ENOTCONN {
			t.Errorf("shutdown(unconnected UDP) = %v, want ENOTCONN", err)
		}
		e.expect("unconnected UDP shut", e.revents(x), pIn|pOut|unix.EPOLLWRBAND|pRdHUp|unix.POLLHUP)
	})
}

func TestPollSocketReset(t *testing.T) {
	forBoth(t, func(t *testing.T, e *pollEnv) {
		c, s := e.pair()
		e.check("linger", e.api.SetsockoptLinger(s, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}))
		e.close(s)
		e.waitFor(c, unix.POLLERR)
		e.expect("reset by peer", e.revents(c), pIn|pOut|pRdHUp|unix.POLLHUP|unix.POLLERR)
		p := []unix.PollFd{{Fd: int32(c)}}
		if _, err := e.api.Poll(p, 0); err != nil || p[0].Revents != unix.POLLERR|unix.POLLHUP {
			t.Errorf("poll(events 0) after reset = %v, revents %#x; want POLLERR|POLLHUP", err, p[0].Revents)
		}
	})
}

func TestPollSocketConnect(t *testing.T) {
	forBoth(t, func(t *testing.T, e *pollEnv) {
		_, sa := e.listen()
		c := e.socket(unix.SOCK_STREAM | unix.SOCK_NONBLOCK)
		if err := e.api.Connect(c, sa); err != unix.EINPROGRESS && err != nil {
			t.Fatalf("nonblocking connect = %v, want EINPROGRESS", err)
		}
		e.expect("connect completed", e.waitFor(c, unix.POLLOUT), unix.POLLOUT)

		r := e.socket(unix.SOCK_STREAM | unix.SOCK_NONBLOCK)
		if err := e.api.Connect(r, loop4(1)); err != unix.EINPROGRESS && err != unix.ECONNREFUSED {
			t.Fatalf("nonblocking connect to a closed port = %v", err)
		}
		e.waitFor(r, unix.POLLOUT)
		e.expect("connect refused", e.revents(r), pIn|pOut|pRdHUp|unix.POLLHUP|unix.POLLERR)
	})
}

func TestPollSocketCloseWakes(t *testing.T) {
	forBoth(t, func(t *testing.T, e *pollEnv) {
		if _, ok := e.api.(*Sockets); !ok {
			t.Skip("closing a descriptor another thread polls is undefined on Linux")
		}
		c, _ := e.pair()
		time.AfterFunc(20*time.Millisecond, func() { e.api.Close(c) })
		p := []unix.PollFd{{Fd: int32(c), Events: unix.POLLIN}}
		n, err := e.api.Poll(p, 5000)
		delete(e.fds, c)
		if n != 1 || err != nil || p[0].Revents != unix.POLLNVAL {
			t.Errorf("Poll while closed = %d, %v, %#x; want 1, nil, POLLNVAL", n, err, p[0].Revents)
		}
	})
}

func TestSelectSockets(t *testing.T) {
	forBoth(t, func(t *testing.T, e *pollEnv) {
		ln, sa := e.listen()
		c := e.socket(unix.SOCK_STREAM)
		e.check("connect", e.api.Connect(c, sa))
		// gVisor queues the connection on the listener just after
		// connect returns; Linux on loopback before.
		e.waitFor(ln, unix.POLLIN)
		r, w := fdSet(ln, c), fdSet(ln, c)
		n, err := e.api.Select(max(ln, c)+1, r, w, nil, &unix.Timeval{Sec: 2})
		if n != 2 || err != nil || *r != *fdSet(ln) || *w != *fdSet(c) {
			t.Errorf("select = %d, %v, r=%x w=%x; want 2: listener readable, client writable", n, err, r.Bits[0], w.Bits[0])
		}
	})
}

// epollOne waits on ep without blocking and returns the reported events
// keyed by the registration's Fd data.
func (e *pollEnv) epollOne(ep int) map[int32]uint32 {
	e.t.Helper()
	evs := make([]unix.EpollEvent, 8)
	n, err := e.api.EpollWait(ep, evs, 0)
	e.check("epoll_wait", err)
	got := map[int32]uint32{}
	for _, ev := range evs[:n] {
		got[ev.Fd] = ev.Events
	}
	return got
}

func TestEpollSocketsLevelVsEdge(t *testing.T) {
	forBoth(t, func(t *testing.T, e *pollEnv) {
		c, s := e.pair()
		lt, err := e.api.EpollCreate1(0)
		e.check("epoll_create1", err)
		e.fds[lt] = true
		et, err := e.api.EpollCreate1(unix.EPOLL_CLOEXEC)
		e.check("epoll_create1", err)
		e.fds[et] = true
		e.check("ctl", e.api.EpollCtl(lt, unix.EPOLL_CTL_ADD, c, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: 1}))
		e.check("ctl", e.api.EpollCtl(et, unix.EPOLL_CTL_ADD, c, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET, Fd: 2}))
		step := func(what string, wantLT, wantET uint32) {
			t.Helper()
			if got := e.epollOne(lt)[1]; got != wantLT {
				t.Errorf("%s: level-triggered %#x, want %#x", what, got, wantLT)
			}
			if got := e.epollOne(et)[2]; got != wantET {
				t.Errorf("%s: edge-triggered %#x, want %#x", what, got, wantET)
			}
		}
		step("idle", 0, 0)
		_, err = e.api.Write(s, []byte("ab"))
		e.check("write", err)
		e.waitFor(c, unix.POLLIN)
		step("data arrived", unix.EPOLLIN, unix.EPOLLIN)
		step("data still unread", unix.EPOLLIN, 0)
		_, err = e.api.Write(s, []byte("c"))
		e.check("write", err)
		e.waitFor(lt, unix.POLLIN)
		time.Sleep(10 * time.Millisecond) // the kernel's wakeup may trail poll's
		step("more data", unix.EPOLLIN, unix.EPOLLIN)
		_, err = e.api.Read(c, make([]byte, 8))
		e.check("read", err)
		step("drained", 0, 0)
		e.check("shutdown", e.api.Shutdown(s, unix.SHUT_WR))
		e.waitFor(c, unix.POLLRDHUP)
		time.Sleep(10 * time.Millisecond)
		step("peer shut down", unix.EPOLLIN|unix.EPOLLRDHUP, unix.EPOLLIN|unix.EPOLLRDHUP)
		step("still shut down", unix.EPOLLIN|unix.EPOLLRDHUP, 0)
		// Closing the descriptor removes it from both sets.
		e.close(c)
		step("closed", 0, 0)
	})
}

func TestEpoll10000Sockets(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	ep := mustEpoll(t, s)
	const total = 10000
	fds := make([]int, total)
	addrs := make([]unix.Sockaddr, total)
	for i := range fds {
		fd := mustSocket(t, s, unix.AF_INET, unix.SOCK_DGRAM, 0)
		if err := s.Bind(fd, loop4(0)); err != nil {
			t.Fatalf("Bind #%d = %v", i, err)
		}
		addrs[i], _ = s.Getsockname(fd)
		mustCtl(t, s, ep, unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN|unix.EPOLLET, int32(i))
		fds[i] = fd
	}
	if got := waitEvents(t, s, ep, 16, 0); len(got) != 0 {
		t.Fatalf("EpollWait on idle sockets = %s", evString(got))
	}
	tx := mustSocket(t, s, unix.AF_INET, unix.SOCK_DGRAM, 0)
	want := map[int32]bool{0: true, 4321: true, total - 1: true}
	for i := range want {
		if err := s.Sendto(tx, []byte("x"), 0, addrs[i]); err != nil {
			t.Fatalf("Sendto = %v", err)
		}
	}
	got := map[int32]bool{}
	for deadline := time.Now().Add(5 * time.Second); len(got) < len(want) && time.Now().Before(deadline); {
		for _, ev := range waitEvents(t, s, ep, 16, 1000) {
			if ev.Events != unix.EPOLLIN || got[ev.Pad] {
				t.Errorf("event %+v: want one EPOLLIN per socket", ev)
			}
			got[ev.Pad] = true
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("EpollWait reported %v, want %v", got, want)
	}
}

func TestEpollSocketsOneshotAndNesting(t *testing.T) {
	forBoth(t, func(t *testing.T, e *pollEnv) {
		c, s := e.pair()
		ep, err := e.api.EpollCreate1(0)
		e.check("epoll_create1", err)
		e.fds[ep] = true
		outer, err := e.api.EpollCreate1(0)
		e.check("epoll_create1", err)
		e.fds[outer] = true
		e.check("ctl", e.api.EpollCtl(ep, unix.EPOLL_CTL_ADD, c, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT, Fd: 1, Pad: -1}))
		e.check("ctl", e.api.EpollCtl(outer, unix.EPOLL_CTL_ADD, ep, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: 2}))
		if got := e.epollOne(outer); len(got) != 0 {
			t.Errorf("outer epoll before data = %v, want nothing", got)
		}
		_, err = e.api.Write(s, []byte("x"))
		e.check("write", err)
		e.waitFor(outer, unix.POLLIN)
		if got := e.epollOne(outer); got[2] != unix.EPOLLIN {
			t.Errorf("outer epoll after data = %v, want the inner instance readable", got)
		}
		evs := make([]unix.EpollEvent, 4)
		n, err := e.api.EpollWait(ep, evs, 0)
		if n != 1 || err != nil || evs[0] != (unix.EpollEvent{Events: unix.EPOLLIN, Fd: 1, Pad: -1}) {
			t.Errorf("epoll_wait = %d, %v, %+v; want the oneshot event with its data", n, err, evs[:max(n, 0)])
		}
		_, err = e.api.Write(s, []byte("y"))
		e.check("write", err)
		e.check("shutdown", e.api.Shutdown(s, unix.SHUT_WR))
		e.waitFor(c, unix.POLLRDHUP)
		if got := e.epollOne(ep); len(got) != 0 {
			t.Errorf("disarmed oneshot = %v, want nothing", got)
		}
		if got := e.epollOne(outer); len(got) != 0 {
			t.Errorf("outer epoll over a disarmed item = %v, want nothing", got)
		}
		e.check("ctl", e.api.EpollCtl(ep, unix.EPOLL_CTL_MOD, c, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: 3}))
		if got := e.epollOne(ep); got[3] != unix.EPOLLIN|unix.EPOLLRDHUP {
			t.Errorf("re-armed = %v, want EPOLLIN|EPOLLRDHUP", got)
		}
		// Closing the inner instance removes it from the outer one.
		e.close(ep)
		if got := e.epollOne(outer); len(got) != 0 {
			t.Errorf("outer epoll after closing the inner = %v, want nothing", got)
		}
	})
}
