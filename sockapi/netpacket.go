//go:build linux

package sockapi

import (
	"context"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// UDPConn is a UDP socket of a Sockets as a net.PacketConn, returned by
// ListenConfig.ListenPacket, and as a net.Conn when connected, returned by
// Dialer.DialContext. It owns its descriptor; Close closes it. Its methods
// are safe for concurrent use and fail as the net package's UDPConn does.
type UDPConn struct {
	fd *netFD
}

var (
	_ net.PacketConn = (*UDPConn)(nil)
	_ net.Conn       = (*UDPConn)(nil)
)

// ListenPacket opens a UDP socket bound to address, "host:port" (see
// Dialer.DialContext), for network "udp", "udp4" or "udp6". An empty or
// unspecified host with "udp" receives IPv4 and IPv6 datagrams.
func (lc *ListenConfig) ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error) {
	nw, err := lc.check("listenpacket", network)
	if err != nil {
		return nil, netOpErr("listen", network, nil, nil, err)
	}
	fd, local, err := lc.bind(ctx, nw, address)
	if err != nil {
		return nil, netOpErr("listen", network, nil, nw.netAddr(local), err)
	}
	lsa, _ := lc.Sockets.Getsockname(fd)
	return &UDPConn{fd: newNetFD(lc.Sockets, fd, nw.name, lc.Sockets.netUDPAddrOrNil(lsa), nil)}, nil
}

// Read reads one datagram from the connected peer into b; the rest of a
// longer datagram is discarded. A zero-length datagram reads as 0, nil.
func (c *UDPConn) Read(b []byte) (int, error) {
	f := c.fd
	if len(b) == 0 {
		return 0, c.err("read", nil, f.check(time.Time{}))
	}
	n, err := f.read(func(wo waitOpts) (int, error) {
		n, _, err := f.s.recvfrom(f.fd, b, 0, wo)
		return n, err
	})
	return n, c.err("read", nil, netSysErr("read", err))
}

// ReadFrom reads one datagram into b and returns its length and sender,
// a *net.UDPAddr.
func (c *UDPConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromUDP(b)
	if from == nil {
		return n, nil, err
	}
	return n, from, err
}

// ReadFromUDP is ReadFrom returning the concrete address type.
func (c *UDPConn) ReadFromUDP(b []byte) (int, *net.UDPAddr, error) {
	f := c.fd
	var from unix.Sockaddr
	n, err := f.read(func(wo waitOpts) (n int, err error) {
		n, from, err = f.s.recvfrom(f.fd, b, 0, wo)
		return n, err
	})
	if err != nil {
		return 0, nil, c.err("read", nil, netSysErr("recvfrom", err))
	}
	return n, f.s.netUDPAddr(from), nil
}

// Write sends b as one datagram to the connected peer.
func (c *UDPConn) Write(b []byte) (int, error) {
	f := c.fd
	n, err := f.writeAll(b, func(p []byte, wo waitOpts) (int, error) {
		return f.s.sendto(f.fd, p, 0, nil, wo)
	})
	return n, c.err("write", nil, netSysErr("write", err))
}

// WriteTo sends b as one datagram to addr, a *net.UDPAddr. On a connected
// UDPConn it fails with net.ErrWriteToConnected, as the net package's.
func (c *UDPConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, c.err("write", addr, unix.EINVAL)
	}
	return c.WriteToUDP(b, ua)
}

// WriteToUDP is WriteTo with the concrete address type.
func (c *UDPConn) WriteToUDP(b []byte, addr *net.UDPAddr) (int, error) {
	f := c.fd
	if f.raddr != nil {
		return 0, c.err("write", addr, net.ErrWriteToConnected)
	}
	if addr == nil {
		return 0, c.err("write", nil, netErrMissingAddress)
	}
	ap, err := netIPPort("sendto", f.family(), addr.IP, addr.Port, addr.Zone)
	if err != nil {
		return 0, c.err("write", addr, err)
	}
	sa, err := f.s.netSockaddr(f.family(), ap)
	if err != nil {
		return 0, c.err("write", addr, err)
	}
	n, err := f.writeAll(b, func(p []byte, wo waitOpts) (int, error) {
		return f.s.sendto(f.fd, p, 0, sa, wo)
	})
	return n, c.err("write", addr, netSysErr("sendto", err))
}

// netErrMissingAddress is the net package's error for a nil destination.
var netErrMissingAddress = &net.AddrError{Err: "missing address"}

// Close closes the socket, waking any call blocked on it.
func (c *UDPConn) Close() error { return c.err("close", nil, c.fd.Close()) }

// LocalAddr returns the local address, a *net.UDPAddr.
func (c *UDPConn) LocalAddr() net.Addr { return c.fd.laddr }

// RemoteAddr returns the connected peer's address, a *net.UDPAddr, or nil.
func (c *UDPConn) RemoteAddr() net.Addr { return c.fd.raddr }

// SetDeadline sets the read and write deadlines, as TCPConn.SetDeadline.
func (c *UDPConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline for reads, current and future.
func (c *UDPConn) SetReadDeadline(t time.Time) error {
	return c.fd.setErr(c.fd.setDeadline(&c.fd.rd, t))
}

// SetWriteDeadline sets the deadline for writes, current and future.
func (c *UDPConn) SetWriteDeadline(t time.Time) error {
	return c.fd.setErr(c.fd.setDeadline(&c.fd.wd, t))
}

// SetReadBuffer sets the receive buffer size (SO_RCVBUF).
func (c *UDPConn) SetReadBuffer(bytes int) error {
	return c.fd.setsockopt(unix.SOL_SOCKET, unix.SO_RCVBUF, bytes, c.fd.wrapSet)
}

// SetWriteBuffer sets the send buffer size (SO_SNDBUF).
func (c *UDPConn) SetWriteBuffer(bytes int) error {
	return c.fd.setsockopt(unix.SOL_SOCKET, unix.SO_SNDBUF, bytes, c.fd.wrapSet)
}

// err wraps a failure as the net package's UDPConn does: the address is
// the peer's, or for WriteTo the destination.
func (c *UDPConn) err(op string, addr net.Addr, err error) error {
	if addr == nil {
		addr = c.fd.raddr
	}
	return netOpErr(op, c.fd.net, c.fd.laddr, addr, err)
}

// family is the socket's address family, told by its local address.
func (f *netFD) family() int {
	var ip net.IP
	switch a := f.laddr.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.TCPAddr:
		ip = a.IP
	}
	if len(ip) == net.IPv4len {
		return unix.AF_INET
	}
	return unix.AF_INET6
}
