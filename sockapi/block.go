//go:build linux

package sockapi

import (
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/waiter"
)

// waitOpts is what a caller adds to a blocking call beyond the socket's own
// settings. The Go net adapters pass net.Conn deadlines through it; the
// socket calls of API pass the zero value.
type waitOpts struct {
	// deadline, if not zero, ends the wait at that absolute time (with
	// EAGAIN, as an expired SO_RCVTIMEO does).
	deadline time.Time
	// cancel, if not nil, ends the wait when it is closed (with EINTR, as a
	// signal interrupts a blocked Linux call). A caller whose deadline
	// changes while it is blocked closes cancel and calls again with the
	// new deadline.
	cancel <-chan struct{}
}

// block is the one way a call waits (STYLE.md #6). It calls try; while try
// returns unix.EAGAIN it waits until wq reports one of mask's events and
// calls try again. It returns try's first other result, or:
//
//   - unix.EBADF once fe's descriptor is closed (Close from another
//     goroutine wakes the wait promptly);
//   - unix.EAGAIN once timeo (SO_RCVTIMEO/SO_SNDTIMEO; 0 means none) has
//     passed since block was called, or wo.deadline has passed;
//   - unix.EINTR once wo.cancel is closed.
//
// try runs once before anything is registered, so a call that does not
// need to wait costs no allocation. The waiter is registered before each
// retry, so no notification between a failed try and the wait is lost.
// Callers decide whether the call may block at all (O_NONBLOCK,
// MSG_DONTWAIT) and keep count of partial progress inside try.
func block(fe *fdEntry, wq *waiter.Queue, mask waiter.EventMask, timeo time.Duration, wo waitOpts, try func() error) error {
	err := attempt(fe, try)
	if err != unix.EAGAIN {
		return err
	}
	end := wo.deadline
	if timeo > 0 {
		if t := time.Now().Add(timeo); end.IsZero() || t.Before(end) {
			end = t
		}
	}
	var expired <-chan time.Time
	if !end.IsZero() {
		d := time.Until(end)
		if d <= 0 {
			return unix.EAGAIN
		}
		t := time.NewTimer(d)
		defer t.Stop()
		expired = t.C
	}
	e, notify := waiter.NewChannelEntry(mask)
	wq.EventRegister(&e)
	defer wq.EventUnregister(&e)
	for {
		if err := attempt(fe, try); err != unix.EAGAIN {
			return err
		}
		select {
		case <-notify:
		case <-fe.closed:
			return unix.EBADF
		case <-expired:
			return unix.EAGAIN
		case <-wo.cancel:
			return unix.EINTR
		}
	}
}

// attempt runs try once for the descriptor fe; non-blocking calls use it
// directly, block between waits. A Close from another goroutine releases
// the endpoint, possibly while try runs on it: whatever error the released
// endpoint gives then is reported as the EBADF the closed descriptor stands
// for. Data that try got before the release is still returned.
func attempt(fe *fdEntry, try func() error) error {
	if fe.isClosed() {
		return unix.EBADF
	}
	if err := try(); err == nil || !fe.isClosed() {
		return err
	}
	return unix.EBADF
}

// isClosed reports whether fe's descriptor has been closed.
func (fe *fdEntry) isClosed() bool {
	select {
	case <-fe.closed:
		return true
	default:
		return false
	}
}
