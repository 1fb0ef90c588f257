package stack

import (
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// gate sits between a NIC's link endpoint and the stack and passes inbound
// packets only while open.
//
// Close shuts every gate before removing the NICs. Removing a NIC holds the
// gVisor stack's lock while the link endpoint waits for its dispatch loop
// (Stack.Wait, removeNICLocked); a packet delivered just then needs the
// same lock to route its reply (FindRoute, e.g. for a RST), so the loop
// never finishes and Close deadlocks. With the gate shut, no delivery
// enters the stack, and shut waits for any in progress. A gate also lets
// a caller install handlers before the first packet (Config.Paused).
type gate struct {
	nested.Endpoint
	mu    sync.RWMutex // held for reading by every delivery in progress
	state gateState    // guarded by mu
}

type gateState int

const (
	gatePaused gateState = iota // drop until opened
	gateOpen                    // deliver
	gateShut                    // closing: drop for good
)

var _ gstack.NetworkDispatcher = (*gate)(nil)
var _ gstack.LinkEndpoint = (*gate)(nil)

// A gate passes GSO through (nested.Endpoint forwards it), or the TUN
// fast path would lose TSO.
var _ gstack.GSOEndpoint = (*gate)(nil)

func newGate(lower gstack.LinkEndpoint, state gateState) *gate {
	g := &gate{state: state}
	g.Endpoint.Init(lower, g)
	return g
}

// DeliverNetworkPacket implements stack.NetworkDispatcher.
func (g *gate) DeliverNetworkPacket(p tcpip.NetworkProtocolNumber, pkt *gstack.PacketBuffer) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.state == gateOpen {
		g.Endpoint.DeliverNetworkPacket(p, pkt)
	}
}

// set moves the gate to state, never back from gateShut, and waits for the
// deliveries in progress.
func (g *gate) set(state gateState) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state != gateShut {
		g.state = state
	}
}
