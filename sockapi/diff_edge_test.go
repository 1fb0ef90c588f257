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
			r.EpollWait(ep, 4, 2000)
			r.EpollWait(ep, 4, 0)
			b := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Connect(b, addr)
			r.EpollWait(ep, 4, 2000)
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
