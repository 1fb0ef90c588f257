//go:build linux

package sockapi

import (
	"golang.org/x/sys/unix"
)

// Scenarios for bad descriptors and for Getaddrinfo/Getnameinfo.

// badfScenarios runs every call on a descriptor that was closed and on
// one that was never opened: each must fail with EBADF (or, for poll,
// report POLLNVAL).
func badfScenarios() []scenario {
	calls := []struct {
		name string
		call func(r *rec, fd int)
	}{
		{"bind", func(r *rec, fd int) { r.Bind(fd, v4.lo(0)) }},
		{"listen", func(r *rec, fd int) { r.Listen(fd, 1) }},
		{"accept", func(r *rec, fd int) { r.Accept(fd) }},
		{"accept4", func(r *rec, fd int) { r.Accept4(fd, unix.SOCK_NONBLOCK) }},
		{"connect", func(r *rec, fd int) { r.Connect(fd, v4.lo(1)) }},
		{"read", func(r *rec, fd int) { r.Read(fd, 4) }},
		{"write", func(r *rec, fd int) { r.Write(fd, []byte("x")) }},
		{"send", func(r *rec, fd int) { r.Send(fd, []byte("x"), 0) }},
		{"recv", func(r *rec, fd int) { r.Recv(fd, 4, unix.MSG_DONTWAIT) }},
		{"sendto", func(r *rec, fd int) { r.Sendto(fd, []byte("x"), 0, v4.lo(9)) }},
		{"recvfrom", func(r *rec, fd int) { r.Recvfrom(fd, 4, 0) }},
		{"shutdown", func(r *rec, fd int) { r.Shutdown(fd, unix.SHUT_RDWR) }},
		{"close", func(r *rec, fd int) { r.Close(fd) }},
		{"getsockname", func(r *rec, fd int) { r.Getsockname(fd) }},
		{"getpeername", func(r *rec, fd int) { r.Getpeername(fd) }},
		{"setsockopt-int", func(r *rec, fd int) { r.SetInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1) }},
		{"getsockopt-int", func(r *rec, fd int) { r.GetInt(fd, unix.SOL_SOCKET, unix.SO_TYPE) }},
		{"setsockopt-linger", func(r *rec, fd int) { r.SetLinger(fd, 1, 1) }},
		{"setsockopt-timeval", func(r *rec, fd int) {
			r.SetTimevalRaw(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, unix.Timeval{Sec: 1})
		}},
		{"setnonblock", func(r *rec, fd int) { r.SetNonblock(fd, true) }},
		{"fcntl", func(r *rec, fd int) { r.Fcntl(fd, unix.F_GETFL, 0) }},
		{"poll", func(r *rec, fd int) { r.Poll(0, pq{fd, unix.POLLIN}) }},
		{"epoll-ctl-target", func(r *rec, fd int) {
			ep := r.EpollCreate1(0)
			r.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN)
		}},
		{"epoll-ctl-epfd", func(r *rec, fd int) {
			s := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.EpollCtl(fd, unix.EPOLL_CTL_ADD, s, unix.EPOLLIN)
		}},
		{"epoll-wait", func(r *rec, fd int) { r.EpollWait(fd, 4, 0) }},
	}
	var out []scenario
	for _, c := range calls {
		c := c
		out = append(out, sc("ebadf/"+c.name, func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.Close(fd)
			c.call(r, fd)
			// A number far above anything open: never a descriptor.
			c.call(r, 1<<20-7)
			c.call(r, -1)
		}))
	}
	return out
}

func resolverScenarios() []scenario {
	stream := &AddrInfo{Socktype: unix.SOCK_STREAM}
	gai := []struct {
		name          string
		node, service string
		hints         *AddrInfo
	}{
		{"numeric-v4-stream", "127.0.0.1", "80", stream},
		{"numeric-v6-stream", "::1", "443", stream},
		{"numeric-v4-no-hints", "127.0.0.1", "8080", nil},
		{"numeric-v4-dgram", "127.0.0.1", "53", &AddrInfo{Socktype: unix.SOCK_DGRAM}},
		{"numeric-v4-proto-udp", "127.0.0.1", "53", &AddrInfo{Protocol: unix.IPPROTO_UDP}},
		{"numeric-v6-family-inet", "::1", "80", &AddrInfo{Family: unix.AF_INET, Socktype: unix.SOCK_STREAM}},
		{"numeric-v4-family-inet6", "127.0.0.1", "80", &AddrInfo{Family: unix.AF_INET6, Socktype: unix.SOCK_STREAM}},
		{"numeric-v4-family-inet6-v4mapped", "127.0.0.1", "80", &AddrInfo{Family: unix.AF_INET6, Socktype: unix.SOCK_STREAM, Flags: AI_V4MAPPED}},
		{"numerichost-rejects-name", "localhost", "80", &AddrInfo{Flags: AI_NUMERICHOST, Socktype: unix.SOCK_STREAM}},
		{"numericserv-rejects-name", "127.0.0.1", "http", &AddrInfo{Flags: AI_NUMERICSERV, Socktype: unix.SOCK_STREAM}},
		{"service-name-http", "127.0.0.1", "http", stream},
		{"service-name-domain-dgram", "127.0.0.1", "domain", &AddrInfo{Socktype: unix.SOCK_DGRAM}},
		{"unknown-service", "127.0.0.1", "no-such-service-xyz", stream},
		{"service-out-of-range", "127.0.0.1", "70000", stream},
		{"passive-no-node", "", "8080", &AddrInfo{Flags: AI_PASSIVE, Socktype: unix.SOCK_STREAM}},
		{"passive-no-node-inet", "", "8080", &AddrInfo{Flags: AI_PASSIVE, Family: unix.AF_INET, Socktype: unix.SOCK_STREAM}},
		{"no-node-no-passive", "", "8080", &AddrInfo{Socktype: unix.SOCK_STREAM}},
		{"no-node-no-service", "", "", stream},
		{"bad-flags", "127.0.0.1", "80", &AddrInfo{Flags: 0x10000, Socktype: unix.SOCK_STREAM}},
		{"bad-family", "127.0.0.1", "80", &AddrInfo{Family: 12345}},
		{"bad-socktype", "127.0.0.1", "80", &AddrInfo{Socktype: 99}},
		{"socktype-proto-mismatch", "127.0.0.1", "80", &AddrInfo{Socktype: unix.SOCK_STREAM, Protocol: unix.IPPROTO_UDP}},
		{"canonname-numeric", "127.0.0.1", "80", &AddrInfo{Flags: AI_CANONNAME, Socktype: unix.SOCK_STREAM}},
		{"localhost-inet", "localhost", "80", &AddrInfo{Family: unix.AF_INET, Socktype: unix.SOCK_STREAM}},
		{"mapped-v6-literal", "::ffff:127.0.0.1", "80", stream},
		{"invalid-literal-numeric", "300.1.2.3", "80", &AddrInfo{Flags: AI_NUMERICHOST, Socktype: unix.SOCK_STREAM}},
		{"canonname-localhost", "localhost", "80", &AddrInfo{Flags: AI_CANONNAME, Family: unix.AF_INET, Socktype: unix.SOCK_STREAM}},
		{"raw-with-service", "127.0.0.1", "80", &AddrInfo{Socktype: unix.SOCK_RAW}},
		{"raw-without-service", "127.0.0.1", "", &AddrInfo{Socktype: unix.SOCK_RAW}},
		{"node-only-stream", "::1", "", stream},
		{"dgram-tcp-proto", "127.0.0.1", "53", &AddrInfo{Socktype: unix.SOCK_DGRAM, Protocol: unix.IPPROTO_TCP}},
		{"v4mapped-all", "127.0.0.1", "80", &AddrInfo{Family: unix.AF_INET6, Socktype: unix.SOCK_STREAM, Flags: AI_V4MAPPED | AI_ALL}},
		{"short-v4-literal", "127.1", "80", stream},
		{"hex-service", "127.0.0.1", "0x50", stream},
	}
	var out []scenario
	for _, g := range gai {
		g := g
		out = append(out, sc("getaddrinfo/"+g.name, func(r *rec) { r.Getaddrinfo(g.node, g.service, g.hints) }))
	}
	gni := []struct {
		name  string
		sa    unix.Sockaddr
		flags int
	}{
		{"numeric-v4", sa4(127, 0, 0, 1, 80), NI_NUMERICHOST | NI_NUMERICSERV},
		{"numeric-v6", v6.lo(443), NI_NUMERICHOST | NI_NUMERICSERV},
		{"service-name", sa4(127, 0, 0, 1, 80), NI_NUMERICHOST},
		{"service-name-dgram", sa4(127, 0, 0, 1, 53), NI_NUMERICHOST | NI_DGRAM},
		{"unknown-port-numeric-fallback", sa4(127, 0, 0, 1, 4), NI_NUMERICHOST},
		{"localhost-name", sa4(127, 0, 0, 1, 22), NI_NUMERICSERV},
		{"nil-sockaddr", nil, NI_NUMERICHOST},
		{"v4-mapped-numeric", mapped4(8080), NI_NUMERICHOST | NI_NUMERICSERV},
		{"bad-flags", sa4(127, 0, 0, 1, 80), 0x4000},
		{"port-zero", sa4(127, 0, 0, 1, 0), NI_NUMERICHOST},
		{"unix-sockaddr", &unix.SockaddrUnix{Name: "/x"}, NI_NUMERICHOST},
	}
	for _, g := range gni {
		g := g
		out = append(out, sc("getnameinfo/"+g.name, func(r *rec) { r.Getnameinfo(g.sa, g.flags) }))
	}
	return out
}
