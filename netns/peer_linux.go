package netns

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strconv"

	"golang.org/x/sys/unix"
)

// GuardListener returns a listener for a unix socket ln whose Accept
// drops every connection made from a process in the network namespace at
// nsPath, answering it with refusal (one line) first.
//
// A command networked by `ustack run` sees the host's filesystem, so it
// can reach a control socket there, and through it open listening ports
// on the host's network, the very thing its namespace keeps it from
// doing. The peer is found with SO_PEERCRED (its PID when it connected)
// and its /proc/PID/ns/net compared with nsPath. A peer that is gone by
// then is refused too (it may have handed the connection on). A peer
// whose namespace cannot be looked at for lack of permission is let in:
// every process of the namespace is one the caller may look at (ustack
// is root, or root of the user namespace that owns them). A PID reused
// between the connect and the check would be judged by its new owner.
//
// refusal is the line (without its newline) written to a refused peer.
// The namespace is identified now, so the guard holds after every
// process in it has gone (and /proc/PID/ns/net with them).
func GuardListener(ln net.Listener, nsPath string, refusal string) (net.Listener, error) {
	var st unix.Stat_t
	if err := unix.Stat(nsPath, &st); err != nil {
		return nil, fmt.Errorf("netns: %w", err)
	}
	return &guardedListener{Listener: ln, ns: nsID{st.Dev, st.Ino}, refusal: refusal}, nil
}

// nsID identifies a namespace: its nsfs device and inode.
type nsID struct{ dev, ino uint64 }

type guardedListener struct {
	net.Listener
	ns      nsID
	refusal string
}

func (g *guardedListener) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if in, _ := peerIn(c, g.ns); !in {
			return c, nil
		}
		// The line fits a unix socket's buffer: the write never blocks.
		c.Write([]byte(g.refusal + "\n"))
		c.Close()
	}
}

// PeerInNetNS reports whether the process at the other end of the unix
// socket c was in the network namespace at nsPath when it connected (see
// GuardListener). It reports true, with the error, when it cannot tell
// because the peer is gone or the credentials are missing.
func PeerInNetNS(c net.Conn, nsPath string) (bool, error) {
	var st unix.Stat_t
	if err := unix.Stat(nsPath, &st); err != nil {
		return true, err
	}
	return peerIn(c, nsID{st.Dev, st.Ino})
}

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
	var got unix.Stat_t
	if err := unix.Stat("/proc/"+strconv.Itoa(int(cred.Pid))+"/ns/net", &got); err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return false, nil
		}
		return true, err
	}
	return nsID{got.Dev, got.Ino} == ns, nil
}
