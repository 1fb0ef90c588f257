//go:build linux

// Package sockapi gives programs the BSD socket calls over a userspace
// gVisor stack, with the Linux kernel's semantics and errno values, and the
// same calls over the host kernel, so that code written against API runs on
// either.
//
// Method names, argument order and results follow golang.org/x/sys/unix;
// failures are bare unix.Errno values (compare with == or errors.Is), or an
// *AddrinfoError from Getaddrinfo and Getnameinfo. Descriptors are numbers in
// a table private to each Sockets value; they are not kernel descriptors.
//
// sockapi knows gVisor endpoints and errno, nothing of TUN devices: a
// *stack.Stack is all it needs. Sockets owns the endpoints behind its
// descriptors and closes them in Close; it never closes the stack.
package sockapi

import (
	"golang.org/x/sys/unix"
)

// API is the socket interface implemented over the userspace stack (New)
// and over the host kernel (Kernel).
type API interface {
	Socket(domain, typ, proto int) (fd int, err error)
	Bind(fd int, sa unix.Sockaddr) error
	Listen(fd int, backlog int) error
	Accept(fd int) (nfd int, sa unix.Sockaddr, err error)
	Accept4(fd int, flags int) (nfd int, sa unix.Sockaddr, err error)
	Connect(fd int, sa unix.Sockaddr) error
	Read(fd int, p []byte) (n int, err error)
	Write(fd int, p []byte) (n int, err error)
	Send(fd int, p []byte, flags int) (n int, err error)
	Recv(fd int, p []byte, flags int) (n int, err error)
	Sendto(fd int, p []byte, flags int, to unix.Sockaddr) error
	Recvfrom(fd int, p []byte, flags int) (n int, from unix.Sockaddr, err error)
	Shutdown(fd int, how int) error
	Close(fd int) error
	Getsockname(fd int) (unix.Sockaddr, error)
	Getpeername(fd int) (unix.Sockaddr, error)
	SetsockoptInt(fd, level, opt, value int) error
	GetsockoptInt(fd, level, opt int) (int, error)
	SetsockoptLinger(fd, level, opt int, l *unix.Linger) error
	SetsockoptTimeval(fd, level, opt int, tv *unix.Timeval) error
	SetNonblock(fd int, nonblocking bool) error
	Fcntl(fd int, cmd int, arg int) (int, error)
	Poll(fds []unix.PollFd, timeout int) (n int, err error)
	Select(nfd int, r *unix.FdSet, w *unix.FdSet, e *unix.FdSet, timeout *unix.Timeval) (n int, err error)
	EpollCreate1(flag int) (fd int, err error)
	EpollCtl(epfd int, op int, fd int, event *unix.EpollEvent) error
	EpollWait(epfd int, events []unix.EpollEvent, msec int) (n int, err error)

	Getaddrinfo(node, service string, hints *AddrInfo) ([]AddrInfo, error)
	Getnameinfo(sa unix.Sockaddr, flags int) (host, service string, err error)
}

// AddrInfo is one result of Getaddrinfo, and its hints argument, as struct
// addrinfo in getaddrinfo(3).
type AddrInfo struct {
	Flags     int // AI_* flags (hints only)
	Family    int // unix.AF_INET, unix.AF_INET6 or unix.AF_UNSPEC
	Socktype  int // unix.SOCK_STREAM, unix.SOCK_DGRAM, unix.SOCK_RAW or 0
	Protocol  int // unix.IPPROTO_TCP, unix.IPPROTO_UDP or 0
	Addr      unix.Sockaddr
	Canonname string // set on the first result with AI_CANONNAME
}

// AddrinfoError is a getaddrinfo(3) / getnameinfo(3) failure: an EAI_*
// code, and for EAI_SYSTEM the errno behind it.
type AddrinfoError struct {
	Code  int        // EAI_* value, as glibc's netdb.h numbers them
	Errno unix.Errno // for EAI_SYSTEM
}

// getaddrinfo(3) error codes, with glibc's values.
const (
	EAI_BADFLAGS   = -1
	EAI_NONAME     = -2
	EAI_AGAIN      = -3
	EAI_FAIL       = -4
	EAI_NODATA     = -5
	EAI_FAMILY     = -6
	EAI_SOCKTYPE   = -7
	EAI_SERVICE    = -8
	EAI_ADDRFAMILY = -9
	EAI_MEMORY     = -10
	EAI_SYSTEM     = -11
	EAI_OVERFLOW   = -12
)

// getaddrinfo(3) hint flags, with glibc's values.
const (
	AI_PASSIVE     = 0x0001
	AI_CANONNAME   = 0x0002
	AI_NUMERICHOST = 0x0004
	AI_V4MAPPED    = 0x0008
	AI_ALL         = 0x0010
	AI_ADDRCONFIG  = 0x0020
	AI_NUMERICSERV = 0x0400
)

// getnameinfo(3) flags, with glibc's values.
const (
	NI_NUMERICHOST = 1
	NI_NUMERICSERV = 2
	NI_NOFQDN      = 4
	NI_NAMEREQD    = 8
	NI_DGRAM       = 16
)

// gai_strerror(3) texts, as glibc words them.
var eaiText = map[int]string{
	EAI_BADFLAGS:   "Bad value for ai_flags",
	EAI_NONAME:     "Name or service not known",
	EAI_AGAIN:      "Temporary failure in name resolution",
	EAI_FAIL:       "Non-recoverable failure in name resolution",
	EAI_NODATA:     "No address associated with hostname",
	EAI_FAMILY:     "ai_family not supported",
	EAI_SOCKTYPE:   "ai_socktype not supported",
	EAI_SERVICE:    "Servname not supported for ai_socktype",
	EAI_ADDRFAMILY: "Address family for hostname not supported",
	EAI_MEMORY:     "Memory allocation failure",
	EAI_SYSTEM:     "System error",
	EAI_OVERFLOW:   "Result too large for supplied buffer",
}

func (e *AddrinfoError) Error() string {
	if e.Code == EAI_SYSTEM {
		return eaiText[EAI_SYSTEM] + ": " + e.Errno.Error()
	}
	if s, ok := eaiText[e.Code]; ok {
		return s
	}
	return "Unknown error"
}

// Unwrap returns the errno behind an EAI_SYSTEM error, or nil.
func (e *AddrinfoError) Unwrap() error {
	if e.Code == EAI_SYSTEM && e.Errno != 0 {
		return e.Errno
	}
	return nil
}
