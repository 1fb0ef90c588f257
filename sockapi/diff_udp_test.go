//go:build linux

package sockapi

import (
	"bytes"
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// Scenarios for UDP, ICMP echo ("ping") sockets and IPv6 specifics.

func udpScenarios() []scenario {
	out := both("udp/sendto-recvfrom", func(r *rec, f fam) {
		a, aa := r.udp(f)
		b, ba := r.udp(f)
		r.Sendto(a, []byte("ping"), 0, ba)
		r.Recvfrom(b, 16, 0)
		r.Sendto(b, []byte("pong"), 0, aa)
		r.Recvfrom(a, 16, 0)
	})
	out = append(out, both("udp/autobind-on-sendto", func(r *rec, f fam) {
		srv, addr := r.udp(f)
		c := r.Socket(f.domain, unix.SOCK_DGRAM, 0)
		r.Getsockname(c)
		r.Sendto(c, []byte("hi"), 0, addr)
		r.Getsockname(c)
		_, from := r.Recvfrom(srv, 16, 0)
		r.Sendto(srv, []byte("back"), 0, from)
		r.Recvfrom(c, 16, 0)
	})...)
	out = append(out, both("udp/connected-refused", func(r *rec, f fam) {
		c := r.Socket(f.domain, unix.SOCK_DGRAM, 0)
		r.Connect(c, f.lo(r.unusedPort(f, unix.SOCK_DGRAM)))
		r.Send(c, []byte("anyone?"), 0)
		r.waitFor(c, unix.POLLERR)
		r.Recv(c, 16, unix.MSG_DONTWAIT)
		r.Recv(c, 16, unix.MSG_DONTWAIT)
		r.Send(c, []byte("again"), 0)
		r.waitFor(c, unix.POLLERR)
		r.GetInt(c, unix.SOL_SOCKET, unix.SO_ERROR)
		r.GetInt(c, unix.SOL_SOCKET, unix.SO_ERROR)
	})...)
	out = append(out, both("udp/truncation", func(r *rec, f fam) {
		a, _ := r.udp(f)
		b, ba := r.udp(f)
		r.Sendto(a, []byte("0123456789"), 0, ba)
		r.Sendto(a, []byte("abcdefghij"), 0, ba)
		r.Recvfrom(b, 4, 0)
		r.Recvfrom(b, 4, unix.MSG_TRUNC)
	})...)
	out = append(out, both("udp/zero-length-datagram", func(r *rec, f fam) {
		a, _ := r.udp(f)
		b, ba := r.udp(f)
		r.Sendto(a, nil, 0, ba)
		r.waitFor(b, unix.POLLIN)
		r.Recvfrom(b, 16, 0)
		r.Recvfrom(b, 16, unix.MSG_DONTWAIT)
	})...)
	out = append(out,
		sc("udp/emsgsize", func(r *rec) {
			a, _ := r.udp(v4)
			b, ba := r.udp(v4)
			r.Sendto(a, make([]byte, 65508), 0, ba)
			r.Sendto(a, bytes.Repeat([]byte{7}, 65507), 0, ba)
			r.Recvfrom(b, 70000, 0)
		}),
		sc("udp/emsgsize-v6", func(r *rec) {
			a, _ := r.udp(v6)
			b, ba := r.udp(v6)
			r.Sendto(a, make([]byte, 65528), 0, ba)
			r.Sendto(a, bytes.Repeat([]byte{6}, 65527), 0, ba)
			r.Recvfrom(b, 70000, 0)
		}),
		sc("udp/message-boundaries", func(r *rec) {
			a, _ := r.udp(v4)
			b, ba := r.udp(v4)
			for _, m := range []string{"one", "two", "three"} {
				r.Sendto(a, []byte(m), 0, ba)
			}
			r.Read(b, 64)
			r.Recv(b, 64, 0)
			r.Recvfrom(b, 64, 0)
			r.Recvfrom(b, 64, unix.MSG_DONTWAIT)
		}),
		sc("udp/peek", func(r *rec) {
			a, _ := r.udp(v4)
			b, ba := r.udp(v4)
			r.Sendto(a, []byte("peeked"), 0, ba)
			r.waitFor(b, unix.POLLIN)
			r.Recvfrom(b, 3, unix.MSG_PEEK)
			r.Recvfrom(b, 16, unix.MSG_PEEK|unix.MSG_TRUNC)
			r.Recvfrom(b, 16, 0)
		}),
		sc("udp/connected-filters-other-sources", func(r *rec) {
			a, aa := r.udp(v4)
			b, ba := r.udp(v4)
			other, _ := r.udp(v4)
			r.Connect(a, ba)
			r.Getpeername(a)
			r.Sendto(other, []byte("stranger"), 0, aa)
			r.Sendto(b, []byte("peer"), 0, aa)
			r.Recvfrom(a, 16, 0)
			r.Recvfrom(a, 16, unix.MSG_DONTWAIT)
		}),
		sc("udp/connected-send-and-write", func(r *rec) {
			a, _ := r.udp(v4)
			b, ba := r.udp(v4)
			r.Connect(a, ba)
			r.Write(a, []byte("w"))
			r.Send(a, []byte("s"), 0)
			r.Sendto(a, []byte("t"), 0, nil)
			r.Recvfrom(b, 4, 0)
			r.Recvfrom(b, 4, 0)
			r.Recvfrom(b, 4, 0)
		}),
		sc("udp/connected-sendto-other-address", func(r *rec) {
			a, _ := r.udp(v4)
			b, ba := r.udp(v4)
			c, ca := r.udp(v4)
			r.Connect(a, ba)
			r.Sendto(a, []byte("to c"), 0, ca)
			r.Recvfrom(c, 8, 0)
			r.Recvfrom(b, 8, unix.MSG_DONTWAIT)
		}),
		sc("udp/connect-unix-sockaddr", func(r *rec) {
			// x/sys/unix has no AF_UNSPEC sockaddr, so the API cannot
			// dissolve an association; a foreign family is refused.
			a, _ := r.udp(v4)
			_, ba := r.udp(v4)
			r.Connect(a, ba)
			r.Connect(a, &unix.SockaddrUnix{Name: "/nonexistent/socket/path"})
			r.Getpeername(a)
		}),
		sc("udp/send-unconnected-edestaddrreq", func(r *rec) {
			a, _ := r.udp(v4)
			r.Send(a, []byte("x"), 0)
			r.Write(a, []byte("x"))
			r.Sendto(a, []byte("x"), 0, nil)
		}),
		sc("udp/unconnected-ignores-port-unreachable", func(r *rec) {
			a, _ := r.udp(v4)
			r.Sendto(a, []byte("void"), 0, v4.lo(r.unusedPort(v4, unix.SOCK_DGRAM)))
			settle()
			r.Poll(0, pq{a, unix.POLLIN | unix.POLLOUT})
			r.GetInt(a, unix.SOL_SOCKET, unix.SO_ERROR)
		}),
		sc("udp/broadcast-needs-so-broadcast", func(r *rec) {
			// Only the refusal is compared: with SO_BROADCAST the
			// datagram would leave the host.
			a := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.Sendto(a, []byte("all"), 0, sa4(255, 255, 255, 255, 9))
		}),
		sc("udp/shutdown", func(r *rec) {
			a, _ := r.udp(v4)
			r.Shutdown(a, unix.SHUT_RD)
			_, ba := r.udp(v4)
			r.Connect(a, ba)
			r.Shutdown(a, unix.SHUT_WR)
			r.Send(a, []byte("x"), 0)
			r.Shutdown(a, unix.SHUT_RD)
			r.Recv(a, 4, 0)
		}),
		sc("udp/nonblocking-empty", func(r *rec) {
			a := r.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK, 0)
			r.Bind(a, v4.lo(0))
			r.Recvfrom(a, 4, 0)
			r.Read(a, 4)
		}),
		sc("udp/v4-sender-to-dual-stack-receiver", func(r *rec) {
			b := r.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0)
			r.Bind(b, v6.any(0))
			port := saPort(r.Getsockname(b))
			a := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.Sendto(a, []byte("from v4"), 0, v4.lo(port))
			r.Recvfrom(b, 16, 0)
		}),
		sc("udp/v4-sockaddr-from-v6-socket", func(r *rec) {
			b, ba := r.udp(v4)
			a := r.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0)
			r.Sendto(a, []byte("v4 dest"), 0, ba)
			r.Sendto(a, []byte("mapped dest"), 0, mapped4(saPort(ba)))
			r.Recvfrom(b, 16, 0)
			r.Recvfrom(b, 16, 0)
		}),
		sc("udp/msg-more-corks", func(r *rec) {
			// MSG_MORE holds the data back and appends the next send to
			// the same datagram (udp(7)).
			a, _ := r.udp(v4)
			b, ba := r.udp(v4)
			r.Connect(a, ba)
			r.Send(a, []byte("head,"), unix.MSG_MORE)
			r.Send(a, []byte("body,"), unix.MSG_MORE)
			settle()
			r.Recvfrom(b, 64, unix.MSG_DONTWAIT)
			r.Send(a, []byte("tail"), 0)
			r.Recvfrom(b, 64, 0)
		}),
		sc("stream/rcvlowat-holds-readiness", func(r *rec) {
			// With SO_RCVLOWAT 5, three queued bytes do not make the
			// socket readable (tcp_poll); five do.
			_, c, s := r.pair(v4)
			r.SetInt(s, unix.SOL_SOCKET, unix.SO_RCVLOWAT, 5)
			r.Write(c, []byte("abc"))
			settle()
			r.Poll(0, pq{s, unix.POLLIN | unix.POLLOUT})
			r.Write(c, []byte("de"))
			r.waitFor(s, unix.POLLIN)
			r.Read(s, 16)
		}),
		sc("udp/large-datagram", func(r *rec) {
			a, _ := r.udp(v4)
			b, ba := r.udp(v4)
			payload := bytes.Repeat([]byte("udp!"), 15000)
			r.Sendto(a, payload, 0, ba)
			r.Recvfrom(b, 70000, 0)
		}),
		sc("udp/poll-readiness", func(r *rec) {
			a, _ := r.udp(v4)
			b, ba := r.udp(v4)
			r.Poll(0, pq{b, unix.POLLIN | unix.POLLOUT})
			r.Sendto(a, []byte("1"), 0, ba)
			r.Sendto(a, []byte("2"), 0, ba)
			r.waitFor(b, unix.POLLIN)
			r.Recv(b, 4, 0)
			r.Poll(0, pq{b, unix.POLLIN | unix.POLLOUT})
			r.Recv(b, 4, 0)
			r.Poll(0, pq{b, unix.POLLIN | unix.POLLOUT})
		}),
	)
	return out
}

// echoRequest builds an ICMP (or ICMPv6, typ 128) echo request; the
// kernel fills in the identifier and checksum of ping sockets.
func echoRequest(typ byte, seq uint16, payload string) []byte {
	m := []byte{typ, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(m[6:], seq)
	return append(m, payload...)
}

// recvEcho receives one echo reply, logging the call without the raw
// bytes, and logs the reply.
func (r *rec) recvEcho(fd, size, flags int) {
	p := make([]byte, size)
	n, from, err := r.api.Recvfrom(fd, p, flags)
	if err != nil {
		r.logf("recvfrom(%s, %d, %s) = %s", r.fd(fd), size, msgName(flags), errs(err))
		return
	}
	r.logf("recvfrom(%s, %d, %s) = %d from %s", r.fd(fd), size, msgName(flags), n, r.sa(from))
	r.logEcho(fd, p[:min(n, size)])
}

// logEcho logs an echo reply's type, code, sequence and payload, and
// whether its identifier is the socket's "port" as Linux ping sockets
// make it.
func (r *rec) logEcho(fd int, m []byte) {
	// The identifier and checksum depend on the port the stack picked,
	// so they are checked, not printed.
	if len(m) < 8 {
		r.logf("echo reply too short: %d", len(m))
		return
	}
	sa, _ := r.api.Getsockname(fd)
	id := int(binary.BigEndian.Uint16(m[4:]))
	r.logf("echo reply type=%d code=%d id-is-port=%v seq=%d payload=%q",
		m[0], m[1], id == saPort(sa), binary.BigEndian.Uint16(m[6:]), m[8:])
}

func icmpScenarios() []scenario {
	ping := func(name string, run func(r *rec)) scenario {
		return scenario{name: name, run: run, ping: true}
	}
	return []scenario{
		ping("icmp/echo-v4", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP)
			r.GetInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
			r.GetInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
			r.Sendto(fd, echoRequest(8, 1, "hello ping"), 0, v4.lo(0))
			r.recvEcho(fd, 64, 0)
		}),
		ping("icmp/echo-v6", func(r *rec) {
			fd := r.Socket(unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_ICMPV6)
			r.GetInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
			r.Sendto(fd, echoRequest(128, 2, "hello ping6"), 0, v6.lo(0))
			r.recvEcho(fd, 64, 0)
		}),
		ping("icmp/connected-echo", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP)
			r.Connect(fd, v4.lo(0))
			r.Send(fd, echoRequest(8, 7, "connected"), 0)
			r.recvEcho(fd, 64, 0)
		}),
		ping("icmp/not-an-echo-request", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP)
			r.Sendto(fd, echoRequest(13, 1, "timestamp"), 0, v4.lo(0))
			r.Sendto(fd, []byte{8, 0, 0}, 0, v4.lo(0))
		}),
		ping("icmp/truncated-reply", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP)
			r.Sendto(fd, echoRequest(8, 3, "a longer payload"), 0, v4.lo(0))
			r.waitFor(fd, unix.POLLIN)
			r.recvEcho(fd, 4, unix.MSG_TRUNC)
		}),
		ping("icmp/nonblocking-empty", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK, unix.IPPROTO_ICMP)
			r.Recvfrom(fd, 64, 0)
			r.Poll(0, pq{fd, unix.POLLIN | unix.POLLOUT})
		}),
		ping("icmp/bind-chooses-identifier", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP)
			r.Bind(fd, v4.lo(0))
			r.logf("identifier chosen: %v", saPort(r.Getsockname(fd)) != 0)
			r.Sendto(fd, echoRequest(8, 9, "bound"), 0, v4.lo(0))
			r.recvEcho(fd, 64, 0)
		}),
		ping("icmp/echo-v6-not-an-echo-request", func(r *rec) {
			fd := r.Socket(unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_ICMPV6)
			r.Sendto(fd, echoRequest(129, 1, "a reply"), 0, v6.lo(0))
			r.Sendto(fd, []byte{128, 0}, 0, v6.lo(0))
		}),
		ping("icmp/connected-getpeername", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP)
			r.Getpeername(fd)
			r.Connect(fd, v4.lo(0))
			r.Getpeername(fd)
			r.Poll(0, pq{fd, unix.POLLIN | unix.POLLOUT})
		}),
		ping("icmp/autobind-on-send", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP)
			r.Getsockname(fd)
			r.Sendto(fd, echoRequest(8, 4, "auto"), 0, v4.lo(0))
			r.logf("bound after send: %v", saPort(r.Getsockname(fd)) != 0)
			r.recvEcho(fd, 64, 0)
		}),
		sc("icmp/stream-icmp-unsupported", func(r *rec) {
			r.Socket(unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_ICMP)
		}),
	}
}

func ipv6Scenarios() []scenario {
	return []scenario{
		sc("ipv6/dual-stack-accepts-v4", func(r *rec) {
			ln := r.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0)
			r.Bind(ln, v6.any(0))
			r.Listen(ln, 4)
			port := saPort(r.Getsockname(ln))
			c := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Connect(c, v4.lo(port))
			s := r.Accept(ln)
			r.Getsockname(s)
			r.Write(c, []byte("mapped"))
			r.Read(s, 16)
		}),
		sc("ipv6/v6only-refuses-v4", func(r *rec) {
			ln := r.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0)
			r.SetInt(ln, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
			r.Bind(ln, v6.any(0))
			r.Listen(ln, 4)
			port := saPort(r.Getsockname(ln))
			c := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Connect(c, v4.lo(port))
		}),
		sc("ipv6/connect-v4-mapped", func(r *rec) {
			ln, addr := r.listener(v4)
			c := r.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0)
			r.Connect(c, mapped4(saPort(addr)))
			r.Getsockname(c)
			r.Getpeername(c)
			r.Accept(ln)
		}),
		sc("ipv6/v6only-connect-v4-mapped", func(r *rec) {
			_, addr := r.listener(v4)
			c := r.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0)
			r.SetInt(c, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
			r.Connect(c, mapped4(saPort(addr)))
		}),
		sc("ipv6/bind-v4-mapped", func(r *rec) {
			fd := r.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0)
			r.Bind(fd, mapped4(0))
			r.Getsockname(fd)
		}),
		sc("ipv6/v6only-bind-v4-mapped", func(r *rec) {
			fd := r.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0)
			r.SetInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
			r.Bind(fd, mapped4(0))
		}),
		sc("ipv6/dual-wildcard-conflicts-with-v4", func(r *rec) {
			a := r.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0)
			r.Bind(a, v6.any(0))
			port := saPort(r.Getsockname(a))
			b := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Bind(b, v4.any(port))
		}),
		sc("ipv6/v6only-wildcard-shares-with-v4", func(r *rec) {
			a := r.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0)
			r.SetInt(a, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
			r.Bind(a, v6.any(0))
			port := saPort(r.Getsockname(a))
			b := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Bind(b, v4.any(port))
		}),
		sc("ipv6/loopbacks-do-not-conflict", func(r *rec) {
			port := r.unusedPortBoth(unix.SOCK_STREAM)
			a := r.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0)
			r.Bind(a, v6.lo(port))
			b := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Bind(b, v4.lo(port))
		}),
		sc("ipv6/udp-dual-stack-reply-to-v4", func(r *rec) {
			b := r.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0)
			r.Bind(b, v6.any(0))
			port := saPort(r.Getsockname(b))
			a, _ := r.udp(v4)
			r.Sendto(a, []byte("q"), 0, v4.lo(port))
			_, from := r.Recvfrom(b, 8, 0)
			r.Sendto(b, []byte("a"), 0, from)
			r.Recvfrom(a, 8, 0)
		}),
		sc("ipv6/v4-addr-on-v6only-udp", func(r *rec) {
			_, ba := r.udp(v4)
			a := r.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0)
			r.SetInt(a, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
			r.Sendto(a, []byte("x"), 0, mapped4(saPort(ba)))
		}),
	}
}
