//go:build linux

package sockapi

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ListenConfig creates listeners and packet sockets on the userspace stack
// of a Sockets, as net.ListenConfig does over the kernel.
type ListenConfig struct {
	// Sockets is the socket layer the sockets are made on. Required.
	Sockets *Sockets
	// Backlog is listen(2)'s backlog; 0 means 4096, Linux's default
	// net.core.somaxconn, which is what the net package passes.
	Backlog int
	// KeepAlive is the keep-alive period of accepted TCP connections, as
	// net.ListenConfig's: 0 means 15s, a negative value turns them off.
	KeepAlive time.Duration
}

// netDefaultBacklog is Linux's default somaxconn (since 5.4), which Go's net
// package reads from /proc/sys/net/core/somaxconn.
const netDefaultBacklog = 4096

func (lc *ListenConfig) check(op, network string) (netSpec, error) {
	if lc.Sockets == nil {
		return netSpec{}, errors.New("sockapi: ListenConfig.Sockets is nil")
	}
	if lc.Backlog < 0 {
		return netSpec{}, errors.New("sockapi: ListenConfig.Backlog is negative")
	}
	nw, err := parseNetSpec(network)
	if err == nil && (op == "listen") != (nw.proto == "tcp") {
		err = net.UnknownNetworkError(network)
	}
	return nw, err
}

// Listen listens on address, "host:port" (see Dialer.DialContext), for
// network "tcp", "tcp4" or "tcp6". An empty or unspecified host with
// "tcp" listens on both IPv4 and IPv6 (a dual-stack AF_INET6 socket), as
// the net package does; port 0 picks a free port (see Addr).
func (lc *ListenConfig) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	nw, err := lc.check("listen", network)
	if err != nil {
		return nil, netOpErr("listen", network, nil, nil, err)
	}
	fd, local, err := lc.bind(ctx, nw, address)
	if err != nil {
		return nil, netOpErr("listen", network, nil, nw.netAddr(local), err)
	}
	backlog := lc.Backlog
	if backlog == 0 {
		backlog = netDefaultBacklog
	}
	if err := lc.Sockets.Listen(fd, backlog); err != nil {
		lc.Sockets.Close(fd)
		return nil, netOpErr("listen", network, nil, nw.netAddr(local), os.NewSyscallError("listen", err))
	}
	lsa, _ := lc.Sockets.Getsockname(fd)
	return &TCPListener{fd: newNetFD(lc.Sockets, fd, nw.name, lc.Sockets.netTCPAddr(lsa), nil), keepAlive: lc.KeepAlive}, nil
}

// bind resolves address and returns a new socket bound to it.
func (lc *ListenConfig) bind(ctx context.Context, nw netSpec, address string) (int, netip.AddrPort, error) {
	s := lc.Sockets
	addrs, err := s.netResolve(ctx, nw, address, true)
	if err != nil {
		return -1, netip.AddrPort{}, err
	}
	local := addrs[0]
	fd, family, err := s.netListenSocket(nw, local)
	if err != nil {
		return -1, local, err
	}
	sa, err := s.netSockaddr(family, local)
	if err == nil {
		err = s.Bind(fd, sa)
		err = netSysErr("bind", err)
	}
	if err != nil {
		s.Close(fd)
		return -1, local, err
	}
	return fd, local, nil
}

// netListenSocket opens the socket a listener on local uses: for a wildcard
// without a family, a dual-stack AF_INET6 socket, or AF_INET where the
// stack has no IPv6 (EAFNOSUPPORT), as the net package chooses.
func (s *Sockets) netListenSocket(nw netSpec, local netip.AddrPort) (int, int, error) {
	a := local.Addr()
	family := nw.family
	switch {
	case family != 0:
	case !a.IsValid() || a.IsUnspecified():
		family = unix.AF_INET6
		fd, err := s.netOpenSocket(nw, family, true)
		if !errors.Is(err, unix.EAFNOSUPPORT) {
			return fd, family, err
		}
		family = unix.AF_INET
	case a.Is4():
		family = unix.AF_INET
	default:
		family = unix.AF_INET6
	}
	fd, err := s.netOpenSocket(nw, family, true)
	return fd, family, err
}

// TCPListener is a listening TCP socket of a Sockets as a net.Listener,
// returned by ListenConfig.Listen. It owns its descriptor; Close closes it
// and wakes a blocked Accept, which then returns net.ErrClosed (wrapped in
// a *net.OpError), as net/http's Server expects on shutdown.
type TCPListener struct {
	fd        *netFD
	keepAlive time.Duration // ListenConfig.KeepAlive
}

var _ net.Listener = (*TCPListener)(nil)

// Accept waits for and returns the next connection, a *TCPConn.
func (l *TCPListener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	return c, nil
}

// AcceptTCP is Accept returning the concrete type.
func (l *TCPListener) AcceptTCP() (*TCPConn, error) {
	f := l.fd
	var nfd int
	_, err := f.read(func(wo waitOpts) (int, error) {
		for {
			var err error
			nfd, _, err = f.s.accept(f.fd, unix.SOCK_CLOEXEC, wo)
			// As the net package: a connection reset while queued is
			// skipped, not reported.
			if err != unix.ECONNABORTED {
				return 0, err
			}
		}
	})
	if err != nil {
		return nil, netOpErr("accept", f.net, nil, f.laddr, netSysErr("accept", err))
	}
	nw, _ := parseNetSpec(f.net)
	return f.s.wrapConnected(nfd, nw, l.keepAlive).(*TCPConn), nil
}

// Close stops listening; connections already accepted stay open.
func (l *TCPListener) Close() error {
	return netOpErr("close", l.fd.net, nil, l.fd.laddr, l.fd.Close())
}

// Addr returns the listening address, a *net.TCPAddr with the port
// chosen when the address asked for port 0.
func (l *TCPListener) Addr() net.Addr { return l.fd.laddr }

// SetDeadline sets the deadline for Accept calls, current and future.
func (l *TCPListener) SetDeadline(t time.Time) error {
	return netOpErr("set", l.fd.net, nil, l.fd.laddr, l.fd.setDeadline(&l.fd.rd, t))
}
