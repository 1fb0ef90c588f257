package tun

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// readv and writev without the allocations of unix.Readv/Writev, which
// build a fresh []Iovec on each call: the endpoint keeps its iovecs.

func readv(fd uintptr, iov []unix.Iovec) (int, unix.Errno) {
	n, _, errno := unix.Syscall(unix.SYS_READV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	return int(n), errno
}

func writev(fd uintptr, iov []unix.Iovec) (int, unix.Errno) {
	n, _, errno := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	return int(n), errno
}
