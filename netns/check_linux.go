package netns

import (
	"golang.org/x/sys/unix"
)

// nsGetNSType is NS_GET_NSTYPE from <linux/nsfs.h>, _IO(0xb7, 0x3): it
// returns the CLONE_NEW* type of a namespace (Linux 4.11 and later).
const nsGetNSType = 0xb703

// Check reports whether path (/run/netns/NAME, /proc/PID/ns/net) is a
// network namespace: nil if it is, an error wrapping fs.ErrNotExist if
// nothing is there, ErrNotNetNS if something else is (a file, a
// directory, another kind of namespace), or the error that kept it from
// looking (no permission). It never opens anything but a namespace, so
// a FIFO cannot block it.
func Check(path string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return err
	}
	if st.Type != unix.NSFS_MAGIC {
		return ErrNotNetNS
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	// Older kernels lack NS_GET_NSTYPE (ENOTTY): trust nsfs then, and let
	// setns say if the type is wrong.
	if t, err := unix.IoctlRetInt(fd, nsGetNSType); err == nil && t != unix.CLONE_NEWNET {
		return ErrNotNetNS
	}
	return nil
}

// nsID identifies a namespace: its nsfs device and inode.
type nsID struct{ dev, ino uint64 }

// statNS identifies the namespace at path (/proc/PID/ns/net, a bind mount
// of one).
func statNS(path string) (nsID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nsID{}, err
	}
	return nsID{st.Dev, st.Ino}, nil
}

// IsCurrent reports whether path is the network namespace this process
// runs in: the same namespace as /proc/self/ns/net.
func IsCurrent(path string) (bool, error) {
	a, err := statNS(path)
	if err != nil {
		return false, err
	}
	b, err := statNS("/proc/self/ns/net")
	if err != nil {
		return false, err
	}
	return a == b, nil
}
