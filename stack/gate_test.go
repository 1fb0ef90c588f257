package stack

import (
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// reentrantDispatcher is the stack above a gate: its first delivery
// starts shutting the gate and, once the gate is shut, delivers a second
// packet through the gate on the same goroutine, as loopback does with a
// reply (a RST) written while the first packet is handled.
type reentrantDispatcher struct {
	g         *gate
	delivered int
	shutDone  chan struct{}
	shutSeen  bool
}

func (d *reentrantDispatcher) DeliverNetworkPacket(p tcpip.NetworkProtocolNumber, pkt *gstack.PacketBuffer) {
	d.delivered++
	if d.delivered > 1 {
		return
	}
	go func() {
		d.g.set(gateShut)
		close(d.shutDone)
	}()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if gateState(d.g.state.Load()) == gateShut {
			d.shutSeen = true
			break
		}
	}
	reply := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData([]byte{0x45})})
	defer reply.DecRef()
	d.g.DeliverNetworkPacket(p, reply)
}

func (*reentrantDispatcher) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *gstack.PacketBuffer) {}

// TestGateShutDuringNestedDelivery shuts a gate while a delivery is in
// progress whose handling delivers another packet through the same gate.
// The nested delivery must be dropped without waiting for the shut, and
// the shut must return once the outer delivery has: Stack.Close did
// exactly this under FuzzCalls and deadlocked when the gate was an
// RWMutex (the nested RLock queued behind the shut's Lock).
func TestGateShutDuringNestedDelivery(t *testing.T) {
	leakcheck.Check(t)
	lower := channel.New(1, header.IPv4MinimumSize+64, "")
	defer lower.Close()
	g := newGate(lower, gateOpen)
	d := &reentrantDispatcher{g: g, shutDone: make(chan struct{})}
	g.Attach(d)

	outer := make(chan struct{})
	go func() {
		defer close(outer)
		pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData([]byte{0x45})})
		defer pkt.DecRef()
		g.DeliverNetworkPacket(header.IPv4ProtocolNumber, pkt)
	}()
	select {
	case <-outer:
	case <-time.After(10 * time.Second):
		t.Fatal("the nested delivery blocked on the shut in progress: deadlock")
	}
	if !d.shutSeen {
		t.Error("set(gateShut) did not shut the gate while a delivery was in progress")
	}
	if d.delivered != 1 {
		t.Errorf("deliveries passed = %d, want 1 (the nested one comes after the shut)", d.delivered)
	}
	select {
	case <-d.shutDone:
	case <-time.After(10 * time.Second):
		t.Fatal("set(gateShut) still waiting after the last delivery returned")
	}
}

// TestGateShutWaitsForDelivery checks that shutting a gate waits for a
// delivery in progress, which Stack.Close relies on before it removes
// the NICs.
func TestGateShutWaitsForDelivery(t *testing.T) {
	leakcheck.Check(t)
	lower := channel.New(1, header.IPv4MinimumSize+64, "")
	defer lower.Close()
	g := newGate(lower, gateOpen)
	inside, release := make(chan struct{}), make(chan struct{})
	g.Attach(blockingDispatcher{inside: inside, release: release})
	go func() {
		pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData([]byte{0x45})})
		defer pkt.DecRef()
		g.DeliverNetworkPacket(header.IPv4ProtocolNumber, pkt)
	}()
	<-inside
	shut := make(chan struct{})
	go func() {
		g.set(gateShut)
		close(shut)
	}()
	select {
	case <-shut:
		t.Fatal("set(gateShut) returned while a delivery was in progress")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	select {
	case <-shut:
	case <-time.After(10 * time.Second):
		t.Fatal("set(gateShut) still waiting after the delivery returned")
	}
}

type blockingDispatcher struct{ inside, release chan struct{} }

func (d blockingDispatcher) DeliverNetworkPacket(tcpip.NetworkProtocolNumber, *gstack.PacketBuffer) {
	close(d.inside)
	<-d.release
}

func (blockingDispatcher) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *gstack.PacketBuffer) {}
