//go:build linux

package sockapi

import (
	"golang.org/x/sys/unix"
)

// Scenarios for poll(2), select(2) and epoll(7) readiness.

const pollAll = unix.POLLIN | unix.POLLPRI | unix.POLLOUT | unix.POLLRDHUP

func pollScenarios() []scenario {
	out := both("poll/fresh-tcp-socket", func(r *rec, f fam) {
		fd := r.Socket(f.domain, unix.SOCK_STREAM, 0)
		r.Poll(0, pq{fd, pollAll})
	})
	out = append(out, both("poll/listener-pending", func(r *rec, f fam) {
		ln, addr := r.listener(f)
		r.Poll(0, pq{ln, pollAll})
		c := r.Socket(f.domain, unix.SOCK_STREAM, 0)
		r.Connect(c, addr)
		r.waitFor(ln, unix.POLLIN)
		r.Poll(0, pq{ln, pollAll})
		r.Accept(ln)
		r.Poll(0, pq{ln, pollAll})
	})...)
	out = append(out, both("poll/connected-lifecycle", func(r *rec, f fam) {
		_, c, s := r.pair(f)
		r.Poll(0, pq{c, pollAll}, pq{s, pollAll})
		r.Write(c, []byte("data"))
		r.waitFor(s, unix.POLLIN)
		r.Poll(0, pq{s, pollAll})
		r.Read(s, 16)
		r.Poll(0, pq{s, pollAll})
		r.Shutdown(c, unix.SHUT_WR)
		r.waitFor(s, unix.POLLRDHUP)
		r.Poll(0, pq{c, pollAll}, pq{s, pollAll})
		r.Shutdown(s, unix.SHUT_WR)
		r.waitFor(c, unix.POLLHUP)
		r.waitFor(s, unix.POLLHUP)
		r.Poll(0, pq{c, pollAll}, pq{s, pollAll})
	})...)
	out = append(out,
		sc("poll/reset-connection", func(r *rec) {
			_, c, s := r.pair(v4)
			r.SetLinger(s, 1, 0)
			r.Close(s)
			r.waitFor(c, unix.POLLERR)
			r.Poll(0, pq{c, pollAll})
			r.Poll(0, pq{c, 0})
			r.GetInt(c, unix.SOL_SOCKET, unix.SO_ERROR)
			r.Poll(0, pq{c, pollAll})
		}),
		sc("poll/own-shutdown-wr", func(r *rec) {
			_, c, _ := r.pair(v4)
			r.Shutdown(c, unix.SHUT_WR)
			r.Poll(0, pq{c, pollAll})
		}),
		sc("poll/closed-fd-pollnval", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			other := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.Close(fd)
			r.Poll(0, pq{fd, unix.POLLIN}, pq{other, unix.POLLOUT})
		}),
		sc("poll/negative-fd-ignored", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.Poll(0, pq{-1, unix.POLLIN}, pq{fd, unix.POLLOUT})
		}),
		sc("poll/timeout-expires", func(r *rec) {
			fd, _ := r.udp(v4)
			r.Poll(30, pq{fd, unix.POLLIN})
			r.Poll(0)
		}),
		sc("poll/blocks-until-data", func(r *rec) {
			a, _ := r.udp(v4)
			b, ba := r.udp(v4)
			done := make(chan struct{})
			go func() {
				defer close(done)
				settle()
				r.api.Sendto(a, []byte("wake"), 0, ba)
			}()
			r.Poll(5000, pq{b, unix.POLLIN})
			<-done
		}),
		sc("poll/connect-refused", func(r *rec) {
			c := r.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
			r.Connect(c, v4.lo(r.unusedPort(v4, unix.SOCK_STREAM)))
			r.waitFor(c, unix.POLLHUP)
			r.Poll(0, pq{c, pollAll})
		}),
		sc("poll/connect-in-progress-not-writable", func(r *rec) {
			_, addr := r.fullListener()
			b := r.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
			r.Connect(b, addr)
			r.Poll(0, pq{b, pollAll})
		}),
		sc("poll/same-fd-twice", func(r *rec) {
			fd, _ := r.udp(v4)
			r.Poll(0, pq{fd, unix.POLLIN}, pq{fd, unix.POLLOUT})
		}),
		sc("select/readable-writable", func(r *rec) {
			ln, c, s := r.pair(v4)
			tv := unix.Timeval{}
			r.Select([]int{ln, c, s}, []int{c, s}, []int{c, s}, &tv)
			r.Write(c, []byte("x"))
			r.waitFor(s, unix.POLLIN)
			tv = unix.Timeval{}
			r.Select([]int{ln, c, s}, []int{c, s}, nil, &tv)
		}),
		sc("select/listener-pending", func(r *rec) {
			ln, addr := r.listener(v4)
			c := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Connect(c, addr)
			tv := unix.Timeval{Sec: 5}
			r.Select([]int{ln}, nil, nil, &tv)
		}),
		sc("select/timeout", func(r *rec) {
			fd, _ := r.udp(v4)
			tv := unix.Timeval{Usec: 30000}
			r.Select([]int{fd}, nil, nil, &tv)
			r.logf("timeout left: %d.%06d", tv.Sec, tv.Usec)
		}),
		sc("select/closed-fd-ebadf", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			other := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.Close(fd)
			tv := unix.Timeval{}
			r.Select([]int{other, fd}, nil, nil, &tv)
		}),
		sc("select/negative-nfd", func(r *rec) {
			tv := unix.Timeval{}
			r.SelectN(-1, nil, nil, nil, &tv)
		}),
		sc("select/bad-timeout", func(r *rec) {
			fd, _ := r.udp(v4)
			tv := unix.Timeval{Sec: -1}
			r.Select([]int{fd}, nil, nil, &tv)
		}),
		sc("select/error-and-eof", func(r *rec) {
			_, c, s := r.pair(v4)
			r.SetLinger(s, 1, 0)
			r.Close(s)
			r.waitFor(c, unix.POLLERR)
			tv := unix.Timeval{}
			r.Select([]int{c}, []int{c}, []int{c}, &tv)
		}),
	)
	return out
}

func epollScenarios() []scenario {
	in := uint32(unix.EPOLLIN)
	return []scenario{
		sc("epoll/create-flags", func(r *rec) {
			r.EpollCreate1(0)
			r.EpollCreate1(unix.EPOLL_CLOEXEC)
			r.EpollCreate1(1)
		}),
		sc("epoll/ctl-errors", func(r *rec) {
			ep := r.EpollCreate1(0)
			fd := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.EpollCtl(ep, unix.EPOLL_CTL_MOD, fd, in)
			r.EpollCtl(ep, unix.EPOLL_CTL_DEL, fd, 0)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, in)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, in)
			r.EpollCtl(ep, 99, fd, in)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, ep, in)
			r.EpollCtl(fd, unix.EPOLL_CTL_ADD, ep, in)
			r.EpollCtl(ep, unix.EPOLL_CTL_MOD, fd, unix.EPOLLOUT)
			r.EpollCtl(ep, unix.EPOLL_CTL_DEL, fd, 0)
			r.EpollCtl(ep, unix.EPOLL_CTL_DEL, fd, 0)
		}),
		sc("epoll/closed-descriptors", func(r *rec) {
			ep := r.EpollCreate1(0)
			fd := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.Close(fd)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, in)
			r.Close(ep)
			r.EpollWait(ep, 4, 0)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, in)
		}),
		sc("epoll/wait-bad-args", func(r *rec) {
			ep := r.EpollCreate1(0)
			r.EpollWait(ep, 0, 0)
			fd := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.EpollWait(fd, 4, 0)
		}),
		sc("epoll/level-triggered", func(r *rec) {
			ep := r.EpollCreate1(0)
			a, _ := r.udp(v4)
			b, ba := r.udp(v4)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, b, in)
			r.EpollWait(ep, 4, 0)
			r.Sendto(a, []byte("lt"), 0, ba)
			r.EpollWait(ep, 4, 5000)
			r.EpollWait(ep, 4, 0)
			r.Recv(b, 4, 0)
			r.EpollWait(ep, 4, 0)
		}),
		sc("epoll/edge-triggered", func(r *rec) {
			ep := r.EpollCreate1(0)
			_, c, s := r.pair(v4)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, s, in|unix.EPOLLET)
			r.Write(c, []byte("one"))
			r.EpollWait(ep, 4, 5000)
			r.EpollWait(ep, 4, 0)
			r.Write(c, []byte("two"))
			r.EpollWait(ep, 4, 5000)
			r.EpollWait(ep, 4, 0)
			r.Read(s, 16)
		}),
		sc("epoll/oneshot", func(r *rec) {
			ep := r.EpollCreate1(0)
			a, _ := r.udp(v4)
			b, ba := r.udp(v4)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, b, in|unix.EPOLLONESHOT)
			r.Sendto(a, []byte("1"), 0, ba)
			r.EpollWait(ep, 4, 5000)
			r.EpollWait(ep, 4, 0)
			r.Sendto(a, []byte("2"), 0, ba)
			settle()
			r.EpollWait(ep, 4, 0)
			r.EpollCtl(ep, unix.EPOLL_CTL_MOD, b, in|unix.EPOLLONESHOT)
			r.EpollWait(ep, 4, 0)
			r.EpollWait(ep, 4, 0)
		}),
		sc("epoll/out-and-hup-events", func(r *rec) {
			ep := r.EpollCreate1(0)
			_, c, s := r.pair(v4)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, c, unix.EPOLLIN|unix.EPOLLOUT|unix.EPOLLRDHUP)
			r.EpollWait(ep, 4, 0)
			r.Shutdown(s, unix.SHUT_WR)
			r.waitFor(c, unix.POLLRDHUP)
			// After waitFor, a timeout rather than 0: gVisor updates the
			// socket's state a moment before it notifies waiters, so poll
			// can see an event the epoll ready list gets microseconds
			// later (README, "Timing on loopback"). A lost notification
			// still fails: the wait then times out with no events.
			r.EpollWait(ep, 4, 1000)
			r.SetLinger(s, 1, 0)
			r.Close(s)
			r.waitFor(c, unix.POLLERR)
			r.EpollWait(ep, 4, 1000)
		}),
		sc("epoll/err-hup-always-reported", func(r *rec) {
			ep := r.EpollCreate1(0)
			_, c, s := r.pair(v4)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, c, 0)
			r.EpollWait(ep, 4, 0)
			r.SetLinger(s, 1, 0)
			r.Close(s)
			r.waitFor(c, unix.POLLERR)
			r.EpollWait(ep, 4, 1000) // a timeout after waitFor: see out-and-hup-events
		}),
		sc("epoll/listener", func(r *rec) {
			ep := r.EpollCreate1(0)
			ln, addr := r.listener(v4)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, ln, in)
			r.EpollWait(ep, 4, 0)
			c := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Connect(c, addr)
			r.EpollWait(ep, 4, 5000)
			r.Accept(ln)
			r.EpollWait(ep, 4, 0)
		}),
		sc("epoll/close-removes-registration", func(r *rec) {
			ep := r.EpollCreate1(0)
			a, _ := r.udp(v4)
			b, ba := r.udp(v4)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, b, in)
			r.Sendto(a, []byte("x"), 0, ba)
			r.waitFor(b, unix.POLLIN)
			r.Close(b)
			r.EpollWait(ep, 4, 0)
			n := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0) // reuses b's number
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, n, unix.EPOLLOUT)
			r.EpollWait(ep, 4, 0)
		}),
		sc("epoll/maxevents-limits", func(r *rec) {
			ep := r.EpollCreate1(0)
			var fds []int
			for i := 0; i < 3; i++ {
				fd := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
				r.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, unix.EPOLLOUT)
				fds = append(fds, fd)
			}
			n := r.EpollWait(ep, 2, 0)
			r.logf("returned %d of 3", n)
			r.EpollWait(ep, 8, 0)
		}),
		sc("epoll/timeout", func(r *rec) {
			ep := r.EpollCreate1(0)
			b, _ := r.udp(v4)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, b, in)
			r.EpollWait(ep, 4, 30)
		}),
		sc("epoll/blocks-until-ready", func(r *rec) {
			ep := r.EpollCreate1(0)
			a, _ := r.udp(v4)
			b, ba := r.udp(v4)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, b, in)
			done := make(chan struct{})
			go func() {
				defer close(done)
				settle()
				r.api.Sendto(a, []byte("wake"), 0, ba)
			}()
			r.EpollWait(ep, 4, 5000)
			<-done
		}),
		sc("epoll/poll-on-epoll-fd", func(r *rec) {
			ep := r.EpollCreate1(0)
			a, _ := r.udp(v4)
			b, ba := r.udp(v4)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, b, in)
			r.Poll(0, pq{ep, unix.POLLIN | unix.POLLOUT})
			r.Sendto(a, []byte("x"), 0, ba)
			r.waitFor(b, unix.POLLIN)
			r.Poll(0, pq{ep, unix.POLLIN | unix.POLLOUT})
		}),
		sc("epoll/nested", func(r *rec) {
			outer := r.EpollCreate1(0)
			inner := r.EpollCreate1(0)
			a, _ := r.udp(v4)
			b, ba := r.udp(v4)
			r.EpollCtl(inner, unix.EPOLL_CTL_ADD, b, in)
			r.EpollCtl(outer, unix.EPOLL_CTL_ADD, inner, in)
			r.EpollWait(outer, 4, 0)
			r.Sendto(a, []byte("x"), 0, ba)
			r.EpollWait(outer, 4, 5000)
			r.EpollWait(inner, 4, 0)
		}),
		sc("epoll/socket-calls-on-epoll-fd", func(r *rec) {
			ep := r.EpollCreate1(0)
			r.Bind(ep, v4.lo(0))
			r.Listen(ep, 1)
			r.Connect(ep, v4.lo(1))
			r.Accept(ep)
			r.Read(ep, 4)
			r.Write(ep, []byte("x"))
			r.Recv(ep, 4, 0)
			r.Send(ep, []byte("x"), 0)
			r.Shutdown(ep, unix.SHUT_RDWR)
			r.Getsockname(ep)
			r.GetInt(ep, unix.SOL_SOCKET, unix.SO_TYPE)
			r.SetInt(ep, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		}),
		sc("epoll/modify-interest", func(r *rec) {
			ep := r.EpollCreate1(0)
			b, _ := r.udp(v4)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, b, in)
			r.EpollWait(ep, 4, 0)
			r.EpollCtl(ep, unix.EPOLL_CTL_MOD, b, unix.EPOLLOUT)
			r.EpollWait(ep, 4, 0)
			r.EpollCtl(ep, unix.EPOLL_CTL_DEL, b, 0)
			r.EpollWait(ep, 4, 0)
		}),
	}
}

func fcntlScenarios() []scenario {
	return []scenario{
		sc("fcntl/getfl-setfl", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Fcntl(fd, unix.F_GETFL, 0)
			r.Fcntl(fd, unix.F_SETFL, unix.O_NONBLOCK)
			r.Fcntl(fd, unix.F_GETFL, 0)
			r.Connect(fd, v4.lo(r.unusedPort(v4, unix.SOCK_STREAM)))
			r.Fcntl(fd, unix.F_SETFL, 0)
			r.Fcntl(fd, unix.F_GETFL, 0)
		}),
		sc("fcntl/setnonblock-visible", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.SetNonblock(fd, true)
			r.Fcntl(fd, unix.F_GETFL, 0)
			r.SetNonblock(fd, false)
			r.Fcntl(fd, unix.F_GETFL, 0)
		}),
		sc("fcntl/nonblock-accept", func(r *rec) {
			ln, _ := r.listener(v4)
			r.Fcntl(ln, unix.F_SETFL, unix.O_NONBLOCK)
			r.Accept(ln)
		}),
		sc("fcntl/unknown-command", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.Fcntl(fd, 9999, 0)
		}),
		sc("fcntl/epoll-fd-flags", func(r *rec) {
			ep := r.EpollCreate1(0)
			r.Fcntl(ep, unix.F_GETFL, 0)
			r.SetNonblock(ep, true)
			r.Fcntl(ep, unix.F_GETFL, 0)
		}),
		sc("fcntl/dupfd", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			if nfd := r.Fcntl(fd, unix.F_DUPFD_CLOEXEC, 0); nfd >= 0 {
				r.keep(nfd) // closed with the rest
			}
		}),
		sc("fcntl/setfl-ignores-access-mode", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.Fcntl(fd, unix.F_SETFL, unix.O_RDONLY|unix.O_NONBLOCK)
			r.Fcntl(fd, unix.F_GETFL, 0)
		}),
	}
}
