package tun

import (
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
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
	wg         sync.WaitGroup // the dispatch loop
	writeMu    sync.Mutex     // serialises writes so packets are never interleaved
}

var _ stack.LinkEndpoint = (*PacketEndpoint)(nil)

// NewPacketEndpoint returns an endpoint over rw with the given MTU. If rw
// has a SetReadDeadline method (an *os.File opened non-blocking does), Close
// uses it to stop a read in progress; otherwise the dispatch loop ends only
// when rw's owner closes it.
func NewPacketEndpoint(rw io.ReadWriter, mtu uint32) *PacketEndpoint {
	e := &PacketEndpoint{rw: rw, stop: make(chan struct{})}
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
		e.shutdown()
		e.wg.Wait()
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
	e.wg.Add(1)
	go e.dispatchLoop(d)
}

// Wait implements stack.LinkEndpoint: it waits for the dispatch loop.
func (e *PacketEndpoint) Wait() { e.wg.Wait() }

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
		close(e.stop)
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
	defer e.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, err := e.rw.Read(buf)
		if e.stopped() {
			return
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed) {
				return
			}
			continue // transient (EINTR-like); a closed device returns one of the above
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
