package relay

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/ustack/ustack/stack"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// handleTCP runs on a goroutine of the TCP forwarder for each new SYN. It
// dials the real destination first and only then completes the handshake,
// so the namespace's connect succeeds exactly when the real one did; when
// the dial fails the namespace's connect fails the same way (see refuse).
func (r *Relay) handleTCP(req *tcp.ForwarderRequest) {
	id := req.ID()
	defer r.forgetSYN(id)
	if !r.enter() {
		req.Complete(true)
		return
	}
	defer r.wg.Done()
	dst := netip.AddrPortFrom(stack.AddrOf(id.LocalAddress), id.LocalPort)
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
	var hc halfCloser
	if r.isDNS(dst) {
		hc, target, err = dialUpstream(r, target, r.dial)
	} else {
		hc, err = r.dial(target)
	}
	if isReset(err) {
		// The connection was made, and the server reset it before the
		// dialer read SO_ERROR: a kernel client's connect succeeded, and
		// its read gets the reset. So must CMD's.
		r.c.tcpDialFailed.Add(1)
		r.logf("tcp %v: %v", dst, err)
		r.acceptReset(req)
		return
	}
	if err != nil {
		if r.isDNS(dst) && r.ctx.Err() == nil {
			r.dnsFailed(target)
		}
		r.c.tcpDialFailed.Add(1)
		r.logf("tcp %v: %v", dst, err)
		if r.ctx.Err() == nil && (dialTimedOut(err) || errors.Is(err, syscall.EINVAL) && !r.isDNS(dst)) {
			// The destination never answered: neither does the relay,
			// as the real network would not, so CMD's connect times
			// out on its own clock (ETIMEDOUT, or its tool's timeout)
			// rather than failing early as refused. A SYN CMD sends
			// again (its retransmission) is a new request and dials
			// again; nothing is kept in between. EINVAL is the host's
			// blackhole route, where a router drops in silence too
			// (but the DNS forwarder itself is there: refused).
			req.Complete(false)
			return
		}
		r.refuse(req, target, err)
		return
	}
	var wq waiter.Queue
	ep, terr := r.createEndpoint(req, &wq)
	if terr != nil {
		// The namespace gave up (reset, or the handshake timed out): on
		// the real network the server would have seen the client's
		// reset, or no connection at all, never an orderly close. No
		// byte has been relayed, so no grace either.
		abortOnClose(hc)
		hc.Close()
		req.Complete(true)
		return
	}
	req.Complete(false)
	defer r.reserveSendBuffer(ep)()
	// Keepalive probes find a namespace peer that vanished, so a dead
	// connection does not hold its slot forever.
	ep.SocketOptions().SetKeepAlive(true)
	gc := gonet.NewTCPConn(&wq, ep)
	r.c.tcpRelayed.Add(1)
	r.splice(gc, hc, nsEndpoint{ep: ep, wq: &wq})
}

// acceptReset completes the namespace's handshake and resets the
// connection, for a real connection that was reset as it was made.
func (r *Relay) acceptReset(req *tcp.ForwarderRequest) {
	var wq waiter.Queue
	ep, terr := r.createEndpoint(req, &wq)
	req.Complete(terr != nil)
	if terr != nil {
		return
	}
	closeReset(&nsConn{TCPConn: gonet.NewTCPConn(&wq, ep), ep: ep})
}

// createEndpoint completes the namespace's side of the handshake
// (req.CreateEndpoint), giving up after DialTimeout or when the relay
// closes. gVisor's CreateEndpoint blocks until the handshake is done and
// retransmits an unanswered SYN-ACK for about two minutes: a SYN from a
// source address nobody in the namespace owns (a raw socket there can
// send one) held its flow slot and the real connection that long, and
// Close waited for it. CreateEndpoint waits for a writable event on wq;
// one raised while the handshake is unfinished makes it abort the
// endpoint and return an error, which is how the wait is cut short.
func (r *Relay) createEndpoint(req *tcp.ForwarderRequest, wq *waiter.Queue) (tcpip.Endpoint, tcpip.Error) {
	// Nothing runs for a handshake that completes in time: the timer and
	// the context hook only start the notify loop if they fire first.
	h := &handshakeCut{wq: wq}
	t := time.AfterFunc(r.cfg.DialTimeout, func() { h.cut(true) })
	stopCtx := context.AfterFunc(r.ctx, func() { h.cut(false) })
	ep, terr := req.CreateEndpoint(wq)
	t.Stop()
	stopCtx()
	timedOut := h.finish()
	if terr != nil && timedOut {
		r.c.handshakeTimeouts.Add(1)
		id := req.ID()
		r.logf("tcp %v from %v: the namespace did not complete the handshake within %v", netip.AddrPortFrom(stack.AddrOf(id.LocalAddress), id.LocalPort), netip.AddrPortFrom(stack.AddrOf(id.RemoteAddress), id.RemotePort), r.cfg.DialTimeout)
	}
	return ep, terr
}

// handshakeCut cuts one createEndpoint short. The first of its timer and
// the relay's close to fire runs the notify loop, until finish.
type handshakeCut struct {
	wq *waiter.Queue

	mu       sync.Mutex
	returned bool          // CreateEndpoint has returned
	stop     chan struct{} // made when the loop starts; closed by finish
	timedOut bool          // the loop was started by DialTimeout
	loop     sync.WaitGroup
}

// cut runs the notify loop unless CreateEndpoint has returned or the
// loop already runs. It raises the event until finish: one raised before
// CreateEndpoint started waiting would be lost.
func (h *handshakeCut) cut(timedOut bool) {
	h.mu.Lock()
	if h.returned || h.stop != nil {
		h.mu.Unlock()
		return
	}
	h.stop = make(chan struct{})
	h.timedOut = timedOut
	h.loop.Add(1)
	stop := h.stop
	h.mu.Unlock()
	defer h.loop.Done()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		h.wq.Notify(waiter.WritableEvents)
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// finish is called once CreateEndpoint has returned: it keeps any later
// cut from starting, stops and waits for a loop that did, and reports
// whether DialTimeout started it.
func (h *handshakeCut) finish() (timedOut bool) {
	h.mu.Lock()
	h.returned = true
	stop := h.stop
	h.mu.Unlock()
	if stop == nil {
		return false
	}
	close(stop)
	h.loop.Wait()
	return h.timedOut
}

// dial connects to a real destination within DialTimeout.
func (r *Relay) dial(target netip.AddrPort) (halfCloser, error) {
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.DialTimeout)
	defer cancel()
	d := &net.Dialer{}
	if src := r.outbound(target.Addr()); src.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
	}
	dial := d.DialContext
	if r.cfg.Dial != nil {
		dial = r.cfg.Dial
	}
	c, err := dial(ctx, "tcp", target.String())
	if err != nil {
		return nil, err
	}
	hc, ok := c.(halfCloser)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("relay: Config.Dial returned a %T, which cannot half-close", c)
	}
	return hc, nil
}

// dialTimedOut reports whether a dial failed because the destination
// did not answer within DialTimeout (or the host kernel's own SYN
// retries ran out).
func dialTimedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT) ||
		errors.As(err, &ne) && ne.Timeout()
}

// refuse answers a SYN whose real dial failed the way the real network
// would have: the ICMP unreachable a router gives for that reason (the
// kernel matches it by the SYN's sequence number, so we quote it),
// otherwise a reset, which a refused connection also gets.
func (r *Relay) refuse(req *tcp.ForwarderRequest, target netip.AddrPort, err error) {
	id := req.ID()
	code, ok := unreachableFor(err)
	if ok && errors.Is(err, syscall.EADDRNOTAVAIL) && hasSource(target.Addr()) {
		// The host has an address to send from: it ran out of
		// ephemeral ports, which no router would call "no route".
		ok = false
	}
	if !ok {
		req.Complete(true)
		return
	}
	seq, ok := r.takeSYN(id)
	if !ok {
		req.Complete(true)
		return
	}
	req.Complete(false)
	var quote [8]byte
	binary.BigEndian.PutUint16(quote[0:], id.RemotePort)
	binary.BigEndian.PutUint16(quote[2:], id.LocalPort)
	binary.BigEndian.PutUint32(quote[4:], seq)
	src := netip.AddrPortFrom(stack.AddrOf(id.RemoteAddress), id.RemotePort)
	dst := netip.AddrPortFrom(stack.AddrOf(id.LocalAddress), id.LocalPort)
	if r.writeUnreachable(src, dst, tcp.ProtocolNumber, quote[:], code) {
		r.c.hostUnreachable.Add(1)
	}
}

// hasSource reports whether the host has an address to send to dst from:
// connecting a UDP socket picks one (and a UDP port, not a TCP one)
// without sending anything.
func hasSource(dst netip.Addr) bool {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 9)))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// maxSYNNotes bounds the SYN sequence numbers kept for refuse; beyond it
// a failed dial gets a reset. A note whose SYN the forwarder dropped (too
// many handshakes in flight) is never taken: when the table is full,
// noteSYN prunes notes older than any handler can still need, at most
// once a second so that a flood of fresh notes costs no scan per packet.
const maxSYNNotes = 1 << 16

// synNote is what noteSYN keeps of a SYN: its sequence number and when it
// came (UnixNano).
type synNote struct {
	seq uint32
	at  int64
}

// noteSYN remembers the initial sequence number of a new connection from
// the namespace while the forwarder handles it.
func (r *Relay) noteSYN(id gstack.TransportEndpointID, pkt *gstack.PacketBuffer) {
	h := header.TCP(pkt.TransportHeader().Slice())
	if len(h) < header.TCPMinimumSize || h.Flags() != header.TCPFlagSyn {
		return
	}
	now := time.Now()
	r.synMu.Lock()
	defer r.synMu.Unlock()
	if len(r.syns) >= maxSYNNotes && now.Sub(r.synPruned) >= time.Second {
		r.synPruned = now
		// refuse takes a note when the dial fails, within DialTimeout
		// of the handler's start, which follows the SYN at once.
		stale := now.Add(-r.cfg.DialTimeout - 5*time.Second).UnixNano()
		for k, n := range r.syns {
			if n.at < stale {
				delete(r.syns, k)
			}
		}
	}
	if len(r.syns) < maxSYNNotes {
		r.syns[id] = synNote{seq: h.SequenceNumber(), at: now.UnixNano()}
	}
}

func (r *Relay) takeSYN(id gstack.TransportEndpointID) (uint32, bool) {
	r.synMu.Lock()
	defer r.synMu.Unlock()
	n, ok := r.syns[id]
	delete(r.syns, id)
	return n.seq, ok
}

func (r *Relay) forgetSYN(id gstack.TransportEndpointID) { r.takeSYN(id) }

// halfCloser is a stream whose write side can be shut down alone.
type halfCloser interface {
	net.Conn
	CloseWrite() error
}

// splice copies both ways between ns (the namespace side) and host until
// both directions end, then closes both. It runs one direction on the
// calling goroutine and the other on a tracked one. When one direction
// has ended, the other is given HalfCloseTimeout of silence before the
// connection is dropped as half-open. nsEP, if it has an endpoint, is the
// endpoint behind ns, which lets the namespace-to-host direction skip the
// relay buffer (copyOut) when host is a *net.TCPConn.
func (r *Relay) splice(ns, host halfCloser, nsEP nsEndpoint) {
	hc, direct := host.(*net.TCPConn)
	direct = direct && nsEP.ep != nil
	if direct {
		nsEP.mu = new(sync.Mutex)
		ns = &closeGuard{halfCloser: ns, mu: nsEP.mu, ep: nsEP.ep}
	}
	if !r.track(ns, host) {
		return
	}
	r.c.tcpActive.Add(1)
	defer r.c.tcpActive.Add(-1)
	flow := new(flowBytes)
	r.addFlow(flow)
	defer r.removeFlow(flow)
	outCount := counter{total: &r.c.bytesOut, flow: &flow.out}
	inCount := counter{total: &r.c.bytesIn, flow: &flow.in}
	var halfClosed atomic.Bool
	done := make(chan struct{})
	inDone := make(chan struct{})
	out := func() { r.copyHalf(host, ns, true, &halfClosed, outCount, nil) }
	var in *directIn
	if direct {
		out = func() { r.copyOut(hc, ns, nsEP, &halfClosed, outCount, inDone) }
		var done func()
		in, done = newDirectIn(hc, nsEP)
		defer done()
	}
	if !r.goTracked(func() {
		defer close(done)
		defer flow.outDone.Store(true)
		out()
	}) {
		return
	}
	r.copyHalf(ns, host, false, &halfClosed, inCount, in)
	close(inDone)
	<-done
	r.untrack(ns, host)
}

// copyHalf copies src to dst until src ends, then shuts down dst's write
// side. It reads into a pooled buffer of BufferSize itself rather than
// through io.Copy, whose ReadFrom/WriteTo fast paths ignore the buffer and
// move 32 KiB at a time.
//
// srcIsNS says src is the namespace side: its errors are gonet's (a
// reset known by its text), the host's are errnos.
//
// direct, if not nil, moves what src holds straight into dst's endpoint
// before each Read (see directIn).
func (r *Relay) copyHalf(dst, src halfCloser, srcIsNS bool, halfClosed *atomic.Bool, count counter, direct *directIn) {
	// With direct, the buffer is taken only for the reads directIn leaves
	// to it, which do not block (EOF, an error, a deadline), and given
	// back after each: a connection, busy or idle, then holds none, where
	// it held BufferSize (256 KiB) for its whole life.
	var bp *[]byte
	defer func() {
		if bp != nil {
			r.putBuf(bp)
		}
	}()
	for {
		if halfClosed.Load() {
			src.SetReadDeadline(time.Now().Add(r.cfg.HalfCloseTimeout))
		}
		if direct != nil {
			switch direct.step(count) {
			case stepMoved:
				continue
			case stepAbort:
				src.Close()
				dst.Close()
				return
			case stepHostReset:
				src.Close()
				closeReset(dst)
				return
			case stepNSReset:
				closeReset(src)
				dst.Close()
				return
			}
		}
		if bp == nil {
			bp = r.getBuf()
		}
		n, err := src.Read(*bp)
		if n > 0 {
			count.add(n)
			if _, werr := dst.Write((*bp)[:n]); werr != nil {
				src.Close() // the peer is gone: abort the other side too
				dst.Close()
				return
			}
		}
		if direct != nil {
			r.putBuf(bp)
			bp = nil
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
		// A reset, a timeout or Close: abort both sides, a reset as a
		// reset. So is a host connection that broke (timed out,
		// aborted, its destination unreachable): closing the namespace's
		// side with a FIN told CMD the server had finished, and a
		// transfer cut short read as complete.
		src.Close()
		if isReset(err) || srcIsNS && gonetReset(err) || !srcIsNS && hostBroken(err) {
			closeReset(dst)
		}
		dst.Close()
		return
	}
}

// isReset reports whether err is a host socket's ECONNRESET: its peer
// reset the connection.
func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

// hostBroken reports whether err is a host socket's own failure, an errno
// (ETIMEDOUT, ECONNABORTED, EHOSTUNREACH, EPIPE, ...), rather than EOF, a
// deadline or the relay closing the socket.
func hostBroken(err error) bool {
	var en syscall.Errno
	return errors.As(err, &en)
}

// resetGrace is how long closeReset lets the bytes relayed before a
// reset go ahead of it. A server that answers and resets at once (Linux
// resets a socket closed with unread data) hands the relay its answer and
// its reset together, often before the namespace's handshake has even
// completed; reset at once, CMD's connect failed with ECONNRESET and the
// answer was lost, where without ustack it reads the answer, then the
// reset. Over the TUN device the namespace's kernel takes queued bytes
// within a millisecond or two; what it cannot take in this time (a full
// window) the reset drops, as on a real network.
const resetGrace = 50 * time.Millisecond

// closeReset closes c with a reset (SO_LINGER 0, which both Linux and
// gVisor answer with a RST instead of a FIN) after resetGrace, so that a
// reset on one side of the relay reaches the other as a reset: as an
// orderly close, a transfer cut short would read as complete. The
// namespace side can be reset only when its endpoint is at hand
// (closeGuard, nsConn). The option is set first, so that a Close by the
// other direction meanwhile resets too.
func closeReset(c halfCloser) {
	abortOnClose(c)
	time.Sleep(resetGrace)
	c.Close()
}

// abortOnClose makes c's Close send a reset instead of a FIN (SO_LINGER
// 0), where c can be told so.
func abortOnClose(c halfCloser) {
	switch c := c.(type) {
	case *closeGuard:
		c.ep.SocketOptions().SetLinger(tcpip.LingerOption{Enabled: true})
	case *nsConn:
		c.ep.SocketOptions().SetLinger(tcpip.LingerOption{Enabled: true})
	case interface{ SetLinger(int) error }: // *net.TCPConn, or Config.Dial's wrapper of one
		c.SetLinger(0)
	}
}
