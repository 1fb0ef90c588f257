//go:build linux

package sockapi

import (
	"golang.org/x/sys/unix"
)

// Scenarios from the fourth pass (branch qa4): datagram, ICMP echo and
// IP-level corners a program ported from Linux leans on and no earlier
// scenario covered.

func dgramScenarios() []scenario {
	ping := func(name string, run func(r *rec)) scenario {
		return scenario{name: name, run: run, ping: true}
	}
	out := []scenario{
		sc("udp/sendto-over-64k", func(r *rec) {
			// Beyond the largest IP datagram: EMSGSIZE, v4 and v6,
			// and on a connected socket through send as well.
			a, _ := r.udp(v4)
			_, ba := r.udp(v4)
			r.Sendto(a, make([]byte, 65535), 0, ba)
			r.Sendto(a, make([]byte, 65536), 0, ba)
			r.Sendto(a, make([]byte, 1<<20), 0, ba)
			r.Connect(a, ba)
			r.Send(a, make([]byte, 65508), 0)
			c, _ := r.udp(v6)
			_, da := r.udp(v6)
			r.Sendto(c, make([]byte, 65535), 0, da)
			r.Sendto(c, make([]byte, 65536), 0, da)
		}),
		sc("udp/connected-zero-length", func(r *rec) {
			a, aa := r.udp(v4)
			b, ba := r.udp(v4)
			r.Connect(a, ba)
			r.Connect(b, aa)
			r.Send(a, nil, 0)
			r.Write(a, nil)
			r.waitFor(b, unix.POLLIN)
			r.Poll(0, pq{b, unix.POLLIN | unix.POLLOUT})
			r.Recv(b, 16, 0)
			r.Recv(b, 16, unix.MSG_TRUNC)
			r.Recv(b, 16, unix.MSG_DONTWAIT)
		}),
		sc("udp/reuseaddr-one-side-only", func(r *rec) {
			a := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.SetInt(a, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			r.Bind(a, v4.lo(0))
			sa := r.Getsockname(a)
			b := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.Bind(b, sa)
			c := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.SetInt(c, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			r.Bind(c, sa)
		}),
		sc("udp/reuseaddr-wildcard-and-loopback", func(r *rec) {
			a := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.SetInt(a, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			r.Bind(a, v4.any(0))
			port := saPort(r.Getsockname(a))
			b := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.SetInt(b, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			r.Bind(b, v4.lo(port))
			c := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.Bind(c, v4.lo(port))
		}),
		sc("opt/ttl-hops-reset-on-udp", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.SetInt(fd, unix.IPPROTO_IP, unix.IP_TTL, 7)
			r.GetInt(fd, unix.IPPROTO_IP, unix.IP_TTL)
			r.SetInt(fd, unix.IPPROTO_IP, unix.IP_TTL, -1)
			r.GetInt(fd, unix.IPPROTO_IP, unix.IP_TTL)
			r.SetInt(fd, unix.IPPROTO_IP, unix.IP_TTL, 0)
			r.SetInt(fd, unix.IPPROTO_IP, unix.IP_TTL, 256)
			r.GetInt(fd, unix.IPPROTO_IP, unix.IP_TTL)
			s := r.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0)
			r.SetInt(s, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, 0)
			r.GetInt(s, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS)
			r.SetInt(s, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, -1)
			r.GetInt(s, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS)
			r.SetInt(s, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, -2)
			r.SetInt(s, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, 256)
			r.GetInt(s, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS)
		}),
		sc("opt/tos-masking-udp", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			for _, v := range []int{0xff, 0x1ff, 3, -1} {
				r.SetInt(fd, unix.IPPROTO_IP, unix.IP_TOS, v)
				r.GetInt(fd, unix.IPPROTO_IP, unix.IP_TOS)
			}
		}),
		sc("opt/v6only-on-bound-udp", func(r *rec) {
			fd := r.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0)
			r.Bind(fd, v6.any(0))
			r.SetInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
			r.GetInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
		}),
		ping("icmp/type-domain-protocol", func(r *rec) {
			for _, s := range []struct{ dom, proto int }{{unix.AF_INET, unix.IPPROTO_ICMP}, {unix.AF_INET6, unix.IPPROTO_ICMPV6}} {
				fd := r.Socket(s.dom, unix.SOCK_DGRAM, s.proto)
				r.GetInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
				r.GetInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
				r.GetInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
			}
		}),
		ping("icmp/nonzero-code-and-short", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP)
			m := echoRequest(8, 1, "code")
			m[1] = 1
			r.Sendto(fd, m, 0, v4.lo(0))
			r.Sendto(fd, echoRequest(8, 1, "")[:7], 0, v4.lo(0))
			r.Sendto(fd, echoRequest(8, 2, ""), 0, v4.lo(0))
			r.waitFor(fd, unix.POLLIN)
			r.recvEcho(fd, 64, 0)
		}),
		ping("icmp/ttl-options", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP)
			r.GetInt(fd, unix.IPPROTO_IP, unix.IP_TTL)
			r.SetInt(fd, unix.IPPROTO_IP, unix.IP_TTL, 3)
			r.GetInt(fd, unix.IPPROTO_IP, unix.IP_TTL)
			r.SetInt(fd, unix.IPPROTO_IP, unix.IP_TOS, 0x10)
			r.GetInt(fd, unix.IPPROTO_IP, unix.IP_TOS)
			r.SetInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, 2)
			r.SetInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0)
			r.GetInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP)
			r.Sendto(fd, echoRequest(8, 1, "ttl"), 0, v4.lo(0))
			r.waitFor(fd, unix.POLLIN)
			r.recvEcho(fd, 64, 0)
		}),
		sc("udp/send-recv-flags", func(r *rec) {
			a, _ := r.udp(v4)
			b, ba := r.udp(v4)
			r.Sendto(a, []byte("confirm"), unix.MSG_CONFIRM, ba)
			r.Sendto(a, []byte("nosignal"), unix.MSG_NOSIGNAL, ba)
			r.Sendto(a, []byte("eor"), unix.MSG_EOR, ba)
			r.Sendto(a, []byte("oob"), unix.MSG_OOB, ba)
			r.Sendto(a, []byte("dontroute"), unix.MSG_DONTROUTE, ba)
			r.waitFor(b, unix.POLLIN)
			r.Recvfrom(b, 16, unix.MSG_OOB)
			r.Recvfrom(b, 16, unix.MSG_ERRQUEUE)
			r.Recvfrom(b, 16, unix.MSG_CMSG_CLOEXEC)
			r.Recvfrom(b, 16, unix.MSG_DONTWAIT)
			r.Recvfrom(b, 16, unix.MSG_DONTWAIT)
			r.Recvfrom(b, 16, unix.MSG_DONTWAIT)
		}),
		sc("udp/queued-before-connect-kept", func(r *rec) {
			a, aa := r.udp(v4)
			c, _ := r.udp(v4)
			b, ba := r.udp(v4)
			r.Sendto(c, []byte("from c"), 0, ba)
			r.Sendto(a, []byte("from a"), 0, ba)
			r.waitFor(b, unix.POLLIN)
			r.Connect(b, aa)
			r.Recvfrom(b, 16, unix.MSG_DONTWAIT)
			r.Recvfrom(b, 16, unix.MSG_DONTWAIT)
			r.Recvfrom(b, 16, unix.MSG_DONTWAIT)
		}),
		ping("icmp/send-flags", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP)
			r.Sendto(fd, echoRequest(8, 1, "oob"), unix.MSG_OOB, v4.lo(0))
			r.Sendto(fd, echoRequest(8, 2, "dw"), unix.MSG_DONTWAIT, v4.lo(0))
			r.Sendto(fd, echoRequest(8, 3, "v6addr"), 0, v6.lo(0))
			r.waitFor(fd, unix.POLLIN)
			r.recvEcho(fd, 64, unix.MSG_ERRQUEUE)
			r.recvEcho(fd, 64, 0)
		}),
		sc("opt/multicast-ttl-loop", func(r *rec) {
			// What mDNS/SSDP-style programs set before joining a group.
			fd := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.GetInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL)
			r.GetInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP)
			for _, v := range []int{4, 256, -2, -1, 0, 255} {
				r.SetInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, v)
				r.GetInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL)
			}
			for _, v := range []int{0, 5, -1} {
				r.SetInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, v)
				r.GetInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP)
			}
			t := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
			r.SetInt(t, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, 4)
			r.GetInt(t, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL)
			r.SetInt(t, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0)
			r.GetInt(t, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP)
			s := r.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0)
			r.GetInt(s, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS)
			r.GetInt(s, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP)
			for _, v := range []int{7, 256, -2, -1, 0} {
				r.SetInt(s, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, v)
				r.GetInt(s, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS)
			}
			for _, v := range []int{0, 2, -1, 1} {
				r.SetInt(s, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, v)
				r.GetInt(s, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP)
			}
			r.SetInt(s, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, 9)
			r.GetInt(s, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL)
			r.GetInt(s, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS)
			u := r.Socket(unix.AF_INET6, unix.SOCK_STREAM, 0)
			r.SetInt(u, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, 3)
			r.GetInt(u, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS)
			r.SetInt(u, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0)
			r.GetInt(u, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP)
		}),
		sc("udp/shutdown-wr-unconnected-epipe", func(r *rec) {
			// ENOTCONN, yet SEND_SHUTDOWN is set: later sends are EPIPE.
			u := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			r.Shutdown(u, unix.SHUT_WR)
			r.Sendto(u, []byte("x"), 0, v4.lo(9))
			r.Sendto(u, nil, unix.MSG_MORE, v4.lo(9))
			r.Sendto(u, make([]byte, 65508), 0, v4.lo(9))
			_, ba := r.udp(v4)
			r.Connect(u, ba)
			r.Send(u, []byte("y"), 0)
		}),
		ping("icmp/shutdown-wr-unconnected-epipe", func(r *rec) {
			fd := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP)
			r.Bind(fd, v4.any(0))
			r.Shutdown(fd, unix.SHUT_WR)
			r.Sendto(fd, echoRequest(8, 1, "x"), 0, v4.lo(0))
			r.Sendto(fd, echoRequest(8, 2, "x"), unix.MSG_MORE, v4.lo(0))
		}),
		ping("icmp/v6-socket-v4-sockaddr", func(r *rec) {
			fd := r.Socket(unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_ICMPV6)
			r.Bind(fd, v6.lo(0))
			r.Sendto(fd, echoRequest(128, 1, "x"), 0, v4.lo(0))
			r.Connect(fd, v4.lo(0))
			r.Getpeername(fd)
		}),
		ping("icmp/bind-same-identifier", func(r *rec) {
			a := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP)
			r.Bind(a, v4.lo(0))
			sa := r.Getsockname(a)
			b := r.Socket(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP)
			r.Bind(b, sa)
		}),
	}
	return out
}
