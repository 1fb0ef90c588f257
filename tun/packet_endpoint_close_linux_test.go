package tun

import (
	"sync"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
)

// TestPacketTeardownWhileDelivering is TestVnetTeardownWhileDelivering for
// the water driver's endpoint: gVisor removes a NIC by calling Attach(nil)
// and Wait with the stack's lock held, while a delivery under way may be
// waiting for that lock. Both must return, the owner may then close the
// device, and the loop must end once the lock is released.
func TestPacketTeardownWhileDelivering(t *testing.T) {
	leakcheck.Check(t)
	f, peer := packetPair(t, 0)
	ep := NewPacketEndpoint(f, 1500)
	teardownWhileDelivering(t, ep, func() {
		if _, err := peer.Write(icmpEcho(1)); err != nil {
			t.Fatalf("write to the endpoint: %v", err)
		}
	}, func() { f.Close() })
}

// TestPacketWaitBeforeStop: before the endpoint is stopped, Wait waits for
// the loop, which ends when the device reaches EOF.
func TestPacketWaitBeforeStop(t *testing.T) {
	leakcheck.Check(t)
	f, peer := packetPair(t, 0)
	ep := NewPacketEndpoint(f, 1500)
	var mu sync.Mutex
	ep.Attach(&lockingDispatcher{mu: &mu, entered: make(chan struct{})})
	done := make(chan struct{})
	go func() { ep.Wait(); close(done) }()
	select {
	case <-done:
		t.Fatal("Wait returned while the loop was still reading a live device")
	case <-time.After(100 * time.Millisecond):
	}
	peer.Close() // EOF on the endpoint's side
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after the device reached EOF")
	}
}
