package tun

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// PacketEndpoint is a link endpoint that moves one IP packet per Read and
// Write on a packet device such as a TUN fd without IFF_VNET_HDR (the
// "water" driver). It does not own rw: whoever opened it closes it, after
// the endpoint's Wait returns.
type PacketEndpoint struct {
	rw io.ReadWriter
	ipLink

	// Malformed counts packets read from the device that were neither
	// IPv4 nor IPv6 and were dropped.
	Malformed atomic.Uint64

	mu         sync.Mutex              // guards dispatcher
	dispatcher stack.NetworkDispatcher // guarded by mu
	onClose    closeAction             // the action SetOnCloseAction set
	stop       chan struct{}           // closed by Attach(nil) or Close
	stopOnce   sync.Once
	writeMu    sync.Mutex // serialises writes so packets are never interleaved

	// The dispatch loop's state, for Wait: running while the loop
	// goroutine exists, reading while it is inside rw.Read. loopCond
	// (on loopMu) is signalled when either changes or stop closes.
	loopMu   sync.Mutex
	loopCond sync.Cond
	running  bool // guarded by loopMu
	reading  bool // guarded by loopMu
}

var _ stack.LinkEndpoint = (*PacketEndpoint)(nil)

// NewPacketEndpoint returns an endpoint over rw with the given MTU. If rw
// has a SetReadDeadline method (an *os.File opened non-blocking does), Close
// uses it to stop a read in progress; otherwise the dispatch loop ends only
// when rw's owner closes it.
func NewPacketEndpoint(rw io.ReadWriter, mtu uint32) *PacketEndpoint {
	e := &PacketEndpoint{rw: rw, stop: make(chan struct{})}
	e.loopCond.L = &e.loopMu
	e.mtu.Store(mtu)
	return e
}

// Capabilities implements stack.LinkEndpoint: no offloads on this path.
func (*PacketEndpoint) Capabilities() stack.LinkEndpointCapabilities { return 0 }

// IsAttached implements stack.LinkEndpoint.
func (e *PacketEndpoint) IsAttached() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dispatcher != nil
}

// Attach implements stack.LinkEndpoint. The first non-nil dispatcher starts
// the dispatch loop; nil (the NIC is being removed) stops it.
func (e *PacketEndpoint) Attach(d stack.NetworkDispatcher) {
	if d == nil {
		// No waiting here: gVisor calls Attach(nil) (and Wait) with the
		// stack's lock held, which a delivery under way may be waiting
		// for. Wait says when the loop no longer touches rw.
		e.shutdown()
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dispatcher != nil {
		return
	}
	select {
	case <-e.stop:
		return // closed: never restart
	default:
	}
	e.dispatcher = d
	e.loopMu.Lock()
	e.running = true
	e.loopMu.Unlock()
	go e.dispatchLoop(d)
}

// Wait implements stack.LinkEndpoint. Once the endpoint is stopped, it
// returns as soon as the loop no longer reads rw and never will, so the
// owner may close it; a delivery into the stack already under way
// finishes on its own (it may be waiting for the very lock the stack holds
// while calling Wait, see Attach), then the loop returns at once. Before
// the endpoint is stopped, Wait waits for the loop to end (rw failing or
// reaching EOF).
func (e *PacketEndpoint) Wait() {
	e.loopMu.Lock()
	defer e.loopMu.Unlock()
	for e.running && (e.reading || !e.stopped()) {
		e.loopCond.Wait()
	}
}

// Close implements stack.LinkEndpoint: it stops the dispatch loop.
func (e *PacketEndpoint) Close() {
	e.shutdown()
	e.onClose.run()
}

// SetOnCloseAction implements stack.LinkEndpoint.
func (e *PacketEndpoint) SetOnCloseAction(f func()) { e.onClose.SetOnCloseAction(f) }

type readDeadliner interface{ SetReadDeadline(time.Time) error }

func (e *PacketEndpoint) shutdown() {
	e.stopOnce.Do(func() {
		e.loopMu.Lock()
		close(e.stop)
		e.loopCond.Broadcast()
		e.loopMu.Unlock()
		if rd, ok := e.rw.(readDeadliner); ok {
			// Wakes a Read blocked in the netpoller; it returns
			// os.ErrDeadlineExceeded and the loop sees stop.
			rd.SetReadDeadline(time.Unix(1, 0))
		}
	})
}

func (e *PacketEndpoint) stopped() bool {
	select {
	case <-e.stop:
		return true
	default:
		return false
	}
}

func (e *PacketEndpoint) dispatchLoop(d stack.NetworkDispatcher) {
	defer func() {
		e.loopMu.Lock()
		e.running = false
		e.loopCond.Broadcast()
		e.loopMu.Unlock()
	}()
	buf := make([]byte, 65536)
	for {
		// Checked under loopMu with reading set in the same critical
		// section, so a Wait that saw the endpoint stopped and not
		// reading is never followed by another Read of rw.
		e.loopMu.Lock()
		if e.stopped() {
			e.loopMu.Unlock()
			return
		}
		e.reading = true
		e.loopMu.Unlock()
		n, err := e.rw.Read(buf)
		e.loopMu.Lock()
		e.reading = false
		e.loopCond.Broadcast()
		e.loopMu.Unlock()
		if e.stopped() {
			return
		}
		if err != nil {
			if errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.EAGAIN) {
				continue // transient: the read is simply tried again
			}
			// Anything else is the device failing for good: a TUN
			// whose device was deleted returns EBADFD to every read
			// at once, so retrying it only spins. The owner learns of
			// it through Failed.
			e.fail(err)
			return
		}
		e.deliver(d, buf[:n])
	}
}

// deliver hands one packet to the stack, or counts it as malformed.
func (e *PacketEndpoint) deliver(d stack.NetworkDispatcher, b []byte) {
	proto, ok := ipVersion(b)
	if !ok {
		e.Malformed.Add(1)
		return
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
		Payload: buffer.MakeWithData(append([]byte(nil), b...)),
	})
	d.DeliverNetworkPacket(proto, pkt)
	pkt.DecRef()
}

// ipVersion reads the IP version nibble.
func ipVersion(b []byte) (tcpip.NetworkProtocolNumber, bool) {
	if len(b) == 0 {
		return 0, false
	}
	switch header.IPVersion(b) {
	case header.IPv4Version:
		return header.IPv4ProtocolNumber, len(b) >= header.IPv4MinimumSize
	case header.IPv6Version:
		return header.IPv6ProtocolNumber, len(b) >= header.IPv6MinimumSize
	}
	return 0, false
}

// WritePackets implements stack.LinkEndpoint, one Write per packet.
func (e *PacketEndpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	var b []byte
	n := 0
	for _, pkt := range pkts.AsSlice() {
		b = b[:0]
		for _, s := range pkt.AsSlices() {
			b = append(b, s...)
		}
		if _, err := e.rw.Write(b); err != nil {
			if n == 0 {
				return 0, &tcpip.ErrClosedForSend{}
			}
			return n, nil
		}
		n++
	}
	return n, nil
}
