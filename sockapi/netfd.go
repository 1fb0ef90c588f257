//go:build linux

package sockapi

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// This file holds what the Go net adapters (TCPConn, TCPListener, UDPConn)
// share: a descriptor's lifetime and its deadlines. It plays the part of
// Go's internal/poll.FD for descriptors of a Sockets.
//
// Adapter descriptors are blocking; an operation calls the socket call's
// internal form with waitOpts, so it waits the one way every call waits
// (block), under the adapter's deadline and with a cancel channel that is
// closed whenever that deadline changes or Close begins. The operation
// then retries under the new deadline, or fails with net.ErrClosed.

// netFD is one descriptor of a Sockets used by a Go net adapter. It owns
// the descriptor: Close closes it, once, after every operation in flight
// has returned, so that a racing operation never reaches a descriptor
// number that a later Socket call has reused.
type netFD struct {
	s     *Sockets
	fd    int
	entry *fdEntry // fd's entry when wrapped; another entry means fd was closed and reused
	net   string   // "tcp", "tcp6", "udp4", ...
	laddr net.Addr // fixed when the descriptor is wrapped
	raddr net.Addr // nil for an unconnected UDP socket or a listener

	// life is held shared by every operation and exclusively by Close.
	life    sync.RWMutex
	closing atomic.Bool // set when Close begins; operations then fail with net.ErrClosed
	closed  bool        // guarded by life; the descriptor is closed

	rmu, wmu sync.Mutex // serialize readers and writers, as internal/poll does
	rd, wd   netDeadline
}

func newNetFD(s *Sockets, fd int, network string, laddr, raddr net.Addr) *netFD {
	entry, _ := s.fds.get(fd)
	return &netFD{s: s, fd: fd, entry: entry, net: network, laddr: laddr, raddr: raddr,
		rd: newNetDeadline(), wd: newNetDeadline()}
}

// acquire admits an operation, or returns net.ErrClosed after Close, or
// EBADF if the descriptor was closed behind the adapter's back
// (Sockets.Close or CloseAll): its number may now belong to another
// socket, which the operation must not touch.
func (f *netFD) acquire() error {
	f.life.RLock()
	if f.closed || f.closing.Load() {
		f.life.RUnlock()
		return net.ErrClosed
	}
	if !f.current() {
		f.life.RUnlock()
		return unix.EBADF
	}
	return nil
}

// current reports whether f.fd still refers to the descriptor f wrapped.
func (f *netFD) current() bool {
	e, err := f.s.fds.get(f.fd)
	return err == nil && e == f.entry
}

func (f *netFD) release() { f.life.RUnlock() }

// Close wakes every operation blocked on f, waits for them to return and
// closes the descriptor. Later calls return net.ErrClosed.
func (f *netFD) Close() error {
	if f.closing.Swap(true) {
		return net.ErrClosed
	}
	f.rd.kick()
	f.wd.kick()
	f.life.Lock()
	defer f.life.Unlock()
	f.closed = true
	if !f.current() {
		return netSysErr("close", unix.EBADF)
	}
	return netSysErr("close", f.s.Close(f.fd))
}

// check reports why an operation must stop before its next try: f is
// closing (net.ErrClosed) or the deadline dl has passed
// (os.ErrDeadlineExceeded). nil means try.
func (f *netFD) check(dl time.Time) error {
	if f.closing.Load() {
		return net.ErrClosed
	}
	if !dl.IsZero() && !time.Now().Before(dl) {
		return os.ErrDeadlineExceeded
	}
	return nil
}

// do runs call under the deadline d until it returns something other
// than a wake-up: EINTR when the deadline changed or Close began, EAGAIN
// when the deadline passed (check then says which). call's errno is
// returned bare; the caller wraps it.
func (f *netFD) do(d *netDeadline, call func(wo waitOpts) error) error {
	for {
		dl, wake := d.get()
		if err := f.check(dl); err != nil {
			return err
		}
		err := call(waitOpts{deadline: dl, cancel: wake})
		switch {
		case err == unix.EINTR:
		case err == unix.EAGAIN && !dl.IsZero() && !time.Now().Before(dl):
		case err == unix.EBADF && f.closing.Load():
			return net.ErrClosed
		default:
			return err
		}
	}
}

// read is one read-side operation: call does it and returns a count.
func (f *netFD) read(call func(wo waitOpts) (int, error)) (int, error) {
	if err := f.acquire(); err != nil {
		return 0, err
	}
	defer f.release()
	f.rmu.Lock()
	defer f.rmu.Unlock()
	var n int
	err := f.do(&f.rd, func(wo waitOpts) (err error) {
		n, err = call(wo)
		return err
	})
	if err != nil {
		n = 0
	}
	return n, err
}

// writeAll sends all of p with send, which may stop early (a wake-up
// after partial progress), and calls it again for the rest. It returns
// how much was written before any error, as net.Conn's Write must.
func (f *netFD) writeAll(p []byte, send func(p []byte, wo waitOpts) (int, error)) (int, error) {
	if err := f.acquire(); err != nil {
		return 0, err
	}
	defer f.release()
	f.wmu.Lock()
	defer f.wmu.Unlock()
	written := 0
	for {
		err := f.do(&f.wd, func(wo waitOpts) error {
			n, err := send(p[written:], wo)
			if n > 0 {
				written += n
			}
			return err
		})
		if err != nil || written == len(p) {
			return written, err
		}
	}
}

func (f *netFD) setDeadline(d *netDeadline, t time.Time) error {
	if f.closing.Load() {
		return net.ErrClosed
	}
	d.set(t)
	return nil
}

// netDeadline is one direction's deadline. Changing it wakes the operations
// waiting under the old one, which then retry under the new one: that is
// how a deadline set in the past aborts a blocked Read, which net/http
// relies on.
type netDeadline struct {
	mu   sync.Mutex
	t    time.Time     // guarded by mu; zero means none
	wake chan struct{} // guarded by mu; closed and replaced on every change
}

func newNetDeadline() netDeadline { return netDeadline{wake: make(chan struct{})} }

func (d *netDeadline) get() (time.Time, <-chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.t, d.wake
}

func (d *netDeadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.t = t
	d.wakeLocked()
}

// kick wakes the waiters without changing the deadline.
func (d *netDeadline) kick() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.wakeLocked()
}

func (d *netDeadline) wakeLocked() {
	close(d.wake)
	d.wake = make(chan struct{})
}

// netSysErr wraps an errno in an *os.SyscallError naming the call, as Go's
// net package does; other errors (net.ErrClosed, deadlines) pass through.
func netSysErr(call string, err error) error {
	if errno, ok := err.(unix.Errno); ok {
		return os.NewSyscallError(call, errno)
	}
	return err
}

// setErr wraps a failure of a setter every conn has (deadlines, buffer
// sizes) as the net package's conn does: with the local address alone
// (net/net.go); the TCP option setters name both ends (net/tcpsock.go).
func (f *netFD) setErr(err error) error { return netOpErr("set", f.net, nil, f.laddr, err) }

// wrapSet is setErr for netFD.setsockopt.
func (f *netFD) wrapSet(op string, err error) error { return f.setErr(err) }

// netOpErr wraps err as Go's net package does, or returns nil.
func netOpErr(op, network string, source, addr net.Addr, err error) error {
	if err == nil {
		return nil
	}
	return &net.OpError{Op: op, Net: network, Source: source, Addr: addr, Err: err}
}
