package relay

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// writev without the allocation of unix.Writev, which builds a fresh
// []Iovec on each call: copyOut keeps its iovecs.
func writev(fd uintptr, iov []unix.Iovec) (int, unix.Errno) {
	if len(iov) == 0 {
		return 0, 0
	}
	n, _, errno := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	return int(n), errno
}
