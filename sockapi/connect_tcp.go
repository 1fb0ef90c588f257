//go:build linux

package sockapi

import (
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// Linux's sock->state for a stream socket, which __inet_stream_connect
// consults before the TCP state (sk.ss).
const (
	ssUnconnected = iota
	ssConnecting  // a connect was started and its outcome not yet returned by connect
	ssConnected   // connect returned success, or the socket was accepted
)

// connectStream is Connect for TCP. Beyond what gVisor's endpoint does,
// it keeps Linux's sock->state so that:
//
//   - a socket once connected says EISCONN for ever, even after a reset;
//   - after a failed attempt whose error was already reported (by
//     SO_ERROR), the next connect says ECONNABORTED, and the one after
//     that starts a new attempt, where gVisor's endpoint stays failed:
//     the socket then gets a fresh endpoint (renew).
func (s *Sockets) connectStream(fe *fdEntry, sk *socket, fa tcpip.FullAddress, wo waitOpts) error {
	if sk.ep().SocketOptions().GetAcceptConn() {
		// A socket not in TCP_CLOSE (here, a listener) is EISCONN;
		// gVisor says EINVAL.
		return unix.EISCONN
	}
	ss := sk.connState()
	if ss == ssConnected {
		return unix.EISCONN
	}
	if tcp.EndpointState(sk.ep().State()) == tcp.StateError {
		switch {
		case ss == ssUnconnected:
			// Failed and reported, or disconnected by shutdown:
			// Linux starts a new attempt.
			if err := sk.renew(true); err != nil {
				return err
			}
		case sk.errReported.Load():
			sk.setConnState(ssUnconnected)
			return unix.ECONNABORTED // sock_error() ?: -ECONNABORTED
		}
	}
	if sk.family == unix.AF_INET6 && sk.tosDiffer() {
		// A v4-mapped peer is sent to with IP_TOS, from the SYN on.
		sk.applyTOSFor(fa.Addr.Len() == 16 && isV4Mapped(fa.Addr.As16()))
	}
	terr := sk.ep().Connect(fa)
	_, started := terr.(*tcpip.ErrConnectStarted)
	_, already := terr.(*tcpip.ErrAlreadyConnecting)
	if !started && !already {
		return sk.connectDone(sk.connectErrno(terr))
	}
	// EINPROGRESS for a connect just started, EALREADY for one already
	// under way; a blocking connect waits in either case and, if its
	// timeout passes, returns that same errno.
	pending := unix.EINPROGRESS
	if already {
		pending = unix.EALREADY
	}
	sk.setConnState(ssConnecting)
	if fe.nonblocking() {
		return pending
	}
	_, snd := sk.timeouts()
	err := block(fe, sk.wq, waiter.WritableEvents|waiter.EventHUp|waiter.EventErr, snd, wo, func() error {
		switch terr := sk.ep().Connect(fa); terr.(type) {
		case *tcpip.ErrAlreadyConnecting, *tcpip.ErrConnectStarted:
			return unix.EAGAIN
		default:
			return sk.connectErrno(terr)
		}
	})
	switch err {
	case unix.EAGAIN:
		return pending
	case unix.EBADF, unix.EINTR:
		return err
	}
	return sk.connectDone(err)
}

// connectDone records the outcome a connect call returns.
func (sk *socket) connectDone(err error) error {
	switch err {
	case nil, unix.EISCONN:
		sk.setConnState(ssConnected)
	case unix.EALREADY, unix.EINPROGRESS:
	default:
		if tcp.EndpointState(sk.ep().State()) == tcp.StateError {
			sk.setConnState(ssUnconnected)
		}
	}
	return err
}

func (sk *socket) connState() int {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	return sk.ss
}

func (sk *socket) setConnState(ss int) {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	sk.ss = ss
}

// renew replaces a failed TCP endpoint with a fresh one carrying the same
// options, as Linux returns a socket whose connection attempt failed (or
// a listener shut down for reading) to the unconnected state. With rebind,
// the fresh endpoint is bound again to what bind gave, where Linux keeps
// the bound address (SOCK_BINDADDR_LOCK) and a port bind chose
// (SOCK_BINDPORT_LOCK); a port 0 is chosen anew. The wait queue stays, so
// waiters (epoll, blocked calls) carry over.
func (sk *socket) renew(rebind bool) error {
	sk.epMu.Lock()
	defer sk.epMu.Unlock()
	if sk.released {
		return unix.EBADF
	}
	old := sk.ep()
	nep, terr := sk.st.NewEndpoint(tcp.ProtocolNumber, sk.netProto, sk.wq)
	if terr != nil {
		return errnoOf(terr)
	}
	copyOptions(old, nep)
	nep.SocketOptions().SetReceiveBufferSize(old.SocketOptions().GetReceiveBufferSize(), true)
	nep.SocketOptions().SetSendBufferSize(old.SocketOptions().GetSendBufferSize(), true)
	if mss := sk.mssSet(); mss > 0 {
		nep.SetSockOptInt(tcpip.MaxSegOption, mss)
	}
	old.Close()
	sk.epp.Store(&nep)
	sk.applyTOS()
	sk.errReported.Store(false)
	sk.disconnected.Store(false)
	sk.shut.Store(0)
	sk.errMu.Lock()
	sk.pending = nil
	sk.errMu.Unlock()
	sk.mu.Lock()
	bound, hasBound := sk.bound, sk.hasBound
	sk.mu.Unlock()
	if rebind && hasBound && (bound.Port != 0 || bound.Addr.Len() != 0) {
		return errnoOf(nep.Bind(bound))
	}
	return nil
}

func (sk *socket) mssSet() int {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	return sk.userMSS
}
