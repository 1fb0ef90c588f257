package tun

import (
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// ipLink holds what every TUN link endpoint answers alike: an MTU, and no
// link layer (no header, no link address, no ARP).
type ipLink struct {
	mtu atomic.Uint32
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
