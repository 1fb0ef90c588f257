//go:build linux

package sockapi

import (
	"time"

	"golang.org/x/sys/unix"
)

// Edge cases across calls: timeouts, addresses Linux rewrites, flags it
// ignores, connections that end before they are accepted.

func edgeScenarios() []scenario {
	out := both("connect/to-wildcard-means-local", func(r *rec, f fam) {
		// Linux treats a connect to INADDR_ANY / in6addr_any as a
		// connect to the local host.
		ln, addr := r.listener(f)
		c := r.Socket(f.domain, unix.SOCK_STREAM, 0)
		r.Connect(c, f.any(saPort(addr)))
		r.Getpeername(c)
		r.Accept(ln)
	})
	out = append(out, both("connect/autobinds-local-address", func(r *rec, f fam) {
		_, addr := r.listener(f)
		c := r.Socket(f.domain, unix.SOCK_STREAM, 0)
		r.Getsockname(c)
		r.Connect(c, addr)
		r.Getsockname(c)
	})...)
	out = append(out, both("udp/connect-autobinds", func(r *rec, f fam) {
		_, addr := r.udp(f)
		c := r.Socket(f.domain, unix.SOCK_DGRAM, 0)
		r.Connect(c, addr)
		r.Getsockname(c)
		r.Getpeername(c)
	})...)
	out = append(out,
		sc("accept/rcvtimeo", func(r *rec) {
			ln, _ := r.listener(v4)
			r.SetTimeval(ln, unix.SO_RCVTIMEO, 50*time.Millisecond)
			r.Accept(ln)
		}),
		sc("udp/rcvtimeo", func(r *rec) {
			fd, _ := r.udp(v4)
			r.SetTimeval(fd, unix.SO_RCVTIMEO, 50*time.Millisecond)
			r.Recvfrom(fd, 8, 0)
		}),
		sc("stream/waitall-with-rcvtimeo-returns-partial", func(r *rec) {
			_, c, s := r.pair(v4)
			r.SetTimeval(s, unix.SO_RCVTIMEO, 100*time.Millisecond)
			r.Write(c, []byte("part"))
			r.waitFor(s, unix.POLLIN)
			r.Recv(s, 10, unix.MSG_WAITALL)
			r.Recv(s, 10, unix.MSG_WAITALL)
		}),
		sc("accept/client-closed-before-accept", func(r *rec) {
			ln, addr := r.listener(v4)
			c := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Connect(c, addr)
			r.Write(c, []byte("last words"))
			r.Close(c)
			r.waitFor(ln, unix.POLLIN)
			s := r.Accept(ln)
			r.waitFor(s, unix.POLLRDHUP)
			r.Read(s, 32)
			r.Read(s, 32)
		}),
		sc("accept/client-reset-before-accept", func(r *rec) {
			ln, addr := r.listener(v4)
			c := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Connect(c, addr)
			r.waitFor(ln, unix.POLLIN)
			r.SetLinger(c, 1, 0)
			r.Close(c)
			settle()
			r.SetNonblock(ln, true)
			s := r.Accept(ln)
			if s >= 0 {
				r.Read(s, 8)
			}
		}),
		sc("udp/sendto-port-zero", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.Sendto(fd, []byte("x"), 0, v4.lo(0))
		}),
		sc("udp/waitall-ignored", func(r *rec) {
			a, _ := r.udp(v4)
			b, ba := r.udp(v4)
			r.Sendto(a, []byte("dgram"), 0, ba)
			r.Recvfrom(b, 64, unix.MSG_WAITALL)
		}),
		sc("udp/peek-zero-length", func(r *rec) {
			a, _ := r.udp(v4)
			b, ba := r.udp(v4)
			r.Sendto(a, nil, 0, ba)
			r.waitFor(b, unix.POLLIN)
			r.Recvfrom(b, 8, unix.MSG_PEEK)
			r.Recvfrom(b, 8, 0)
			r.Recvfrom(b, 8, unix.MSG_DONTWAIT)
		}),
		sc("stream/recv-errqueue-empty", func(r *rec) {
			_, c, _ := r.pair(v4)
			r.Recv(c, 8, unix.MSG_ERRQUEUE)
		}),
		sc("stream/send-more-flag", func(r *rec) {
			_, c, s := r.pair(v4)
			r.Send(c, []byte("corked "), unix.MSG_MORE)
			r.Send(c, []byte("then sent"), 0)
			r.Shutdown(c, unix.SHUT_WR)
			r.readAll(s)
		}),
		sc("socket/cloexec-flag", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			r.Fcntl(fd, unix.F_GETFL, 0)
			ln, addr := r.listener(v4)
			c := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Connect(c, addr)
			s := r.Accept4(ln, unix.SOCK_CLOEXEC)
			r.Fcntl(s, unix.F_GETFL, 0)
		}),
		sc("socket/icmpv6-on-inet", func(r *rec) {
			r.Socket(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMPV6)
		}),
		sc("socket/icmp-on-inet6", func(r *rec) {
			r.Socket(unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_ICMP)
		}),
		sc("opt/ipv6-v6only-udp", func(r *rec) {
			fd := r.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0)
			r.GetInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
			r.SetInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
			r.GetInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
			_, ba := r.udp(v4)
			r.Sendto(fd, []byte("x"), 0, mapped4(saPort(ba)))
		}),
		sc("opt/so-error-clears-after-read", func(r *rec) {
			c := r.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
			r.Connect(c, v4.lo(r.unusedPort(v4, unix.SOCK_STREAM)))
			r.waitFor(c, unix.POLLERR)
			r.Read(c, 4)
			r.GetInt(c, unix.SOL_SOCKET, unix.SO_ERROR)
		}),
		sc("epoll/edge-triggered-listener", func(r *rec) {
			ep := r.EpollCreate1(0)
			ln, addr := r.listener(v4)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, ln, unix.EPOLLIN|unix.EPOLLET)
			a := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Connect(a, addr)
			r.EpollWait(ep, 4, 5000)
			r.EpollWait(ep, 4, 0)
			b := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Connect(b, addr)
			r.EpollWait(ep, 4, 5000)
			r.Accept(ln)
			r.Accept(ln)
		}),
		sc("epoll/rdhup-not-requested", func(r *rec) {
			ep := r.EpollCreate1(0)
			_, c, s := r.pair(v4)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, c, unix.EPOLLIN)
			r.Shutdown(s, unix.SHUT_WR)
			r.waitFor(c, unix.POLLRDHUP)
			r.EpollWait(ep, 4, 0)
		}),
		sc("epoll/shutdown-both-hup", func(r *rec) {
			ep := r.EpollCreate1(0)
			_, c, s := r.pair(v4)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, c, unix.EPOLLIN|unix.EPOLLOUT)
			r.Shutdown(c, unix.SHUT_WR)
			r.Shutdown(s, unix.SHUT_WR)
			r.waitFor(c, unix.POLLHUP)
			r.EpollWait(ep, 4, 0)
		}),
		sc("select/udp-exception-set-empty", func(r *rec) {
			a, _ := r.udp(v4)
			b, ba := r.udp(v4)
			r.Sendto(a, []byte("x"), 0, ba)
			r.waitFor(b, unix.POLLIN)
			tv := unix.Timeval{}
			r.Select([]int{a, b}, []int{a, b}, []int{a, b}, &tv)
		}),
		sc("poll/udp-connected-refused", func(r *rec) {
			c := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.Connect(c, v4.lo(r.unusedPort(v4, unix.SOCK_DGRAM)))
			r.Send(c, []byte("x"), 0)
			r.waitFor(c, unix.POLLERR)
			r.Poll(0, pq{c, pollAll})
		}),
	)
	return out
}

// inProgressScenarios catch a connection in SYN_SENT: the listener's
// accept queue is full, so the SYN is dropped and the connect stays in
// progress for the second or more until the kernel retransmits.
func inProgressScenarios() []scenario {
	inProgress := func(name string, run func(r *rec, b int, addr unix.Sockaddr)) scenario {
		return sc("syn-sent/"+name, func(r *rec) {
			_, addr := r.fullListener()
			b := r.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
			r.Connect(b, addr)
			run(r, b, addr)
		})
	}
	return []scenario{
		inProgress("write-read-eagain", func(r *rec, b int, _ unix.Sockaddr) {
			r.Write(b, []byte("early"))
			r.Read(b, 8)
			r.GetInt(b, unix.SOL_SOCKET, unix.SO_ERROR)
		}),
		inProgress("blocking-write-sndtimeo", func(r *rec, b int, _ unix.Sockaddr) {
			r.SetNonblock(b, false)
			r.SetTimeval(b, unix.SO_SNDTIMEO, 50*time.Millisecond)
			r.Write(b, []byte("early"))
		}),
		inProgress("getsockname-getpeername", func(r *rec, b int, _ unix.Sockaddr) {
			r.logf("bound: %v", saPort(r.Getsockname(b)) != 0)
			r.Getpeername(b)
		}),
		inProgress("connect-elsewhere", func(r *rec, b int, _ unix.Sockaddr) {
			r.Connect(b, v4.lo(r.unusedPort(v4, unix.SOCK_STREAM)))
		}),
		inProgress("listen", func(r *rec, b int, _ unix.Sockaddr) {
			r.Listen(b, 1)
		}),
		inProgress("shutdown", func(r *rec, b int, addr unix.Sockaddr) {
			r.Shutdown(b, unix.SHUT_RDWR)
			r.Poll(0, pq{b, pollAll})
			r.Connect(b, addr)
		}),
		inProgress("epoll-sees-nothing", func(r *rec, b int, _ unix.Sockaddr) {
			ep := r.EpollCreate1(0)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, b, unix.EPOLLIN|unix.EPOLLOUT|unix.EPOLLRDHUP)
			r.EpollWait(ep, 4, 50)
		}),
		inProgress("select-sees-nothing", func(r *rec, b int, _ unix.Sockaddr) {
			tv := unix.Timeval{Usec: 20000}
			r.Select([]int{b}, []int{b}, []int{b}, &tv)
		}),
		sc("epoll/edge-triggered-partial-read", func(r *rec) {
			ep := r.EpollCreate1(0)
			a, _ := r.udp(v4)
			b, ba := r.udp(v4)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, b, unix.EPOLLIN|unix.EPOLLET)
			r.Sendto(a, []byte("1"), 0, ba)
			r.Sendto(a, []byte("2"), 0, ba)
			r.EpollWait(ep, 4, 5000)
			r.Recv(b, 4, 0)
			r.EpollWait(ep, 4, 0) // still readable, but no new edge
			r.Recv(b, 4, 0)
			r.Sendto(a, []byte("3"), 0, ba)
			r.EpollWait(ep, 4, 5000)
		}),
		sc("epoll/edge-triggered-writable-once", func(r *rec) {
			ep := r.EpollCreate1(0)
			_, c, _ := r.pair(v4)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, c, unix.EPOLLOUT|unix.EPOLLET)
			r.EpollWait(ep, 4, 0)
			r.EpollWait(ep, 4, 0)
			r.EpollCtl(ep, unix.EPOLL_CTL_MOD, c, unix.EPOLLOUT|unix.EPOLLET)
			r.EpollWait(ep, 4, 0)
		}),
		sc("select/same-fd-in-all-sets", func(r *rec) {
			_, c, s := r.pair(v4)
			r.Write(s, []byte("x"))
			r.waitFor(c, unix.POLLIN)
			tv := unix.Timeval{}
			r.Select([]int{c}, []int{c}, []int{c}, &tv)
		}),
		sc("stream/urgent-data", func(r *rec) {
			// MSG_OOB sends one byte of urgent data (tcp(7)); without
			// SO_OOBINLINE it is read apart with MSG_OOB and polls as
			// POLLPRI.
			_, c, s := r.pair(v4)
			r.Send(c, []byte("ab!"), unix.MSG_OOB)
			r.waitFor(s, unix.POLLPRI)
			r.Poll(0, pq{s, pollAll})
			r.Recv(s, 4, unix.MSG_OOB)
			r.Recv(s, 8, unix.MSG_DONTWAIT)
		}),
		sc("stream/read-after-peer-shutdown-then-data-drained", func(r *rec) {
			_, c, s := r.pair(v6)
			r.Write(s, []byte("tail"))
			r.Shutdown(s, unix.SHUT_WR)
			r.waitFor(c, unix.POLLRDHUP)
			r.Recv(c, 2, unix.MSG_PEEK)
			r.Read(c, 2)
			r.Read(c, 8)
			r.Read(c, 8)
			r.Poll(0, pq{c, pollAll})
		}),
	}
}

// moreReadinessScenarios cover epoll flags' validity, epoll nesting loops
// and infinite timeouts on descriptors that are ready already.
func moreReadinessScenarios() []scenario {
	return []scenario{
		sc("epoll/exclusive-flag-rules", func(r *rec) {
			ep := r.EpollCreate1(0)
			a, _ := r.udp(v4)
			b, _ := r.udp(v4)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, a, unix.EPOLLIN|unix.EPOLLEXCLUSIVE)
			r.EpollCtl(ep, unix.EPOLL_CTL_MOD, a, unix.EPOLLIN|unix.EPOLLEXCLUSIVE)
			r.EpollCtl(ep, unix.EPOLL_CTL_MOD, a, unix.EPOLLIN)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, b, unix.EPOLLIN|unix.EPOLLEXCLUSIVE|unix.EPOLLONESHOT)
		}),
		sc("epoll/nesting-loop-eloop", func(r *rec) {
			e1 := r.EpollCreate1(0)
			e2 := r.EpollCreate1(0)
			r.EpollCtl(e1, unix.EPOLL_CTL_ADD, e2, unix.EPOLLIN)
			r.EpollCtl(e2, unix.EPOLL_CTL_ADD, e1, unix.EPOLLIN)
		}),
		sc("epoll/one-socket-two-instances", func(r *rec) {
			e1 := r.EpollCreate1(0)
			e2 := r.EpollCreate1(0)
			a, _ := r.udp(v4)
			b, ba := r.udp(v4)
			r.EpollCtl(e1, unix.EPOLL_CTL_ADD, b, unix.EPOLLIN)
			r.EpollCtl(e2, unix.EPOLL_CTL_ADD, b, unix.EPOLLIN|unix.EPOLLET)
			r.Sendto(a, []byte("x"), 0, ba)
			r.EpollWait(e1, 4, 5000)
			r.EpollWait(e2, 4, 5000)
			r.EpollWait(e1, 4, 0)
			r.EpollWait(e2, 4, 0)
		}),
		sc("epoll/oneshot-edge-triggered", func(r *rec) {
			ep := r.EpollCreate1(0)
			a, _ := r.udp(v4)
			b, ba := r.udp(v4)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, b, unix.EPOLLIN|unix.EPOLLET|unix.EPOLLONESHOT)
			r.Sendto(a, []byte("1"), 0, ba)
			r.EpollWait(ep, 4, 5000)
			r.Sendto(a, []byte("2"), 0, ba)
			settle()
			r.EpollWait(ep, 4, 0)
			r.EpollCtl(ep, unix.EPOLL_CTL_MOD, b, unix.EPOLLIN|unix.EPOLLET)
			r.EpollWait(ep, 4, 0)
		}),
		sc("epoll/infinite-timeout-ready", func(r *rec) {
			ep := r.EpollCreate1(0)
			a, _ := r.udp(v4)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, a, unix.EPOLLOUT)
			r.EpollWait(ep, 4, -1)
		}),
		sc("poll/infinite-timeout-ready", func(r *rec) {
			a, _ := r.udp(v4)
			r.Poll(-1, pq{a, unix.POLLOUT})
		}),
		sc("select/nfd-beyond-open-descriptors", func(r *rec) {
			a, _ := r.udp(v4)
			tv := unix.Timeval{}
			r.SelectN(1000, nil, []int{a}, nil, &tv)
		}),
		sc("select/null-timeout-ready", func(r *rec) {
			a, _ := r.udp(v4)
			r.Select(nil, []int{a}, nil, nil)
		}),
		sc("udp/wildcard-bound-receives-loopback", func(r *rec) {
			b := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.Bind(b, v4.any(0))
			port := saPort(r.Getsockname(b))
			a := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.Sendto(a, []byte("to lo"), 0, v4.lo(port))
			r.Recvfrom(b, 16, 0)
			r.Sendto(a, []byte("to any"), 0, v4.any(port))
			r.Recvfrom(b, 16, 0)
		}),
		sc("udp/reuseaddr-both-bind", func(r *rec) {
			a := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.SetInt(a, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			r.Bind(a, v4.lo(0))
			sa := r.Getsockname(a)
			b := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.SetInt(b, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			r.Bind(b, sa)
		}),
		sc("udp/connect-wildcard-means-local", func(r *rec) {
			b, ba := r.udp(v4)
			a := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.Connect(a, v4.any(saPort(ba)))
			r.Getpeername(a)
			r.Send(a, []byte("hi"), 0)
			r.Recvfrom(b, 8, 0)
		}),
	}
}

// lateScenarios are corner cases of the lifecycle: listening again after
// SHUT_RD, connecting a socket to itself, peeking for more than is there.
func lateScenarios() []scenario {
	return []scenario{
		sc("listen/after-shutdown-unconnected", func(r *rec) {
			// shutdown on an unconnected socket is ENOTCONN, yet Linux
			// records it (inet_shutdown's "hack to wake up other
			// listeners"); a listener ignores it (tcp_poll and
			// SO_ACCEPTCONN look at the state alone).
			ln := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Bind(ln, v4.lo(0))
			r.Shutdown(ln, unix.SHUT_RDWR)
			r.Listen(ln, 1)
			r.GetInt(ln, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
			r.Poll(0, pq{ln, unix.POLLIN | unix.POLLOUT})
			r.Recv(ln, 4, unix.MSG_DONTWAIT)
			c := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Connect(c, r.Getsockname(ln))
			r.waitFor(ln, unix.POLLIN)
			r.Accept(ln)
			// Nor does the earlier SHUT_RD come back with a SHUT_WR.
			r.Shutdown(ln, unix.SHUT_WR)
			r.GetInt(ln, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
			r.SetNonblock(ln, true)
			r.Accept(ln)
		}),
		sc("listen/shut-wr-keeps-listening", func(r *rec) {
			// inet_shutdown on a listener disconnects it only for
			// SHUT_RD; SHUT_WR is recorded and changes nothing.
			ln, addr := r.listener(v4)
			r.Shutdown(ln, unix.SHUT_WR)
			r.GetInt(ln, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
			r.SetNonblock(ln, true)
			r.Accept(ln)
			r.Poll(0, pq{ln, unix.POLLIN | unix.POLLOUT})
			c := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Connect(c, addr)
			r.waitFor(ln, unix.POLLIN)
			r.Accept(ln)
		}),
		sc("stream/recv-after-shutdown-unconnected", func(r *rec) {
			// tcp_recvmsg checks RCV_SHUTDOWN before TCP_CLOSE: an
			// unconnected socket shut down for reading (ENOTCONN, but
			// recorded) reads end of file, blocking or not; shut down
			// for writing only it is still ENOTCONN.
			rd := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Shutdown(rd, unix.SHUT_RD)
			r.Recv(rd, 4, unix.MSG_DONTWAIT)
			r.Recv(rd, 4, 0)
			r.Read(rd, 4)
			wr := r.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0)
			r.Bind(wr, v6.lo(0))
			r.Shutdown(wr, unix.SHUT_WR)
			r.Recv(wr, 4, unix.MSG_DONTWAIT)
			r.Shutdown(wr, unix.SHUT_RDWR)
			r.Recv(wr, 4, unix.MSG_DONTWAIT)
		}),
		sc("bind/v6-address-sets-v6only", func(r *rec) {
			// inet6_bind: a socket bound to an IPv6 address that is
			// neither :: nor v4-mapped can only ever speak IPv6, and
			// Linux sets IPV6_V6ONLY on it.
			for _, typ := range []int{unix.SOCK_STREAM, unix.SOCK_DGRAM} {
				for _, sa := range []unix.Sockaddr{v6.lo(0), v6.any(0), mapped4(0)} {
					fd := r.Socket(unix.AF_INET6, typ, 0)
					r.GetInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
					r.Bind(fd, sa)
					r.GetInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
					r.Close(fd)
				}
			}
		}),
		sc("listen/shut-rd-then-listen-again", func(r *rec) {
			// SHUT_RD on a listener closes it (tcp_disconnect), and
			// the port goes with it: listening again binds a new one.
			ln, addr := r.listener(v4)
			r.Shutdown(ln, unix.SHUT_RD)
			r.GetInt(ln, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
			c := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Connect(c, addr)
			r.Listen(ln, 4)
			now := r.Getsockname(ln)
			r.logf("same port: %v", saPort(now) == saPort(addr))
			d := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Connect(d, now)
			r.SetNonblock(ln, true)
			r.waitFor(ln, unix.POLLIN)
			r.Accept(ln)
		}),
		sc("connect/to-itself", func(r *rec) {
			// Connecting a socket to its own address is a TCP
			// simultaneous open with itself (RFC 793 3.4): it connects.
			fd := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Bind(fd, v4.lo(0))
			self := r.Getsockname(fd)
			r.Connect(fd, self)
			r.Getpeername(fd)
			r.Write(fd, []byte("echo"))
			r.Read(fd, 8)
		}),
		sc("stream/peek-waitall-with-timeout", func(r *rec) {
			_, c, s := r.pair(v4)
			r.SetTimeval(s, unix.SO_RCVTIMEO, 100*time.Millisecond)
			r.Write(c, []byte("four"))
			r.waitFor(s, unix.POLLIN)
			r.Recv(s, 10, unix.MSG_PEEK|unix.MSG_WAITALL)
			r.Read(s, 10)
		}),
		sc("bind/reuseport-one-side-only", func(r *rec) {
			a := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.SetInt(a, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			r.Bind(a, v4.lo(0))
			r.Listen(a, 1)
			b := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Bind(b, r.Getsockname(a))
		}),
		sc("udp/connected-recv-after-peer-closed", func(r *rec) {
			a, aa := r.udp(v4)
			b, ba := r.udp(v4)
			r.Connect(a, ba)
			r.Connect(b, aa)
			r.Send(b, []byte("last"), 0)
			r.Close(b)
			r.waitFor(a, unix.POLLIN)
			r.Recv(a, 8, 0)
			r.Send(a, []byte("gone?"), 0)
			r.waitFor(a, unix.POLLERR)
			r.Recv(a, 8, unix.MSG_DONTWAIT)
		}),
	}
}
