//go:build linux

package sockapi

import (
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// Shutdown directions a socket records (sk.shut), as Linux's sk_shutdown.
const (
	shutRD = 1 << iota // RCV_SHUTDOWN
	shutWR             // SEND_SHUTDOWN
)

const allEvents = waiter.ReadableEvents | waiter.WritableEvents | waiter.EventErr |
	waiter.EventHUp | waiter.EventRdHUp

// Readiness implements file with the rules of Linux's tcp_poll and
// datagram_poll, which gVisor's endpoints follow only in part:
//
//   - a TCP socket that is closed (never connected, failed, reset or fully
//     shut down) is readable, writable, hung up (POLLHUP) and read-hung-up;
//     a fresh one is writable and hung up;
//   - a connecting one is ready for nothing, a listener readable when a
//     connection waits;
//   - a receive shutdown (own SHUT_RD or the peer's FIN) makes it
//     readable and POLLRDHUP; both directions shut make it POLLHUP; an own
//     SHUT_WR leaves it writable (the write then fails with EPIPE);
//   - POLLERR while an asynchronous error is pending, until a call or
//     SO_ERROR has reported it.
func (sk *socket) Readiness(mask waiter.EventMask) waiter.EventMask {
	if sk.stream() {
		return sk.streamReadiness() & mask
	}
	r := sk.ep().Readiness(allEvents)
	shut := sk.shut.Load()
	if shut&shutRD != 0 {
		r |= waiter.ReadableEvents | waiter.EventRdHUp
	}
	if shut == shutRD|shutWR {
		r |= waiter.EventHUp
	}
	return r & mask
}

func (sk *socket) streamReadiness() waiter.EventMask {
	shut := sk.shut.Load()
	closed := waiter.ReadableEvents | waiter.WritableEvents | waiter.EventHUp | waiter.EventRdHUp
	var r waiter.EventMask
	switch st := tcp.EndpointState(sk.ep().State()); st {
	case tcp.StateListen:
		if shut&shutRD != 0 {
			// Linux disconnects a listener on SHUT_RD: it is then a
			// closed socket with no shutdown recorded, like a fresh one.
			// gVisor keeps it listening, refusing connections.
			return waiter.WritableEvents | waiter.EventHUp
		}
		return sk.ep().Readiness(waiter.ReadableEvents)
	case tcp.StateConnecting, tcp.StateSynSent, tcp.StateSynRecv:
		return 0
	case tcp.StateInitial, tcp.StateBound:
		r = waiter.WritableEvents | waiter.EventHUp
		if shut&shutRD != 0 {
			r |= waiter.ReadableEvents | waiter.EventRdHUp
		}
		return r
	case tcp.StateError:
		if sk.disconnected.Load() {
			// tcp_disconnect left no shutdown recorded: only the
			// writability and hang-up of a closed socket.
			closed = waiter.WritableEvents | waiter.EventHUp
		}
		if !sk.errReported.Load() {
			closed |= waiter.EventErr
		}
		return closed
	case tcp.StateClose, tcp.StateTimeWait:
		if sk.hasPendingError() {
			closed |= waiter.EventErr
		}
		return closed
	case tcp.StateFinWait1, tcp.StateFinWait2, tcp.StateClosing, tcp.StateLastAck:
		shut |= shutWR // only an own SHUT_WR (or close) leads here
	}
	g := sk.ep().Readiness(waiter.ReadableEvents | waiter.WritableEvents | waiter.EventRdHUp)
	r = g & (waiter.ReadableEvents | waiter.WritableEvents)
	if lowat := sk.rcvLowat(); lowat > 1 && r&waiter.ReadableEvents != 0 {
		// tcp_stream_is_readable: fewer than SO_RCVLOWAT bytes queued
		// is not readable (a shutdown still is, below).
		if n, err := sk.ep().GetSockOptInt(tcpip.ReceiveQueueSizeOption); err == nil && n < lowat {
			r &^= waiter.ReadableEvents
		}
	}
	if g&waiter.EventRdHUp != 0 {
		shut |= shutRD
	}
	if shut&shutRD != 0 {
		r |= waiter.ReadableEvents | waiter.EventRdHUp
	}
	if shut&shutWR != 0 {
		r |= waiter.WritableEvents
	}
	if shut == shutRD|shutWR {
		r |= waiter.EventHUp
	}
	return r
}

// noteShutdown records a shutdown(2) for Readiness. Linux records it even
// when it answers ENOTCONN (inet_shutdown sets sk_shutdown for a closed
// socket too).
func (sk *socket) noteShutdown(how int) {
	var bits uint32
	switch how {
	case unix.SHUT_RD:
		bits = shutRD
	case unix.SHUT_WR:
		bits = shutWR
	case unix.SHUT_RDWR:
		bits = shutRD | shutWR
	}
	for {
		old := sk.shut.Load()
		if sk.shut.CompareAndSwap(old, old|bits) {
			return
		}
	}
}
