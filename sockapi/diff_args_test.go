//go:build linux

package sockapi

import (
	"fmt"
	"math"
	"time"

	"golang.org/x/sys/unix"
)

// Arguments a caller can get wrong: addresses that are nil or whose port
// does not fit, nil option pointers, empty buffers, option values at and
// beyond the ends of their ranges. The kernel side is x/sys/unix, so
// where x/sys checks an argument before the system call (a port outside
// 0..65535 is EINVAL), that check is part of the behaviour compared.

func argScenarios() []scenario {
	return []scenario{
		sc("args/port-out-of-range", func(r *rec) {
			// Each call on a fresh socket, so that one that wrongly
			// succeeds cannot change what the next one sees.
			for _, port := range []int{65536, 70000, -1} {
				r.Bind(r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0), sa4(127, 0, 0, 1, port))
				r.Connect(r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0), sa4(127, 0, 0, 1, port))
				r.Sendto(r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0), []byte("x"), 0, sa4(127, 0, 0, 1, port))
				r.Bind(r.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0), v6.lo(port))
				r.Connect(r.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0), v6.any(port))
			}
			// x/sys checks the address before the descriptor.
			r.Bind(1<<20-7, sa4(127, 0, 0, 1, 70000))
			r.Connect(-1, v6.lo(70000))
		}),
		sc("args/nil-sockaddr", func(r *rec) {
			// bind(fd, NULL, 0) and connect(fd, NULL, 0): the address
			// is too short (EINVAL); sendto(fd, ..., NULL, 0) means no
			// address (EDESTADDRREQ on an unconnected UDP socket). A nil
			// pointer of a sockaddr type is no address either.
			fd := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Bind(fd, nil)
			r.Connect(fd, nil)
			r.Bind(fd, (*unix.SockaddrInet4)(nil))
			r.Connect(fd, (*unix.SockaddrInet6)(nil))
			u := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.Bind(u, nil)
			r.Connect(u, nil)
			r.Sendto(u, []byte("x"), 0, nil)
			r.Sendto(u, []byte("x"), 0, (*unix.SockaddrInet4)(nil))
			r.Bind(-1, nil)
			r.Getsockname(fd)
			r.Getsockname(u)
		}),
		sc("args/nil-option-pointers", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			err := r.api.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, nil)
			r.logf("setsockopt(%s, SO_LINGER, nil) = %s", r.fd(fd), errs(err))
			err = r.api.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, nil)
			r.logf("setsockopt(%s, SO_RCVTIMEO, nil) = %s", r.fd(fd), errs(err))
			ep := r.EpollCreate1(0)
			err = r.api.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, nil)
			r.logf("epoll_ctl(%s, ADD, %s, nil) = %s", r.fd(ep), r.fd(fd), errs(err))
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN)
			err = r.api.EpollCtl(ep, unix.EPOLL_CTL_MOD, fd, nil)
			r.logf("epoll_ctl(%s, MOD, %s, nil) = %s", r.fd(ep), r.fd(fd), errs(err))
			err = r.api.EpollCtl(ep, unix.EPOLL_CTL_DEL, fd, nil)
			r.logf("epoll_ctl(%s, DEL, %s, nil) = %s", r.fd(ep), r.fd(fd), errs(err))
		}),
		sc("args/empty-buffers", func(r *rec) {
			// A nil buffer reads nothing, but on UDP it still takes
			// the datagram; MSG_TRUNC reports the datagram's length.
			a, _ := r.udp(v4)
			b, baddr := r.udp(v4)
			r.Sendto(a, []byte("hello"), 0, baddr)
			r.Sendto(a, []byte("world!"), 0, baddr)
			r.waitFor(b, unix.POLLIN)
			n, err := r.api.Read(b, nil)
			r.logf("read(%s, nil) = %s", r.fd(b), countOrErr(n, err))
			r.Recv(b, 0, unix.MSG_TRUNC|unix.MSG_PEEK)
			r.Recv(b, 2, unix.MSG_TRUNC)
			r.Connect(a, baddr)
			n, err = r.api.Write(a, nil)
			r.logf("write(%s, nil) = %s", r.fd(a), countOrErr(n, err))
			r.waitFor(b, unix.POLLIN)
			r.Recvfrom(b, 10, 0)
			_, c, s := r.pair(v4)
			r.Write(c, []byte("abc"))
			r.waitFor(s, unix.POLLIN)
			n, err = r.api.Read(s, nil)
			r.logf("read(%s, nil) = %s", r.fd(s), countOrErr(n, err))
			n, err = r.api.Write(c, nil)
			r.logf("write(%s, nil) = %s", r.fd(c), countOrErr(n, err))
			r.Read(s, 10)
			r.Recv(s, 0, unix.MSG_DONTWAIT)
		}),
		sc("loopback/source-for-other-127-address", func(r *rec) {
			// 127.0.0.0/8 is local, and Linux sends to any of it from
			// the loopback route's preferred source, 127.0.0.1.
			ln := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Bind(ln, sa4(0, 0, 0, 0, 0))
			r.Listen(ln, 4)
			port := saPort(r.Getsockname(ln))
			c := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Connect(c, sa4(127, 0, 0, 2, port))
			r.Getsockname(c)
			r.Getsockname(r.Accept(ln))
			u := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.Bind(u, sa4(0, 0, 0, 0, 0))
			uport := saPort(r.Getsockname(u))
			r.Sendto(r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0), []byte("hi"), 0, sa4(127, 0, 0, 5, uport))
			r.Recvfrom(u, 10, 0)
		}),
		sc("opt/rcvtimeo-beyond-duration-is-infinite", func(r *rec) {
			// sock_set_timeout makes any timeout too long for jiffies
			// MAX_SCHEDULE_TIMEOUT: no timeout. 18446744074 s is one
			// whose nanoseconds wrap around int64 to about 0.29 s.
			_, c, s := r.pair(v4)
			r.SetTimevalRaw(s, unix.SOL_SOCKET, unix.SO_RCVTIMEO, unix.Timeval{Sec: 18446744074})
			got := make(chan string, 1)
			go func() {
				p := make([]byte, 8)
				n, err := r.api.Read(s, p)
				got <- fmt.Sprintf("%s %q", countOrErr(n, err), p[:max(n, 0)])
			}()
			time.Sleep(600 * time.Millisecond)
			r.Write(c, []byte("late"))
			r.logf("read(%s) blocked across 600ms = %s", r.fd(s), <-got)
		}),
		sc("udp/msg-probe-sends-nothing", func(r *rec) {
			// MSG_PROBE: "do not send, only probe the path"
			// (ip_append_data and ip_make_skb return before building a
			// packet); the call still succeeds with the length, and an
			// unbound socket is still bound (inet_send_prepare).
			u, addr := r.udp(v4)
			s := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.Sendto(s, []byte("probe"), msgProbe, addr)
			r.Getsockname(s)
			r.Sendto(s, []byte("real"), 0, addr)
			r.waitFor(u, unix.POLLIN)
			r.Recv(u, 8, unix.MSG_DONTWAIT)
			r.Recv(u, 8, unix.MSG_DONTWAIT)
			// Its checks: a destination, a port, at most 65535 bytes
			// (the 65507 limit comes with the packet it never builds).
			s2 := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.Sendto(s2, []byte("x"), msgProbe, nil)
			r.Sendto(s2, []byte("x"), msgProbe, sa4(127, 0, 0, 1, 0))
			r.Sendto(s2, make([]byte, 65508), msgProbe, addr)
			r.Sendto(s2, make([]byte, 65536), msgProbe, addr)
			r.Connect(s2, addr)
			r.Sendto(s2, []byte("x"), msgProbe, nil)
			u6, addr6 := r.udp(v6)
			r.Sendto(r.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0), []byte("x"), msgProbe, addr6)
			r.Sendto(r.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0), []byte("x"), msgProbe, mapped4(saPort(addr)))
			r.Recv(u6, 8, unix.MSG_DONTWAIT)
			r.Recv(u, 8, unix.MSG_DONTWAIT)
		}),
		sc("opt/int-value-ranges", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			set := func(level, opt int, vals ...int) {
				for _, v := range vals {
					r.SetInt(fd, level, opt, v)
					r.GetInt(fd, level, opt)
				}
			}
			set(unix.IPPROTO_IP, unix.IP_TTL, -1, 0, 1, 255, 256)
			set(unix.IPPROTO_IP, unix.IP_TOS, 0xff, 3, -1, 256) // TCP keeps ECN bits its own
			set(unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, -1, 0, 1, 32767, 32768)
			set(unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, -1, 0, 1, 32767, 32768)
			set(unix.IPPROTO_TCP, unix.TCP_KEEPCNT, -1, 0, 1, 127, 128)
			set(unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, -1, 0, math.MaxInt32)
			set(unix.IPPROTO_TCP, unix.TCP_MAXSEG, -1, 0, 87, 88, 65535)
			set(unix.IPPROTO_TCP, unix.TCP_NODELAY, 2, -1, 0)
			set(unix.SOL_SOCKET, unix.SO_KEEPALIVE, 2, -1, 0)
			set(unix.SOL_SOCKET, unix.SO_RCVLOWAT, 0, -1, 5)
			set(unix.SOL_SOCKET, unix.SO_RCVBUF, 0)
			set(unix.SOL_SOCKET, unix.SO_SNDBUF, 0)
			v6 := r.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0)
			fd = v6
			set(unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, -2, -1, 0, 255, 256)
			set(unix.IPPROTO_IPV6, unix.IPV6_TCLASS, 0xff, -1, 256)
			set(unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 2)
		}),
	}
}
