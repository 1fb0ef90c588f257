package relay

import "golang.org/x/sys/unix"

const (
	// msgMore asks the kernel to hold a write for the next one.
	msgMore = unix.MSG_MORE
	// ioctlInq reads the bytes waiting in a socket's receive queue.
	ioctlInq = unix.SIOCINQ
)
