//go:build linux

package sockapi

import (
	"io"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// TCPConn is a connected TCP socket of a Sockets as a net.Conn, returned
// by Dialer.DialContext and TCPListener.Accept. It owns its descriptor;
// Close closes it. Its methods are safe for concurrent use, and its errors
// are *net.OpError values wrapping an *os.SyscallError (errors.Is(err,
// unix.ECONNRESET) works), net.ErrClosed or os.ErrDeadlineExceeded, as the
// net package's TCPConn returns.
type TCPConn struct {
	fd *netFD
}

var _ net.Conn = (*TCPConn)(nil)

// Read reads from the connection; at end of stream it returns io.EOF.
func (c *TCPConn) Read(b []byte) (int, error) {
	f := c.fd
	if len(b) == 0 {
		// As the net package: a zero-length read returns at once.
		return 0, c.err("read", f.check(time.Time{}))
	}
	n, err := f.read(func(wo waitOpts) (int, error) {
		n, _, err := f.s.recvfrom(f.fd, b, 0, wo)
		return n, err
	})
	if err == nil && n == 0 {
		return 0, io.EOF
	}
	return n, c.err("read", netSysErr("read", err))
}

// Write writes all of b unless an error, such as a deadline, stops it; it
// returns how many bytes were written.
func (c *TCPConn) Write(b []byte) (int, error) {
	f := c.fd
	n, err := f.writeAll(b, func(p []byte, wo waitOpts) (int, error) {
		return f.s.sendto(f.fd, p, 0, nil, wo)
	})
	return n, c.err("write", netSysErr("write", err))
}

// Close closes the connection, waking any Read or Write blocked on it.
func (c *TCPConn) Close() error { return c.err("close", c.fd.Close()) }

// CloseRead shuts down the reading side (shutdown(2) SHUT_RD).
func (c *TCPConn) CloseRead() error { return c.shutdown(unix.SHUT_RD) }

// CloseWrite shuts down the writing side (shutdown(2) SHUT_WR): the peer
// reads EOF once it has read what was sent.
func (c *TCPConn) CloseWrite() error { return c.shutdown(unix.SHUT_WR) }

func (c *TCPConn) shutdown(how int) error {
	f := c.fd
	if err := f.acquire(); err != nil {
		return c.err("close", err)
	}
	defer f.release()
	return c.err("close", netSysErr("shutdown", f.s.Shutdown(f.fd, how)))
}

// LocalAddr returns the local address, a *net.TCPAddr.
func (c *TCPConn) LocalAddr() net.Addr { return c.fd.laddr }

// RemoteAddr returns the peer's address, a *net.TCPAddr.
func (c *TCPConn) RemoteAddr() net.Addr { return c.fd.raddr }

// SetDeadline sets the read and write deadlines. A deadline change takes
// effect on calls already blocked: a deadline in the past makes them
// return an error satisfying os.ErrDeadlineExceeded at once.
func (c *TCPConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline for Read calls, current and future.
func (c *TCPConn) SetReadDeadline(t time.Time) error {
	return c.fd.setErr(c.fd.setDeadline(&c.fd.rd, t))
}

// SetWriteDeadline sets the deadline for Write calls, current and future.
func (c *TCPConn) SetWriteDeadline(t time.Time) error {
	return c.fd.setErr(c.fd.setDeadline(&c.fd.wd, t))
}

// SetNoDelay sets TCP_NODELAY: with noDelay true (the default, as in Go's
// net package) small writes are sent at once instead of being coalesced.
func (c *TCPConn) SetNoDelay(noDelay bool) error {
	return c.setsockopt(unix.IPPROTO_TCP, unix.TCP_NODELAY, netBool(noDelay))
}

// SetKeepAlive sets SO_KEEPALIVE.
func (c *TCPConn) SetKeepAlive(keepalive bool) error {
	return c.setsockopt(unix.SOL_SOCKET, unix.SO_KEEPALIVE, netBool(keepalive))
}

// netDefaultKeepAlive is the net package's keep-alive period when none is
// given (defaultTCPKeepAliveIdle).
const netDefaultKeepAlive = 15 * time.Second

// SetKeepAlivePeriod sets the idle time before the first keep-alive probe
// and the interval between probes (TCP_KEEPIDLE and TCP_KEEPINTVL), in
// whole seconds rounded up, as the net package's does: 0 means 15s, and
// a negative period leaves them unchanged.
func (c *TCPConn) SetKeepAlivePeriod(d time.Duration) error {
	if d < 0 {
		return nil
	}
	if d == 0 {
		d = netDefaultKeepAlive
	}
	secs := int((d + time.Second - 1) / time.Second)
	if err := c.setsockopt(unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, secs); err != nil {
		return err
	}
	return c.setsockopt(unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, secs)
}

// SetReadBuffer sets the receive buffer size (SO_RCVBUF).
func (c *TCPConn) SetReadBuffer(bytes int) error {
	return c.fd.setsockopt(unix.SOL_SOCKET, unix.SO_RCVBUF, bytes, c.fd.wrapSet)
}

// SetWriteBuffer sets the send buffer size (SO_SNDBUF).
func (c *TCPConn) SetWriteBuffer(bytes int) error {
	return c.fd.setsockopt(unix.SOL_SOCKET, unix.SO_SNDBUF, bytes, c.fd.wrapSet)
}

// SetLinger sets SO_LINGER, as the net package's TCPConn.SetLinger: with
// sec < 0 (the default) Close returns at once and unsent data is sent in
// the background; with 0, Close discards it and resets the connection
// (RST); with sec > 0, Close waits up to sec seconds for it to be sent.
func (c *TCPConn) SetLinger(sec int) error {
	var l unix.Linger
	if sec >= 0 {
		l = unix.Linger{Onoff: 1, Linger: int32(sec)}
	}
	f := c.fd
	if err := f.acquire(); err != nil {
		return c.err("set", err)
	}
	defer f.release()
	return c.err("set", netSysErr("setsockopt", f.s.SetsockoptLinger(f.fd, unix.SOL_SOCKET, unix.SO_LINGER, &l)))
}

func (c *TCPConn) setsockopt(level, opt, value int) error {
	return c.fd.setsockopt(level, opt, value, c.err)
}

// err wraps a failure of op as the net package's TCPConn does.
func (c *TCPConn) err(op string, err error) error {
	return netOpErr(op, c.fd.net, c.fd.laddr, c.fd.raddr, err)
}

func (f *netFD) setsockopt(level, opt, value int, wrap func(string, error) error) error {
	if err := f.acquire(); err != nil {
		return wrap("set", err)
	}
	defer f.release()
	return wrap("set", netSysErr("setsockopt", f.s.SetsockoptInt(f.fd, level, opt, value)))
}

func netBool(b bool) int {
	if b {
		return 1
	}
	return 0
}
