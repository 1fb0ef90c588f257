//go:build linux

package sockapi

import (
	"golang.org/x/sys/unix"
)

// Arguments a caller can get wrong: addresses that are nil or whose port
// does not fit. The kernel side is x/sys/unix, so
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
	}
}
