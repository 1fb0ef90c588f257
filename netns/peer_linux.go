package netns

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strconv"

	"golang.org/x/sys/unix"
)

// PeerInNetNS returns a function reporting whether the process at the
// other end of a unix socket was in the network namespace at nsPath when
// it connected. The namespace is identified now, so the function holds
// after every process in it has gone (and /proc/PID/ns/net with them).
//
// A command networked by `ustack run` sees the host's filesystem, so it
// can reach a control socket there, and through it open listening ports
// on the host's network, the very thing its namespace keeps it from
// doing; the control socket refuses such peers. The peer is found with
// SO_PEERCRED (its PID when it connected) and its /proc/PID/ns/net
// compared with the namespace. A peer that is gone by then counts as
// inside (it may have handed the connection on), as does one whose
// credentials cannot be read. A peer whose namespace cannot be looked at
// for lack of permission counts as outside: every process of the
// namespace is one the caller may look at (ustack is root, or root of
// the user namespace that owns them). A PID reused between the connect
// and the check would be judged by its new owner.
func PeerInNetNS(nsPath string) (func(net.Conn) bool, error) {
	ns, err := statNS(nsPath)
	if err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	return func(c net.Conn) bool {
		in, _ := peerIn(c, ns)
		return in
	}, nil
}

// peerIn reports whether c's peer is in ns; true, with the error, when it
// cannot tell.
func peerIn(c net.Conn, ns nsID) (bool, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return true, fmt.Errorf("netns: %T is not a unix socket", c)
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return true, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return true, err
	}
	if cerr != nil {
		return true, cerr
	}
	if cred.Pid <= 0 {
		return true, errors.New("netns: the peer's PID is unknown")
	}
	got, err := statNS("/proc/" + strconv.Itoa(int(cred.Pid)) + "/ns/net")
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return false, nil
		}
		return true, err
	}
	return got == ns, nil
}
