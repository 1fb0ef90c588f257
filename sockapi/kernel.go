//go:build linux

package sockapi

import (
	"time"

	"golang.org/x/sys/unix"
)

// kernelAPI is API over the host kernel: every call is the x/sys/unix call
// of the same name on a real kernel descriptor. It exists so that code and
// tests written against API run unchanged on the host's own stack, and so
// that the userspace implementation can be compared with Linux itself.
//
// Differences from calling x/sys/unix directly, each one deliberate:
//
//   - Every socket it creates (Socket, Accept, Accept4) has SOCK_CLOEXEC,
//     so descriptors never leak into child processes.
//   - Write, Send and Sendto pass MSG_NOSIGNAL: a write on a connection
//     whose peer has gone returns EPIPE instead of raising SIGPIPE
//     (send(2)). Write is sendmsg(2) for that reason; on a descriptor that
//     is not a socket it falls back to write(2).
//   - A call interrupted by a signal (EINTR) is retried. The Go runtime's
//     preemption signal can interrupt a socket call that has SO_RCVTIMEO or
//     SO_SNDTIMEO set, and poll-like calls, which SA_RESTART never restarts
//     (signal(7), "Interruption of system calls"). Poll, Select and
//     EpollWait retry with what is left of their timeout; a socket call
//     retried after EINTR starts its SO_RCVTIMEO/SO_SNDTIMEO afresh, so a
//     signal can lengthen that wait, never cut it short. An interrupted
//     blocking Connect goes on in the background, so it waits for
//     writability and reports SO_ERROR, as Go's net package does.
//
// Blocking calls are plain system calls: the runtime hands the blocked
// thread's P to other goroutines (see runtime.entersyscall), so a blocked
// call costs a thread, not the scheduler.
//
// Close while another goroutine is blocked on the same descriptor: Close
// itself returns at once, as close(2) does. Linux does not wake the blocked
// call: it holds its own reference to the socket, which stays open until
// that call returns on its own (data, a timeout, the peer closing), and
// close(2) says so ("it is probably unwise to close file descriptors while
// they may be in use by system calls in other threads"). The userspace
// implementation instead wakes the blocked call with EBADF; that is one of
// the differences listed in docs/kernel.md. Code that must wake a blocked
// kernel call calls Shutdown first, which wakes it on Linux.
//
// Getaddrinfo and Getnameinfo are the host resolver's (hostResolver).
type kernelAPI struct {
	hostResolver
}

// Kernel returns API over the host kernel's sockets.
func Kernel() API { return kernelAPI{} }

var _ API = kernelAPI{}

// retryEINTR calls f until it fails with something other than EINTR.
func retryEINTR(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}

func (kernelAPI) Socket(domain, typ, proto int) (fd int, err error) {
	return unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto)
}

// Bind is bind(2). A nil address (or nil pointer) is bind(fd, NULL, 0),
// which x/sys cannot express (it would dereference it).
func (kernelAPI) Bind(fd int, sa unix.Sockaddr) error {
	sa, err := checkSockaddr(sa)
	if err != nil {
		return err
	}
	if sa == nil {
		return nullAddr(unix.SYS_BIND, fd)
	}
	return unix.Bind(fd, sa)
}

// nullAddr makes the call trap (bind or connect) on fd with a NULL
// address of length 0; the kernel answers EBADF, ENOTSOCK or EINVAL.
func nullAddr(trap uintptr, fd int) error {
	if _, _, e := unix.Syscall(trap, uintptr(fd), 0, 0); e != 0 {
		return e
	}
	return nil
}

func (kernelAPI) Listen(fd int, backlog int) error { return unix.Listen(fd, backlog) }

func (k kernelAPI) Accept(fd int) (nfd int, sa unix.Sockaddr, err error) {
	return k.Accept4(fd, 0)
}

func (kernelAPI) Accept4(fd int, flags int) (nfd int, sa unix.Sockaddr, err error) {
	err = retryEINTR(func() (e error) {
		nfd, sa, e = unix.Accept4(fd, flags|unix.SOCK_CLOEXEC)
		return e
	})
	return nfd, sa, err
}

// Connect is connect(2). If a blocking connect is interrupted, the
// handshake goes on in the kernel; Connect waits for it as Linux's own
// restart would and returns its outcome from SO_ERROR. A nil address is
// connect(fd, NULL, 0), as in Bind.
func (kernelAPI) Connect(fd int, sa unix.Sockaddr) error {
	sa, err := checkSockaddr(sa)
	if err != nil {
		return err
	}
	if sa == nil {
		return nullAddr(unix.SYS_CONNECT, fd)
	}
	err = unix.Connect(fd, sa)
	if err != unix.EINTR {
		return err
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	if err := retryEINTR(func() error { _, e := unix.Poll(pfd, -1); return e }); err != nil {
		return err
	}
	soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return err
	}
	if soerr != 0 {
		return unix.Errno(soerr)
	}
	return nil
}

func (kernelAPI) Read(fd int, p []byte) (n int, err error) {
	err = retryEINTR(func() (e error) { n, e = unix.Read(fd, p); return e })
	return n, err
}

// Write is send(2) with MSG_NOSIGNAL on a socket and write(2) otherwise
// (an epoll descriptor, say, where write(2) fails with EINVAL).
func (k kernelAPI) Write(fd int, p []byte) (n int, err error) {
	n, err = k.Send(fd, p, 0)
	if err == unix.ENOTSOCK {
		err = retryEINTR(func() (e error) { n, e = unix.Write(fd, p); return e })
	}
	return n, err
}

func (kernelAPI) Send(fd int, p []byte, flags int) (n int, err error) {
	err = retryEINTR(func() (e error) {
		n, e = unix.SendmsgN(fd, p, nil, nil, flags|unix.MSG_NOSIGNAL)
		return e
	})
	return n, err
}

func (kernelAPI) Recv(fd int, p []byte, flags int) (n int, err error) {
	err = retryEINTR(func() (e error) { n, _, e = unix.Recvfrom(fd, p, flags); return e })
	return n, err
}

func (kernelAPI) Sendto(fd int, p []byte, flags int, to unix.Sockaddr) error {
	to, err := checkSockaddr(to)
	if err != nil {
		return err
	}
	return retryEINTR(func() error { return unix.Sendto(fd, p, flags|unix.MSG_NOSIGNAL, to) })
}

func (kernelAPI) Recvfrom(fd int, p []byte, flags int) (n int, from unix.Sockaddr, err error) {
	err = retryEINTR(func() (e error) { n, from, e = unix.Recvfrom(fd, p, flags); return e })
	return n, from, err
}

func (kernelAPI) Shutdown(fd int, how int) error { return unix.Shutdown(fd, how) }

// Close is close(2). It is never retried on EINTR: Linux has released the
// descriptor even then, and a retry could close a number reused meanwhile.
func (kernelAPI) Close(fd int) error { return unix.Close(fd) }

func (kernelAPI) Getsockname(fd int) (unix.Sockaddr, error) { return unix.Getsockname(fd) }

func (kernelAPI) Getpeername(fd int) (unix.Sockaddr, error) { return unix.Getpeername(fd) }

func (kernelAPI) SetsockoptInt(fd, level, opt, value int) error {
	return unix.SetsockoptInt(fd, level, opt, value)
}

func (kernelAPI) GetsockoptInt(fd, level, opt int) (int, error) {
	return unix.GetsockoptInt(fd, level, opt)
}

func (kernelAPI) SetsockoptLinger(fd, level, opt int, l *unix.Linger) error {
	return unix.SetsockoptLinger(fd, level, opt, l)
}

func (kernelAPI) SetsockoptTimeval(fd, level, opt int, tv *unix.Timeval) error {
	return unix.SetsockoptTimeval(fd, level, opt, tv)
}

func (kernelAPI) SetNonblock(fd int, nonblocking bool) error {
	return unix.SetNonblock(fd, nonblocking)
}

func (kernelAPI) Fcntl(fd int, cmd int, arg int) (int, error) {
	return unix.FcntlInt(uintptr(fd), cmd, arg)
}

// Poll is poll(2); a negative timeout waits for ever.
func (kernelAPI) Poll(fds []unix.PollFd, timeout int) (n int, err error) {
	d := newKernelDeadline(timeout)
	err = retryEINTR(func() (e error) { n, e = unix.Poll(fds, d.left()); return e })
	return n, err
}

// Select is select(2). On Linux select updates timeout to the time not
// slept; so does this, retries included.
func (kernelAPI) Select(nfd int, r *unix.FdSet, w *unix.FdSet, e *unix.FdSet, timeout *unix.Timeval) (n int, err error) {
	// select(2) may have cleared the sets before it was interrupted, so
	// every retry starts from the caller's sets.
	var r0, w0, e0 unix.FdSet
	save := func(dst *unix.FdSet, src *unix.FdSet) {
		if src != nil {
			*dst = *src
		}
	}
	load := func(dst *unix.FdSet, src *unix.FdSet) {
		if dst != nil {
			*dst = *src
		}
	}
	save(&r0, r)
	save(&w0, w)
	save(&e0, e)
	err = retryEINTR(func() (er error) {
		load(r, &r0)
		load(w, &w0)
		load(e, &e0)
		n, er = unix.Select(nfd, r, w, e, timeout)
		return er
	})
	return n, err
}

func (kernelAPI) EpollCreate1(flag int) (fd int, err error) {
	return unix.EpollCreate1(flag | unix.EPOLL_CLOEXEC)
}

func (kernelAPI) EpollCtl(epfd int, op int, fd int, event *unix.EpollEvent) error {
	return unix.EpollCtl(epfd, op, fd, event)
}

func (kernelAPI) EpollWait(epfd int, events []unix.EpollEvent, msec int) (n int, err error) {
	d := newKernelDeadline(msec)
	err = retryEINTR(func() (e error) { n, e = unix.EpollWait(epfd, events, d.left()); return e })
	return n, err
}

// kernelDeadline turns a poll(2)-style millisecond timeout into what is left of
// it on each retry.
type kernelDeadline struct {
	forever bool
	at      time.Time
}

func newKernelDeadline(ms int) kernelDeadline {
	if ms < 0 {
		return kernelDeadline{forever: true}
	}
	return kernelDeadline{at: time.Now().Add(time.Duration(ms) * time.Millisecond)}
}

// left returns the milliseconds left, rounded up, -1 for no timeout.
func (d kernelDeadline) left() int {
	if d.forever {
		return -1
	}
	left := time.Until(d.at)
	if left <= 0 {
		return 0
	}
	return int((left + time.Millisecond - 1) / time.Millisecond)
}
