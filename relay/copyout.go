package relay

import (
	"errors"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/waiter"
)

// nsEndpoint is the gVisor side of a relayed connection, for copyOut.
type nsEndpoint struct {
	ep tcpip.Endpoint
	wq *waiter.Queue
}

// copyOut copies the namespace's bytes to the host socket as copyHalf
// does, but hands gVisor's receive buffers straight to the socket's write
// (Endpoint.Read into an io.Writer) instead of copying them through a
// relay buffer first: one copy of every byte fewer, which was an eighth
// of ustack's CPU in an upload profile (memmove under gonet's Read).
//
// The socket is written without blocking, inside Endpoint.Read; when it
// is full, copyOut waits for it outside the read. inDone is closed when
// the other direction has ended, so that copyOut re-checks halfClosed
// and starts the half-close timer.
func (r *Relay) copyOut(host *net.TCPConn, ns halfCloser, src nsEndpoint, halfClosed *atomic.Bool, inDone <-chan struct{}) {
	rc, err := host.SyscallConn()
	if err != nil {
		r.copyHalf(host, ns, halfClosed, &r.c.bytesOut, nil)
		return
	}
	w := &sockWriter{rc: rc}
	entry, notify := waiter.NewChannelEntry(waiter.ReadableEvents)
	src.wq.EventRegister(&entry)
	defer src.wq.EventUnregister(&entry)
	abort := func() { ns.Close(); host.Close() }
	lastData := time.Now()
	for {
		// What the endpoint holds now is what this Read hands the
		// socket at least; all but its last write go with MSG_MORE.
		w.pending, _ = src.ep.GetSockOptInt(tcpip.ReceiveQueueSizeOption)
		res, terr := src.ep.Read(w, tcpip.ReadOptions{})
		if w.corked && !w.full && w.err == nil {
			w.flush()
		}
		w.pending = 0
		if res.Count > 0 {
			r.c.bytesOut.Add(uint64(res.Count))
			lastData = time.Now()
		}
		if w.err != nil { // the host peer is gone: abort the other side too
			abort()
			return
		}
		if w.full {
			w.full = false
			if err := w.waitWritable(); err != nil {
				abort()
				return
			}
			continue
		}
		switch terr.(type) {
		case nil:
			continue
		case *tcpip.ErrWouldBlock:
		case *tcpip.ErrClosedForReceive: // EOF
			host.CloseWrite()
			if halfClosed.Swap(true) {
				return // both directions done
			}
			// Wake the other direction so it starts the half-close timer.
			host.SetReadDeadline(time.Now().Add(r.cfg.HalfCloseTimeout))
			return
		default: // a reset, or Close
			abort()
			return
		}
		if !r.waitOut(notify, &inDone, halfClosed, lastData) {
			abort()
			return
		}
	}
}

// waitOut waits for the namespace's endpoint to become readable, or for
// the other direction to end (clearing *inDone). Once the connection is
// half-closed it gives up HalfCloseTimeout after lastData, returning
// false.
func (r *Relay) waitOut(notify <-chan struct{}, inDone *<-chan struct{}, halfClosed *atomic.Bool, lastData time.Time) bool {
	var timeout <-chan time.Time
	if halfClosed.Load() {
		t := time.NewTimer(time.Until(lastData.Add(r.cfg.HalfCloseTimeout)))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-notify:
	case <-*inDone:
		*inDone = nil
	case <-timeout:
		r.c.halfOpenClosed.Add(1)
		r.logf("closing a half-closed connection idle for %v", r.cfg.HalfCloseTimeout)
		return false
	}
	return true
}

// errSocketFull stops Endpoint.Read when the host socket takes no more.
var errSocketFull = errors.New("relay: host socket full")

// sockWriter writes to a socket without blocking: it takes what the
// socket takes, and reports full (or the error) to stop the caller.
//
// Writes are sent with MSG_MORE while more than they carry is pending
// (the caller sets pending to the bytes it is about to write in all), so
// that the socket builds full-sized segments instead of pushing one per
// write: gVisor hands over each received segment a view at a time, two
// or three writes per 64 KiB TSO segment from the namespace.
type sockWriter struct {
	rc      syscall.RawConn
	pending int   // bytes the caller still means to write in this batch
	corked  bool  // the last write went with MSG_MORE: flush before waiting
	full    bool  // the last Write stopped on a full socket buffer
	err     error // the socket failed; stop for good
}

func (w *sockWriter) Write(b []byte) (int, error) {
	var n int
	var errno error
	if err := w.rc.Write(func(fd uintptr) bool {
		for n < len(b) {
			flags := 0
			if w.pending > len(b)-n {
				flags = msgMore
			}
			m, err := unix.SendmsgN(int(fd), b[n:], nil, nil, flags)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				errno = err
				return true
			}
			n += m
			w.pending -= m
			w.corked = flags != 0
		}
		return true
	}); err != nil {
		w.err = err
		return n, err
	}
	switch {
	case errno == unix.EAGAIN:
		w.full = true
		return n, errSocketFull
	case errno != nil:
		w.err = errno
		return n, errno
	}
	return n, nil
}

// flush sends what MSG_MORE held back (setting TCP_NODELAY pushes
// pending frames); the caller wrote less than it announced.
func (w *sockWriter) flush() {
	w.corked = false
	w.rc.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	})
}

// waitWritable blocks until the socket has room (or fails, or is closed).
//
// It must look before it waits: RawConn.Write first resets the
// netpoller's readiness for the descriptor, so a "writable" edge that
// arrived after the Write that found the socket full (the host peer's
// ACKs freed the buffer while gVisor's Read was still returning) is
// forgotten, and a socket that has drained raises no other. Waiting
// without looking stalled uploads at a zero window until the transfer
// ended (TestSockWriterWaitAfterSpaceFreed; docs/run.md).
func (w *sockWriter) waitWritable() error {
	waited := false
	return w.rc.Write(func(fd uintptr) bool {
		if waited {
			return true
		}
		waited = true
		return pollNow(int(fd), unix.POLLOUT)
	})
}

// pollNow reports whether fd polls ready for events (or failed) right now,
// without waiting. Every wait of the relay in the netpoller looks with it
// first: the netpoller forgets readiness that arrived before the wait, and
// a socket that is already ready raises no new edge.
func pollNow(fd int, events int16) bool {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: events}}
	for {
		n, err := unix.Poll(pfd, 0)
		if err == unix.EINTR {
			continue
		}
		// On an error, let the caller's next write find out what it is.
		return err != nil || n > 0 && pfd[0].Revents != 0
	}
}
