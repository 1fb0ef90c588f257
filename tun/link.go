package tun

import (
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// ipLink holds what every TUN link endpoint answers alike: an MTU, no
// link layer (no header, no link address, no ARP), and how its dispatch
// loop failed, if it did.
type ipLink struct {
	mtu atomic.Uint32

	failMu  sync.Mutex    // guards failCh, failErr
	failCh  chan struct{} // closed by fail; made on first use
	failErr error
}

// Failed returns a channel that is closed when the endpoint's dispatch
// loop ended on its own because reading the device failed: the device was
// deleted (`ip link del`: EBADFD), or its file reached EOF. Stopping the
// endpoint (Close, Attach(nil)) never closes it. The stack is not told:
// it would wait for packets forever, so the owner should watch this.
func (l *ipLink) Failed() <-chan struct{} {
	l.failMu.Lock()
	defer l.failMu.Unlock()
	if l.failCh == nil {
		l.failCh = make(chan struct{})
	}
	return l.failCh
}

// Err returns the read error that ended the dispatch loop, or nil while
// it has not failed.
func (l *ipLink) Err() error {
	l.failMu.Lock()
	defer l.failMu.Unlock()
	return l.failErr
}

// fail records the error that ended the dispatch loop; the first wins.
func (l *ipLink) fail(err error) {
	l.failMu.Lock()
	defer l.failMu.Unlock()
	if l.failErr != nil {
		return
	}
	l.failErr = err
	if l.failCh == nil {
		l.failCh = make(chan struct{})
	}
	close(l.failCh)
}

// MTU implements stack.LinkEndpoint.
func (l *ipLink) MTU() uint32 { return l.mtu.Load() }

// SetMTU implements stack.LinkEndpoint.
func (l *ipLink) SetMTU(mtu uint32) { l.mtu.Store(mtu) }

// MaxHeaderLength implements stack.LinkEndpoint: a TUN has no link header
// (the vnet driver's virtio-net header goes in an iovec of its own).
func (*ipLink) MaxHeaderLength() uint16 { return 0 }

// LinkAddress implements stack.LinkEndpoint: a TUN has no link address.
func (*ipLink) LinkAddress() tcpip.LinkAddress { return "" }

// SetLinkAddress implements stack.LinkEndpoint.
func (*ipLink) SetLinkAddress(tcpip.LinkAddress) {}

// ARPHardwareType implements stack.LinkEndpoint.
func (*ipLink) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareNone }

// AddHeader implements stack.LinkEndpoint.
func (*ipLink) AddHeader(*stack.PacketBuffer) {}

// ParseHeader implements stack.LinkEndpoint.
func (*ipLink) ParseHeader(*stack.PacketBuffer) bool { return true }

// closeAction holds the action stack.LinkEndpoint.SetOnCloseAction sets,
// run once by the endpoint's Close.
type closeAction struct {
	mu sync.Mutex // guards f
	f  func()
}

// SetOnCloseAction implements stack.LinkEndpoint.
func (c *closeAction) SetOnCloseAction(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.f = f
}

// run runs the action, if any, once.
func (c *closeAction) run() {
	c.mu.Lock()
	f := c.f
	c.f = nil
	c.mu.Unlock()
	if f != nil {
		f()
	}
}
