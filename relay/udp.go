package relay

import (
	"errors"
	"github.com/ustack/ustack/stack"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// dnsIdleTimeout expires DNS flows sooner than others: a resolver opens a
// fresh source port per query, and each flow holds a host socket.
const dnsIdleTimeout = 10 * time.Second

var datagramPool = sync.Pool{New: func() any { b := make([]byte, 65535); return &b }}

// handleUDP runs on the stack's receive path for the first datagram of a
// flow the namespace opens. It connects a host UDP socket to the real
// destination and relays the flow until it has been idle for
// UDPIdleTimeout. Returning false makes the stack answer with ICMP port
// unreachable, which is what a denied destination gets.
func (r *Relay) handleUDP(req *udp.ForwarderRequest) bool {
	id := req.ID()
	dst := netip.AddrPortFrom(stack.AddrOf(id.LocalAddress), id.LocalPort)
	target, err := r.target(dst)
	if err != nil {
		r.c.denied.Add(1)
		r.logf("udp %v: %v", dst, err)
		return false
	}
	if !r.acquireFlow() {
		return true // dropped, as a full conntrack table drops
	}
	dns := r.isDNS(dst)
	hc, target, err := r.dialDatagram(target, dns)
	if err != nil {
		r.releaseFlow()
		r.logf("udp %v: %v", dst, err)
		// What a router answers for that reason; a blackhole route
		// (EINVAL) drops in silence. A port unreachable would make the
		// namespace's socket say ECONNREFUSED, as if the destination
		// were there with the port closed. The DNS forwarder is ours,
		// not behind a route: with no upstream to reach it refuses
		// (port unreachable), and the resolver moves on at once.
		if dns {
			return false
		}
		if code, ok := unreachableFor(err); ok {
			src := netip.AddrPortFrom(stack.AddrOf(id.RemoteAddress), id.RemotePort)
			if r.writeUDPUnreachable(src, dst, code) {
				r.c.hostUnreachable.Add(1)
			}
			return true
		}
		return errors.Is(err, syscall.EINVAL)
	}
	var wq waiter.Queue
	ep, terr := req.CreateEndpoint(&wq)
	if terr != nil {
		hc.Close()
		r.releaseFlow()
		return true
	}
	gc := gonet.NewUDPConn(&wq, ep)
	nsWait := endpointReadable(&wq, ep)
	idle := r.cfg.UDPIdleTimeout
	if dns && idle > dnsIdleTimeout {
		idle = dnsIdleTimeout
	}
	if !r.track(gc, hc) {
		r.releaseFlow()
		return true
	}
	r.c.udpFlows.Add(1)
	started := r.goTracked(func() {
		defer r.releaseFlow()
		answered := r.relayDatagrams(waiting{datagramConn: gc, wait: nsWait}, hostWaiting(hc), idle, dns, func() {
			// The real destination answered with port unreachable: say
			// so to the namespace, whose socket then reports
			// ECONNREFUSED as it would on the real network.
			src := netip.AddrPortFrom(stack.AddrOf(id.RemoteAddress), id.RemotePort)
			r.writePortUnreachable(src, dst)
			if dns {
				r.dnsFailed(target)
			}
		})
		if dns && !answered {
			r.dnsFailed(target)
		}
	})
	if !started {
		r.releaseFlow()
	}
	return true
}

// dialDatagram connects a host UDP socket to target. For the DNS
// forwarder (dns), an upstream the host cannot send to at all (no route,
// no address of its family, a link-local one without its zone) counts as
// failed at once and the next is tried, each at most once: a stub
// resolver moves on from such a nameserver at once, and without this the
// forwarder kept it as the current upstream for good, so that every query
// of CMD failed. It returns the upstream it connected to.
func (r *Relay) dialDatagram(target netip.AddrPort, dns bool) (*net.UDPConn, netip.AddrPort, error) {
	dial := func(to netip.AddrPort) (*net.UDPConn, error) {
		var laddr *net.UDPAddr
		if src := r.outbound(to.Addr()); src.IsValid() {
			laddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		}
		return net.DialUDP("udp", laddr, net.UDPAddrFromAddrPort(to))
	}
	if dns {
		return dialUpstream(r, target, dial)
	}
	hc, err := dial(target)
	return hc, target, err
}

// udpValid reports whether the first datagram of a new flow has a UDP
// length and checksum that hold, as gVisor's endpoint checks them. The
// forwarder hands the relay a datagram before any endpoint has looked at
// it: without this check a malformed one (a raw socket in the namespace
// can send any) opened a flow, a host socket and a MaxFlows slot for the
// idle timeout, before the new endpoint dropped it.
func udpValid(pkt *gstack.PacketBuffer) bool {
	h := header.UDP(pkt.TransportHeader().Slice())
	if len(h) < header.UDPMinimumSize {
		return false
	}
	ip := pkt.Network()
	lengthValid, csumValid := header.UDPValid(h, func() uint16 { return pkt.Data().Checksum() },
		uint16(pkt.Data().Size()), pkt.NetworkProtocolNumber, ip.SourceAddress(), ip.DestinationAddress(),
		pkt.RXChecksumValidated)
	return lengthValid && csumValid
}

// datagramConn is the part of a connected UDP socket relayDatagrams uses.
type datagramConn interface {
	Read([]byte) (int, error)
	Write([]byte) (int, error)
	SetReadDeadline(time.Time) error
	Close() error
}

// waiting is a datagramConn with the wait for its next datagram: wait
// for the namespace side, rc (its socket) for the host side.
type waiting struct {
	datagramConn
	wait readableWaiter
	rc   syscall.RawConn
}

// hostWaiting returns the waiting of a host socket, read through its
// descriptor when it can be reached.
func hostWaiting(c *net.UDPConn) waiting {
	rc, err := c.SyscallConn()
	if err != nil {
		return waiting{datagramConn: c, wait: func(time.Time) {}}
	}
	return waiting{datagramConn: c, rc: rc}
}

// recv waits until deadline for the next datagram and returns it in a
// buffer from datagramPool, taken only once a datagram is there (see
// readableWaiter).
func (w waiting) recv(deadline time.Time) (*[]byte, int, error) {
	if w.rc != nil {
		return recvSocket(w.rc)
	}
	w.wait(deadline)
	bp := datagramPool.Get().(*[]byte)
	n, err := w.Read(*bp)
	if err != nil {
		datagramPool.Put(bp)
		return nil, 0, err
	}
	return bp, n, nil
}

// recvSocket reads a datagram from a host socket in the netpoller's
// callback: a read that finds one (nearly every read of a busy flow)
// costs one syscall, where a poll(2) before each read cost two; one that
// finds none gives the buffer back and waits in the netpoller, which
// ends the wait at the socket's read deadline and on Close. Errors are
// the socket's: an errno (ECONNREFUSED from a port unreachable),
// os.ErrDeadlineExceeded or net.ErrClosed.
func recvSocket(rc syscall.RawConn) (*[]byte, int, error) {
	var bp *[]byte
	var n int
	var errno error
	err := rc.Read(func(fd uintptr) bool {
		bp = datagramPool.Get().(*[]byte)
		for {
			n, errno = unix.Read(int(fd), *bp)
			if errno != unix.EINTR {
				break
			}
		}
		if errno == unix.EAGAIN {
			datagramPool.Put(bp)
			bp = nil
			return false
		}
		return true
	})
	if err == nil {
		err = errno
	}
	if err != nil {
		if bp != nil {
			datagramPool.Put(bp)
		}
		return nil, 0, err
	}
	return bp, n, nil
}

// readableWaiter waits until a read would not block, the connection is
// closed or deadline passes; the read that follows tells which. A flow
// takes a buffer from datagramPool only once a datagram is there, so an
// idle one holds none: most flows are idle most of their life (a
// resolver's, one per query, kept for dnsIdleTimeout; others for
// UDPIdleTimeout), and each held two 64 KiB buffers, 512 MiB at the
// default MaxFlows. One goroutine calls it (the flow's reader).
type readableWaiter func(deadline time.Time)

// endpointReadable waits on ep's queue wq. The first wait registers one
// entry and makes one timer for the flow's life, where each wait made
// and registered its own: wq is the flow's own (its endpoint's), and the
// entry dies with it, so it is never unregistered. A notification left
// from a datagram already read wakes the wait, which finds nothing
// readable and waits again.
func endpointReadable(wq *waiter.Queue, ep tcpip.Endpoint) readableWaiter {
	const events = waiter.ReadableEvents | waiter.EventHUp | waiter.EventErr
	var entry waiter.Entry
	var notify <-chan struct{}
	var t *time.Timer
	return func(deadline time.Time) {
		if ep.Readiness(events) != 0 {
			return
		}
		if t == nil {
			entry, notify = waiter.NewChannelEntry(events)
			wq.EventRegister(&entry)
			t = time.NewTimer(time.Until(deadline))
		} else {
			t.Reset(time.Until(deadline)) // Go 1.23 timers: no stale tick after Reset
		}
		defer t.Stop()
		for ep.Readiness(events) == 0 {
			select {
			case <-notify:
			case <-t.C:
				return
			}
		}
	}
}

// relayDatagrams copies datagrams both ways between the namespace side ns
// and the host side host until neither has carried one for idle, or
// either is closed; then it closes both. It reports whether the host side
// sent anything back.
func (r *Relay) relayDatagrams(ns, host waiting, idle time.Duration, dns bool, refused func()) (answered bool) {
	r.c.udpActive.Add(1)
	defer r.c.udpActive.Add(-1)
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	var expired atomic.Bool
	done := make(chan struct{})
	pump := func(dst, src waiting, count *atomic.Uint64, queries bool) {
		for {
			deadline := time.Now().Add(idle)
			src.SetReadDeadline(deadline)
			bp, n, err := src.recv(deadline)
			if err != nil {
				if isTimeout(err) {
					if time.Since(time.Unix(0, last.Load())) < idle {
						continue // the other direction was busy
					}
					if !expired.Swap(true) {
						r.c.udpExpired.Add(1)
					}
				} else if isRefused(err) {
					// An ICMP port unreachable from the real
					// destination; the flow may still recover.
					if refused != nil && src.datagramConn == host.datagramConn {
						refused()
					}
					continue
				}
				src.Close()
				dst.Close()
				return
			}
			last.Store(time.Now().UnixNano())
			if src.datagramConn == host.datagramConn {
				answered = true
			}
			count.Add(uint64(n))
			if queries {
				r.c.dnsQueries.Add(1)
			}
			dst.Write((*bp)[:n])
			datagramPool.Put(bp)
		}
	}
	if !r.goTracked(func() {
		defer close(done)
		pump(host, ns, &r.c.bytesOut, dns)
	}) {
		r.untrack(ns.datagramConn, host.datagramConn)
		return false
	}
	pump(ns, host, &r.c.bytesIn, false) // the only writer of answered
	<-done
	r.untrack(ns.datagramConn, host.datagramConn)
	return answered
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// isTimeout reports a read deadline that passed, on a host socket
// (os.ErrDeadlineExceeded) or a gonet one (its own net.Error).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
