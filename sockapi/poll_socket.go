package sockapi

import (
	"io"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// A socket's poll bits as Linux computes them. gVisor's endpoint
// readiness differs from Linux's tcp_poll and datagram_poll in the
// corners (a closed endpoint is "ready for anything", PRI included; a
// fresh TCP socket is not writable; datagram sockets lack WRBAND), so
// Poll, Select and Epoll derive Linux's answer from the endpoint's state
// here. socket.Readiness stays gVisor's, for the socket calls' own
// blocking.

// socketPoll returns what Linux's f_op->poll returns for sk.
func socketPoll(sk *socket) uint32 {
	gv := sk.ep.Readiness(waiter.AllEvents)
	if !sk.stream() {
		return datagramPoll(sk, gv)
	}
	return tcpPoll(sk, tcp.EndpointState(sk.ep.State()), gv)
}

// datagramPoll follows datagram_poll: readable, writable with WRBAND,
// POLLERR while an error (ICMP unreachable) is pending (gVisor clears it
// once SO_ERROR or a call reports it), POLLRDHUP once the receive side is
// shut down and drained.
func datagramPoll(sk *socket, gv waiter.EventMask) uint32 {
	m := toLinux(gv & (waiter.ReadableEvents | waiter.WritableEvents | waiter.EventErr))
	if m&unix.POLLOUT != 0 {
		m |= unix.EPOLLWRBAND
	}
	if m&unix.POLLIN != 0 && readShut(sk) {
		m |= unix.POLLRDHUP
	}
	return m
}

// tcpPoll follows net/ipv4/tcp.c tcp_poll. Linux's sk_shutdown bits are
// read off the TCP state: a FIN received (or a reset) shuts the receive
// side, a FIN queued (or a reset) the send side.
func tcpPoll(sk *socket, st tcp.EndpointState, gv waiter.EventMask) uint32 {
	const (
		in  = unix.POLLIN | unix.EPOLLRDNORM
		out = unix.POLLOUT | unix.EPOLLWRNORM
	)
	switch st {
	case tcp.StateListen:
		// inet_csk_listen_poll: readable while connections wait.
		return toLinux(gv & waiter.ReadableEvents)
	case tcp.StateConnecting, tcp.StateSynSent, tcp.StateSynRecv:
		return 0
	}
	// TCP_CLOSE on Linux: never connected, reset or fully closed.
	closed := st == tcp.StateInitial || st == tcp.StateBound || st == tcp.StateClose ||
		st == tcp.StateError || st == tcp.StateTimeWait
	sndShut := closed || st == tcp.StateFinWait1 || st == tcp.StateFinWait2 ||
		st == tcp.StateClosing || st == tcp.StateLastAck
	rcvShut := st != tcp.StateInitial && st != tcp.StateBound &&
		(closed || st == tcp.StateCloseWait || st == tcp.StateClosing ||
			st == tcp.StateLastAck || gv&waiter.EventRdHUp != 0 ||
			sndShut && gv&waiter.ReadableEvents != 0 && readShut(sk))
	var m uint32
	if closed || rcvShut && sndShut {
		m |= unix.POLLHUP
	}
	if rcvShut {
		m |= in | unix.POLLRDHUP
	}
	if gv&waiter.ReadableEvents != 0 {
		m |= in
	}
	// A never-connected socket has room in its send buffer: Linux
	// reports it writable (with POLLHUP).
	if sndShut || gv&waiter.WritableEvents != 0 {
		m |= out
	}
	// gVisor keeps the reset or refusal in StateError; Linux's sk_err.
	if st == tcp.StateError {
		m |= unix.POLLERR
	}
	return m
}

// readShut reports whether sk's receive side is shut down although gVisor
// does not say so with EventRdHUp (it drops it once both directions are
// closed): a zero-byte peek fails with ErrClosedForReceive when no data
// is left and shutdown(SHUT_RD) was called.
func readShut(sk *socket) bool {
	_, err := sk.ep.Read(&tcpip.LimitedWriter{W: io.Discard, N: 0}, tcpip.ReadOptions{Peek: true})
	_, closed := err.(*tcpip.ErrClosedForReceive)
	return closed
}
