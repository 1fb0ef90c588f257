package relay

import (
	"errors"
	"net"
	"sync"
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
	// mu is held by copyOut while the host socket is being written
	// straight from the endpoint's receive queue, and by Close of the
	// connection splice wraps around ep (closeGuard): Close releases the
	// queue's buffers to gVisor's pool, where other connections reuse
	// them, and the socket must not send bytes from a reused buffer.
	mu *sync.Mutex
}

// closeGuard is the namespace side of a spliced connection whose Close
// waits for copyOut to finish a write from the endpoint's buffers (see
// nsEndpoint.mu).
type closeGuard struct {
	halfCloser
	mu *sync.Mutex
	ep tcpip.Endpoint // behind halfCloser, for closeReset
}

func (g *closeGuard) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.halfCloser.Close()
}

// copyOut copies the namespace's bytes to the host socket as copyHalf
// does, but without a relay buffer: it writes gVisor's receive buffers
// to the socket where they are, one writev for everything the endpoint
// holds (see sockWriter.sendFrom). That saves one copy of every byte,
// which was an eighth of ustack's CPU in an upload profile (memmove under
// gonet's Read), and a syscall per view: gVisor holds each 64 KiB TSO
// segment from the namespace in two or three views.
//
// The socket is written without blocking; when it is full, copyOut waits
// for it and sends the rest, which stayed in gVisor's queue. inDone is
// closed when the other direction has ended, so that copyOut re-checks
// halfClosed and starts the half-close timer.
func (r *Relay) copyOut(host *net.TCPConn, ns halfCloser, src nsEndpoint, halfClosed *atomic.Bool, count counter, inDone <-chan struct{}) {
	rc, err := host.SyscallConn()
	if err != nil {
		r.copyHalf(host, ns, true, halfClosed, count, nil)
		return
	}
	w := &sockWriter{rc: rc}
	entry, notify := waiter.NewChannelEntry(waiter.ReadableEvents)
	src.wq.EventRegister(&entry)
	defer src.wq.EventUnregister(&entry)
	abort := func() { ns.Close(); host.Close() }
	lastData := time.Now()
	for {
		n, terr := w.sendFrom(src)
		if n > 0 {
			count.add(n)
			lastData = time.Now()
		}
		if w.err != nil { // the host peer is gone: abort the other side too
			if isReset(w.err) || hostBroken(w.err) {
				closeReset(ns)
			}
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
		case *tcpip.ErrConnectionReset: // the namespace reset it
			closeReset(host)
			abort()
			return
		default: // Close, or the connection aborted
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

// Limits of one sendFrom: the views gathered for one writev (Linux
// takes up to IOV_MAX, 1024) and their bytes, so that the endpoint's
// receive window reopens (bytes are taken off the queue only once sent)
// in steps well under the 1 MiB gVisor starts with.
const (
	maxGather      = 64
	maxGatherBytes = 256 << 10
)

// errGathered stops a Peek read once gather is full.
var errGathered = errors.New("relay: gathered enough")

// gather is the io.Writer of a Peek read: it keeps the slices of gVisor's
// views it is handed instead of copying them.
type gather struct {
	iov   []unix.Iovec
	bytes int
}

func (g *gather) Write(b []byte) (int, error) {
	if len(g.iov) == maxGather || g.bytes >= maxGatherBytes {
		return 0, errGathered
	}
	if len(b) > 0 {
		v := unix.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		g.iov = append(g.iov, v)
		g.bytes += len(b)
	}
	return len(b), nil
}

// reset forgets the slices (and so stops pinning gVisor's views).
func (g *gather) reset() {
	clear(g.iov)
	g.iov = g.iov[:0]
	g.bytes = 0
}

// discard is the io.Writer of the read that takes what was sent off the
// endpoint's queue: it accepts left bytes, then stops the read.
type discard struct{ left int }

func (d *discard) Write(b []byte) (int, error) {
	if len(b) <= d.left {
		d.left -= len(b)
		return len(b), nil
	}
	n := d.left
	d.left = 0
	return n, errGathered
}

// sockWriter writes to a socket without blocking: it takes what the
// socket takes, and reports full (or the error) to stop the caller.
type sockWriter struct {
	rc   syscall.RawConn
	g    gather
	d    discard
	full bool  // the last write stopped on a full socket buffer
	err  error // the socket failed; stop for good
}

// sendFrom writes what src's receive queue holds (up to maxGather views
// and maxGatherBytes) to the socket with one writev, straight from
// gVisor's buffers, and takes what the socket accepted off the queue. It
// returns the bytes moved and the error of the endpoint's read (nil,
// ErrWouldBlock when it held nothing, ErrClosedForReceive at EOF, or why
// it failed).
//
// The views are found with a Peek read, which leaves them on the queue,
// so they stay the endpoint's while the socket copies them: only Close
// (or the stack's Abort, after the relay is closed) releases them, and
// Close waits on src.mu.
func (w *sockWriter) sendFrom(src nsEndpoint) (int, tcpip.Error) {
	src.mu.Lock()
	defer src.mu.Unlock()
	defer w.g.reset()
	if _, terr := src.ep.Read(&w.g, tcpip.ReadOptions{Peek: true}); terr != nil {
		return 0, terr
	}
	n := w.writev(w.g.iov)
	if n == 0 {
		return 0, nil
	}
	w.d.left = n
	res, terr := src.ep.Read(&w.d, tcpip.ReadOptions{})
	return res.Count, terr
}

// writev writes iov to the socket without blocking and returns how much
// it took, setting full or err when it stopped early.
func (w *sockWriter) writev(iov []unix.Iovec) int {
	var n int
	var errno unix.Errno
	if err := w.rc.Write(func(fd uintptr) bool {
		for {
			n, errno = writev(fd, iov)
			if errno != unix.EINTR {
				return true
			}
		}
	}); err != nil {
		w.err = err
		return 0
	}
	switch errno {
	case 0:
		return n
	case unix.EAGAIN:
		w.full = true
		return 0
	default:
		w.err = errno
		return 0
	}
}

// Write writes b to the socket without blocking: the tests' way to fill
// it.
func (w *sockWriter) Write(b []byte) (int, error) {
	var g gather
	if _, err := g.Write(b); err != nil {
		return 0, err
	}
	n := w.writev(g.iov)
	if w.err != nil {
		return n, w.err
	}
	return n, nil
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
