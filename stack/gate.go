package stack

import (
	"sync"
	"sync/atomic"

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
//
// Deliveries nest: on loopback a delivery's reply (a RST from
// HandleUnknownDestinationPacket, an ACK) is written and delivered again
// on the same goroutine before the first delivery returns. So a delivery
// must never wait for set: an RWMutex read-locked by each delivery
// deadlocked there, the nested RLock queueing behind Close's pending
// Lock, which waited for the outer RLock (found by FuzzCalls). Deliveries
// count themselves in active and check state without a lock; only set
// waits, for active to drain.
type gate struct {
	nested.Endpoint
	state  atomic.Int32 // a gateState
	active atomic.Int64 // deliveries in progress, nested ones included

	mu      sync.Mutex // serializes set; with drained, its wait for active
	drained *sync.Cond // on mu: active reached 0 while not open
}

type gateState int32

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
	g := &gate{}
	g.state.Store(int32(state))
	g.drained = sync.NewCond(&g.mu)
	g.Endpoint.Init(lower, g)
	return g
}

// DeliverNetworkPacket implements stack.NetworkDispatcher.
func (g *gate) DeliverNetworkPacket(p tcpip.NetworkProtocolNumber, pkt *gstack.PacketBuffer) {
	g.active.Add(1)
	if gateState(g.state.Load()) == gateOpen {
		g.Endpoint.DeliverNetworkPacket(p, pkt)
	}
	// set stores the state before it reads active, and this reads the
	// state after its decrement: if set saw this delivery in progress,
	// this sees the state set stored, and wakes it.
	if g.active.Add(-1) == 0 && gateState(g.state.Load()) != gateOpen {
		g.mu.Lock()
		g.drained.Broadcast()
		g.mu.Unlock()
	}
}

// set moves the gate to state, never back from gateShut; unless it opens
// the gate, it then waits for the deliveries in progress.
func (g *gate) set(state gateState) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if gateState(g.state.Load()) != gateShut {
		g.state.Store(int32(state))
	}
	if state == gateOpen {
		return
	}
	for g.active.Load() != 0 {
		g.drained.Wait()
	}
}
