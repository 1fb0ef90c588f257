//go:build linux

package sockapi

import (
	"reflect"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
)

// errnoTable is THE mapping from gVisor errors to the errno Linux returns
// for the same condition. TestErrnoTableComplete fails when gVisor grows
// an error type this table lacks. Operations whose errno differs from this
// table (connect, accept, reads at end of stream...) override it beside
// their own code and say why.
var errnoTable = map[reflect.Type]unix.Errno{
	// Writes on an endpoint that was shut down or aborted by Close.
	typeOf(&tcpip.ErrAborted{}):                   unix.EPIPE,
	typeOf(&tcpip.ErrAddressFamilyNotSupported{}): unix.EAFNOSUPPORT,
	// bind(2) on a bound socket: inet_bind returns EINVAL.
	typeOf(&tcpip.ErrAlreadyBound{}):      unix.EINVAL,
	typeOf(&tcpip.ErrAlreadyConnected{}):  unix.EISCONN,
	typeOf(&tcpip.ErrAlreadyConnecting{}): unix.EALREADY,
	typeOf(&tcpip.ErrBadAddress{}):        unix.EFAULT,
	typeOf(&tcpip.ErrBadBuffer{}):         unix.EFAULT,
	typeOf(&tcpip.ErrBadLocalAddress{}):   unix.EADDRNOTAVAIL,
	// sendto(2) to a broadcast address without SO_BROADCAST: EACCES
	// (ip_route_output_flow / udp_sendmsg).
	typeOf(&tcpip.ErrBroadcastDisabled{}): unix.EACCES,
	// Reads treat it as end of stream (see recv); other calls report
	// EPIPE as for the send side.
	typeOf(&tcpip.ErrClosedForReceive{}):     unix.EPIPE,
	typeOf(&tcpip.ErrClosedForSend{}):        unix.EPIPE,
	typeOf(&tcpip.ErrConnectStarted{}):       unix.EINPROGRESS,
	typeOf(&tcpip.ErrConnectionAborted{}):    unix.ECONNABORTED,
	typeOf(&tcpip.ErrConnectionRefused{}):    unix.ECONNREFUSED,
	typeOf(&tcpip.ErrConnectionReset{}):      unix.ECONNRESET,
	typeOf(&tcpip.ErrDestinationRequired{}):  unix.EDESTADDRREQ,
	typeOf(&tcpip.ErrDuplicateAddress{}):     unix.EEXIST,
	typeOf(&tcpip.ErrDuplicateNICID{}):       unix.EEXIST,
	typeOf(&tcpip.ErrInvalidNICID{}):         unix.EINVAL,
	typeOf(&tcpip.ErrInvalidEndpointState{}): unix.EINVAL,
	typeOf(&tcpip.ErrInvalidOptionValue{}):   unix.EINVAL,
	typeOf(&tcpip.ErrInvalidPortRange{}):     unix.EINVAL,
	typeOf(&tcpip.ErrMalformedHeader{}):      unix.EINVAL,
	typeOf(&tcpip.ErrMessageTooLong{}):       unix.EMSGSIZE,
	typeOf(&tcpip.ErrNetworkUnreachable{}):   unix.ENETUNREACH,
	typeOf(&tcpip.ErrNoBufferSpace{}):        unix.ENOBUFS,
	// Ephemeral ports exhausted: Linux's UDP autobind and bind(port 0)
	// report EAGAIN (udp_lib_get_port); connect overrides to EADDRNOTAVAIL.
	typeOf(&tcpip.ErrNoPortAvailable{}): unix.EAGAIN,
	typeOf(&tcpip.ErrHostUnreachable{}): unix.EHOSTUNREACH,
	typeOf(&tcpip.ErrHostDown{}):        unix.EHOSTDOWN,
	typeOf(&tcpip.ErrNoNet{}):           unix.ENONET,
	typeOf(&tcpip.ErrNoSuchFile{}):      unix.ENOENT,
	typeOf(&tcpip.ErrNotConnected{}):    unix.ENOTCONN,
	typeOf(&tcpip.ErrNotPermitted{}):    unix.EPERM,
	typeOf(&tcpip.ErrNotSupported{}):    unix.EOPNOTSUPP,
	typeOf(&tcpip.ErrPortInUse{}):       unix.EADDRINUSE,
	// SIOCINQ-style queries on endpoints without queues: ENOTTY, the
	// ioctl(2) answer.
	typeOf(&tcpip.ErrQueueSizeNotSupported{}):        unix.ENOTTY,
	typeOf(&tcpip.ErrTimeout{}):                      unix.ETIMEDOUT,
	typeOf(&tcpip.ErrUnknownDevice{}):                unix.ENODEV,
	typeOf(&tcpip.ErrUnknownNICID{}):                 unix.EINVAL,
	typeOf(&tcpip.ErrUnknownProtocol{}):              unix.EINVAL,
	typeOf(&tcpip.ErrUnknownProtocolOption{}):        unix.ENOPROTOOPT,
	typeOf(&tcpip.ErrWouldBlock{}):                   unix.EAGAIN,
	typeOf(&tcpip.ErrMissingRequiredFields{}):        unix.EINVAL,
	typeOf(&tcpip.ErrMulticastInputCannotBeOutput{}): unix.EINVAL,
	typeOf(&tcpip.ErrEndpointBusy{}):                 unix.EBUSY,
}

func typeOf(e tcpip.Error) reflect.Type { return reflect.TypeOf(e) }

// errnoOf translates a gVisor error through errnoTable. nil gives nil; an
// error type the table lacks (which TestErrnoTableComplete prevents) gives
// EINVAL rather than a silent success.
func errnoOf(e tcpip.Error) error {
	if e == nil {
		return nil
	}
	if _, ok := e.(*tcpip.ErrWouldBlock); ok { // the hot path
		return unix.EAGAIN
	}
	if n, ok := errnoTable[reflect.TypeOf(e)]; ok {
		return n
	}
	return unix.EINVAL
}

// asyncErrno translates an error a call got from gVisor. Linux keeps one
// pending socket error (sk_err), and the call that reports it consumes it;
// gVisor's TCP endpoint keeps two copies (hardError for calls, lastError
// for SO_ERROR) and reports some errors to calls without consuming either.
// So for stream sockets:
//
//   - an asynchronous connection error (refused, reset, timed out...)
//     clears the SO_ERROR copy, and marks the error reported for
//     Readiness;
//   - EPIPE consumes a pending EPIPE (a reset received in CLOSE_WAIT,
//     which tcp_reset records as EPIPE) that gVisor left for SO_ERROR.
//
// Any other error found while clearing is kept for SO_ERROR.
func (sk *socket) asyncErrno(terr tcpip.Error) error {
	n := errnoOf(terr)
	if !sk.stream() {
		return n
	}
	switch terr.(type) {
	case *tcpip.ErrConnectionRefused, *tcpip.ErrConnectionReset, *tcpip.ErrTimeout,
		*tcpip.ErrConnectionAborted, *tcpip.ErrHostUnreachable, *tcpip.ErrNetworkUnreachable:
		sk.consumeError(n)
		sk.errReported.Store(true)
	case *tcpip.ErrClosedForSend, *tcpip.ErrAborted:
		sk.consumeError(n)
	}
	return n
}

// consumeError clears a pending error that reads as n, keeping any
// other for SO_ERROR.
func (sk *socket) consumeError(n error) {
	sk.errMu.Lock()
	defer sk.errMu.Unlock()
	if sk.pending != nil && errnoOf(sk.pending) == n {
		sk.pending = nil
		return
	}
	if e := sk.ep().LastError(); e != nil && errnoOf(e) != n && sk.pending == nil {
		sk.pending = e
	}
}

// takeError returns and clears the pending error, for SO_ERROR.
func (sk *socket) takeError() tcpip.Error {
	sk.errMu.Lock()
	e := sk.pending
	sk.pending = nil
	sk.errMu.Unlock()
	if e != nil {
		return e
	}
	return sk.ep().LastError()
}

// hasPendingError moves a pending error out of gVisor's endpoint into sk
// (which LastError's consuming read makes necessary) and reports whether
// there is one. Only for stream sockets in a closed state, where gVisor
// no longer reports it to calls.
func (sk *socket) hasPendingError() bool {
	sk.errMu.Lock()
	defer sk.errMu.Unlock()
	if sk.pending == nil {
		sk.pending = sk.ep().LastError()
	}
	return sk.pending != nil
}
