//go:build linux

package sockapi

import "golang.org/x/sys/unix"

// statusSettable are the file status flags F_SETFL may change on a socket
// (fs/fcntl.c SETFL_MASK, less O_DIRECT, which sockets refuse with EINVAL).
const statusSettable = unix.O_APPEND | unix.O_ASYNC | unix.O_NOATIME | unix.O_NONBLOCK

// SetNonblock sets or clears O_NONBLOCK on fd.
func (s *Sockets) SetNonblock(fd int, nonblocking bool) error {
	fe, err := s.fds.get(fd)
	if err != nil {
		return err
	}
	for {
		old := fe.status.Load()
		v := old &^ unix.O_NONBLOCK
		if nonblocking {
			v |= unix.O_NONBLOCK
		}
		if fe.status.CompareAndSwap(old, v) {
			return nil
		}
	}
}

// Fcntl supports F_GETFD/F_SETFD (FD_CLOEXEC) and F_GETFL/F_SETFL
// (O_NONBLOCK and the other settable status flags; F_GETFL also reports
// O_RDWR, as Linux does for sockets and epoll instances). Other commands,
// including F_DUPFD (descriptors here are never duplicated), are EINVAL.
func (s *Sockets) Fcntl(fd int, cmd int, arg int) (int, error) {
	fe, err := s.fds.get(fd)
	if err != nil {
		return -1, err
	}
	switch cmd {
	case unix.F_GETFD:
		return boolInt(fe.cloexec.Load()) * unix.FD_CLOEXEC, nil
	case unix.F_SETFD:
		fe.cloexec.Store(arg&unix.FD_CLOEXEC != 0)
		return 0, nil
	case unix.F_GETFL:
		return unix.O_RDWR | int(fe.status.Load()), nil
	case unix.F_SETFL:
		if arg&unix.O_DIRECT != 0 {
			return -1, unix.EINVAL // no direct_IO on sockets (setfl)
		}
		fe.status.Store(int32(arg & statusSettable))
		return 0, nil
	}
	return -1, unix.EINVAL
}
