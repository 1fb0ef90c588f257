package relay

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// handleTCP runs on a goroutine of the TCP forwarder for each new SYN. It
// dials the real destination first and only then completes the handshake,
// so the namespace's connect succeeds exactly when the real one did; when
// the dial fails the namespace gets a reset, as from a closed port.
func (r *Relay) handleTCP(req *tcp.ForwarderRequest) {
	if !r.enter() {
		req.Complete(true)
		return
	}
	defer r.wg.Done()
	id := req.ID()
	dst := netip.AddrPortFrom(fromTCPIP(id.LocalAddress), id.LocalPort)
	target, err := r.target(dst)
	if err != nil {
		r.c.denied.Add(1)
		r.logf("tcp %v: %v", dst, err)
		req.Complete(true)
		return
	}
	if !r.acquireFlow() {
		req.Complete(true)
		return
	}
	defer r.releaseFlow()
	d := net.Dialer{Timeout: r.cfg.DialTimeout}
	hc, err := d.DialContext(r.ctx, "tcp", target.String())
	if err != nil {
		r.c.tcpDialFailed.Add(1)
		r.logf("tcp %v: %v", dst, err)
		req.Complete(true)
		return
	}
	var wq waiter.Queue
	ep, terr := req.CreateEndpoint(&wq)
	if terr != nil {
		// The namespace gave up (reset, or the handshake timed out).
		hc.Close()
		req.Complete(true)
		return
	}
	req.Complete(false)
	// Keepalive probes find a namespace peer that vanished, so a dead
	// connection does not hold its slot forever.
	ep.SocketOptions().SetKeepAlive(true)
	gc := gonet.NewTCPConn(&wq, ep)
	r.c.tcpRelayed.Add(1)
	r.splice(gc, hc.(*net.TCPConn))
}

// halfCloser is a stream whose write side can be shut down alone.
type halfCloser interface {
	net.Conn
	CloseWrite() error
}

// splice copies both ways between ns (the namespace side) and host until
// both directions end, then closes both. It runs one direction on the
// calling goroutine and the other on a tracked one. When one direction
// has ended, the other is given HalfCloseTimeout of silence before the
// connection is dropped as half-open.
func (r *Relay) splice(ns, host halfCloser) {
	if !r.track(ns, host) {
		return
	}
	r.c.tcpActive.Add(1)
	defer r.c.tcpActive.Add(-1)
	var halfClosed atomic.Bool
	done := make(chan struct{})
	if !r.goTracked(func() {
		defer close(done)
		r.copyHalf(host, ns, &halfClosed, &r.c.bytesOut)
	}) {
		return
	}
	r.copyHalf(ns, host, &halfClosed, &r.c.bytesIn)
	<-done
	r.untrack(ns, host)
}

// copyHalf copies src to dst until src ends, then shuts down dst's write
// side. It reads into a pooled buffer of BufferSize itself rather than
// through io.Copy, whose ReadFrom/WriteTo fast paths ignore the buffer and
// move 32 KiB at a time.
func (r *Relay) copyHalf(dst, src halfCloser, halfClosed *atomic.Bool, count *atomic.Uint64) {
	bp := r.getBuf()
	defer r.putBuf(bp)
	buf := *bp
	for {
		if halfClosed.Load() {
			src.SetReadDeadline(time.Now().Add(r.cfg.HalfCloseTimeout))
		}
		n, err := src.Read(buf)
		if n > 0 {
			count.Add(uint64(n))
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close() // the peer is gone: abort the other side too
				dst.Close()
				return
			}
		}
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) {
			dst.CloseWrite()
			if halfClosed.Swap(true) {
				return // both directions done
			}
			// Wake the other direction so it starts the half-close timer.
			dst.SetReadDeadline(time.Now().Add(r.cfg.HalfCloseTimeout))
			return
		}
		if isTimeout(err) && halfClosed.Load() {
			r.c.halfOpenClosed.Add(1)
			r.logf("closing a half-closed connection idle for %v", r.cfg.HalfCloseTimeout)
		}
		// A reset, a timeout or Close: abort both sides.
		src.Close()
		dst.Close()
		return
	}
}
