//go:build linux

package sockapi

import (
	"golang.org/x/sys/unix"
)

// Scenarios for socket(2), bind(2) and listen(2)/accept(2).

func socketScenarios() []scenario {
	kinds := []struct {
		name        string
		domain, typ int
		proto       int
	}{
		{"tcp4", unix.AF_INET, unix.SOCK_STREAM, 0},
		{"tcp4-explicit-proto", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP},
		{"udp4", unix.AF_INET, unix.SOCK_DGRAM, 0},
		{"udp4-explicit-proto", unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_UDP},
		{"tcp6", unix.AF_INET6, unix.SOCK_STREAM, 0},
		{"udp6", unix.AF_INET6, unix.SOCK_DGRAM, 0},
	}
	var out []scenario
	for _, k := range kinds {
		k := k
		out = append(out, sc("socket/"+k.name+"-identity", func(r *rec) {
			fd := r.Socket(k.domain, k.typ, k.proto)
			r.GetInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
			r.GetInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
			r.GetInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
			r.GetInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
			r.GetInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
			r.Getsockname(fd)
			r.Getpeername(fd)
			r.Close(fd)
		}))
	}
	bad := []struct {
		name               string
		domain, typ, proto int
	}{
		{"bad-domain", 12345, unix.SOCK_STREAM, 0},
		{"bad-type", unix.AF_INET, 99, 0},
		{"type-zero", unix.AF_INET, 0, 0},
		{"seqpacket-inet", unix.AF_INET, unix.SOCK_SEQPACKET, 0},
		{"stream-with-udp", unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_UDP},
		{"dgram-with-tcp", unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_TCP},
		{"stream6-with-udp", unix.AF_INET6, unix.SOCK_STREAM, unix.IPPROTO_UDP},
		{"unknown-type-flag", unix.AF_INET, unix.SOCK_STREAM | 0x40000000, 0},
		{"stream-bad-proto", unix.AF_INET, unix.SOCK_STREAM, 250},
	}
	for _, b := range bad {
		b := b
		out = append(out, sc("socket/"+b.name, func(r *rec) { r.Socket(b.domain, b.typ, b.proto) }))
	}
	out = append(out,
		sc("socket/nonblock-flag", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
			r.Fcntl(fd, unix.F_GETFL, 0)
			r.Connect(fd, v4.lo(r.unusedPort(v4, unix.SOCK_STREAM)))
		}),
		sc("socket/lowest-free-descriptor", func(r *rec) {
			a := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			b := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			c := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Close(b)
			r.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0) // takes b's number
			r.GetInt(b, unix.SOL_SOCKET, unix.SO_DOMAIN)
			r.Close(a)
			r.Close(c)
		}),
		sc("socket/raw-icmp", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
			r.GetInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
		}),
		sc("socket/close-twice", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.Close(fd)
			r.Close(fd)
		}),
	)
	return out
}

func bindScenarios() []scenario {
	out := both("bind/ephemeral-port", func(r *rec, f fam) {
		fd := r.Socket(f.domain, unix.SOCK_STREAM, 0)
		r.Getsockname(fd)
		r.Bind(fd, f.lo(0))
		sa := r.Getsockname(fd)
		r.logf("bound port nonzero: %v", saPort(sa) != 0)
	})
	out = append(out, both("bind/twice-einval", func(r *rec, f fam) {
		fd := r.Socket(f.domain, unix.SOCK_STREAM, 0)
		r.Bind(fd, f.lo(0))
		r.Bind(fd, f.lo(0))
	})...)
	out = append(out, both("bind/tcp-eaddrinuse", func(r *rec, f fam) {
		a := r.Socket(f.domain, unix.SOCK_STREAM, 0)
		r.Bind(a, f.lo(0))
		sa := r.Getsockname(a)
		b := r.Socket(f.domain, unix.SOCK_STREAM, 0)
		r.Bind(b, sa)
		r.Close(a)
		r.Bind(b, sa)
	})...)
	out = append(out, both("bind/udp-eaddrinuse", func(r *rec, f fam) {
		a, sa := r.udp(f)
		b := r.Socket(f.domain, unix.SOCK_DGRAM, 0)
		r.Bind(b, sa)
		r.Close(a)
		r.Bind(b, sa)
	})...)
	out = append(out, both("bind/wildcard-then-loopback-conflict", func(r *rec, f fam) {
		a := r.Socket(f.domain, unix.SOCK_STREAM, 0)
		r.Bind(a, f.any(0))
		port := saPort(r.Getsockname(a))
		b := r.Socket(f.domain, unix.SOCK_STREAM, 0)
		r.Bind(b, f.lo(port))
	})...)
	out = append(out,
		sc("bind/tcp-and-udp-share-port", func(r *rec) {
			a := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Bind(a, v4.lo(0))
			sa := r.Getsockname(a)
			b := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.Bind(b, sa)
		}),
		sc("bind/reuseaddr-both-then-listen", func(r *rec) {
			a := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.SetInt(a, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			r.Bind(a, v4.lo(0))
			sa := r.Getsockname(a)
			b := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.SetInt(b, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			r.Bind(b, sa)
			r.Listen(a, 4)
			r.Listen(b, 4)
		}),
		sc("bind/reuseaddr-one-side-only", func(r *rec) {
			a := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Bind(a, v4.lo(0))
			sa := r.Getsockname(a)
			b := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.SetInt(b, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			r.Bind(b, sa)
		}),
		sc("bind/reuseaddr-rebind-after-close", func(r *rec) {
			// A server restart: the old listener's accepted connection
			// lingers (FIN_WAIT or TIME_WAIT) on the port. Linux lets
			// the new listener bind only if both set SO_REUSEADDR.
			ln := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.SetInt(ln, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			r.Bind(ln, v4.lo(0))
			r.Listen(ln, 4)
			addr := r.Getsockname(ln)
			c := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Connect(c, addr)
			s := r.Accept(ln)
			r.Close(ln)
			r.Close(s)
			r.waitFor(c, unix.POLLRDHUP)
			r.Close(c)
			n := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Bind(n, addr)
			r.SetInt(n, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			r.Bind(n, addr)
			r.Listen(n, 1)
		}),
		sc("bind/reuseport-two-listeners", func(r *rec) {
			a := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.SetInt(a, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			r.Bind(a, v4.lo(0))
			sa := r.Getsockname(a)
			b := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.SetInt(b, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			r.Bind(b, sa)
			r.Listen(a, 4)
			r.Listen(b, 4)
			c := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Connect(c, sa)
		}),
		sc("bind/reuseport-udp", func(r *rec) {
			a := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.SetInt(a, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			r.Bind(a, v4.lo(0))
			sa := r.Getsockname(a)
			b := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.SetInt(b, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			r.Bind(b, sa)
			c := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.SetInt(c, unix.SOL_SOCKET, unix.SO_REUSEPORT, 0)
			r.Bind(c, sa)
		}),
		sc("bind/non-local-address", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Bind(fd, sa4(198, 51, 100, 7, 0))
		}),
		sc("bind/v6-sockaddr-on-v4-socket", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Bind(fd, v6.lo(0))
		}),
		sc("bind/v4-sockaddr-on-v6-socket", func(r *rec) {
			fd := r.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0)
			r.Bind(fd, v4.lo(0))
		}),
		sc("bind/after-connect", func(r *rec) {
			_, c, _ := r.pair(v4)
			r.Bind(c, v4.lo(0))
		}),
		sc("bind/udp-after-autobind", func(r *rec) {
			a, sa := r.udp(v4)
			b := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.Sendto(b, []byte("x"), 0, sa)
			r.Bind(b, v4.lo(0))
			r.Recvfrom(a, 8, 0)
		}),
	)
	return out
}

func listenScenarios() []scenario {
	out := both("listen/autobind", func(r *rec, f fam) {
		fd := r.Socket(f.domain, unix.SOCK_STREAM, 0)
		r.Listen(fd, 1)
		sa := r.Getsockname(fd)
		r.logf("port nonzero: %v", saPort(sa) != 0)
		r.GetInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	})
	out = append(out, both("accept/peer-address", func(r *rec, f fam) {
		ln, addr := r.listener(f)
		c := r.Socket(f.domain, unix.SOCK_STREAM, 0)
		r.Connect(c, addr)
		s := r.Accept(ln)
		r.Getsockname(c)
		r.Getpeername(s)
		r.Getsockname(s)
		r.Getpeername(c)
		r.GetInt(s, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	})...)
	out = append(out,
		sc("listen/udp-eopnotsupp", func(r *rec) {
			fd, _ := r.udp(v4)
			r.Listen(fd, 1)
		}),
		sc("listen/twice", func(r *rec) {
			fd, _ := r.listener(v4)
			r.Listen(fd, 32)
			r.GetInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		}),
		sc("listen/after-connect", func(r *rec) {
			_, c, _ := r.pair(v4)
			r.Listen(c, 1)
		}),
		sc("listen/negative-backlog", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Listen(fd, -1)
			r.GetInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		}),
		sc("accept/not-listening", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Bind(fd, v4.lo(0))
			r.Accept(fd)
		}),
		sc("accept/udp", func(r *rec) {
			fd, _ := r.udp(v4)
			r.Accept(fd)
		}),
		sc("accept/nonblocking-empty", func(r *rec) {
			ln, _ := r.listener(v4)
			r.SetNonblock(ln, true)
			r.Accept(ln)
			r.Accept4(ln, unix.SOCK_NONBLOCK)
		}),
		sc("accept/listener-nonblock-flag-not-inherited", func(r *rec) {
			ln := r.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
			r.Bind(ln, v4.lo(0))
			r.Listen(ln, 4)
			c := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Connect(c, r.Getsockname(ln))
			r.waitFor(ln, unix.POLLIN)
			s := r.Accept(ln)
			r.Fcntl(s, unix.F_GETFL, 0)
		}),
		sc("accept4/nonblock", func(r *rec) {
			ln, addr := r.listener(v4)
			c := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Connect(c, addr)
			s := r.Accept4(ln, unix.SOCK_NONBLOCK)
			r.Fcntl(s, unix.F_GETFL, 0)
			r.Read(s, 4)
		}),
		sc("accept4/bad-flags", func(r *rec) {
			ln, _ := r.listener(v4)
			r.Accept4(ln, 0x1)
		}),
		sc("accept/sockopts-inherited", func(r *rec) {
			ln, addr := r.listener(v4)
			r.SetInt(ln, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
			r.SetInt(ln, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
			r.SetInt(ln, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 77)
			c := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Connect(c, addr)
			s := r.Accept(ln)
			r.GetInt(s, unix.IPPROTO_TCP, unix.TCP_NODELAY)
			r.GetInt(s, unix.SOL_SOCKET, unix.SO_KEEPALIVE)
			r.GetInt(s, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
		}),
		sc("accept/queue-order", func(r *rec) {
			ln, addr := r.listener(v4)
			var cs []int
			for i := 0; i < 3; i++ {
				c := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
				r.Connect(c, addr)
				r.Write(c, []byte{'a' + byte(i)})
				cs = append(cs, c)
			}
			for range cs {
				s := r.Accept(ln)
				r.Read(s, 4)
			}
		}),
		sc("listen/backlog-full-drops-syn", func(r *rec) {
			// listen(0) leaves room for one connection in the accept
			// queue (the kernel allows backlog+1); a further SYN is
			// dropped, so a non-blocking connect stays in progress.
			ln, addr := r.fullListener()
			b := r.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
			r.Connect(b, addr)
			r.Poll(200, pq{b, unix.POLLOUT})
			r.Connect(b, addr)
			r.SetNonblock(ln, true)
			r.Accept(ln)
		}),
		sc("listen/close-with-pending-resets-client", func(r *rec) {
			ln, addr := r.listener(v4)
			c := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Connect(c, addr)
			r.waitFor(ln, unix.POLLIN)
			r.Close(ln)
			r.waitFor(c, unix.POLLERR)
			r.Read(c, 4)
			r.Read(c, 4)
		}),
		sc("listen/shutdown-listener", func(r *rec) {
			ln, _ := r.listener(v4)
			r.Shutdown(ln, unix.SHUT_RDWR)
			r.SetNonblock(ln, true)
			r.Accept(ln)
			r.GetInt(ln, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		}),
	)
	return out
}
