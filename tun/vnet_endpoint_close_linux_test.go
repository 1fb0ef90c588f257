package tun

import (
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// TestVnetCloseStopsLoop: closing the endpoint ends the dispatch loop
// promptly, and writes after it fail with ErrClosedForSend.
func TestVnetCloseStopsLoop(t *testing.T) {
	leakcheck.Check(t)
	f, _ := packetPair(t, 0)
	ep, err := NewVnetEndpoint(f, 1500)
	if err != nil {
		t.Fatalf("NewVnetEndpoint = %v", err)
	}
	ep.Attach(nopDispatcher{})
	if !ep.IsAttached() {
		t.Fatalf("IsAttached() = false after Attach")
	}
	done := make(chan struct{})
	go func() { ep.Close(); ep.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatalf("Close+Wait did not return within 2s")
	}
	var pkts gstack.PacketBufferList
	pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: bufferOf(icmpEcho(1))})
	defer pkt.DecRef()
	pkts.PushBack(pkt)
	if n, err := ep.WritePackets(pkts); n != 0 || !isClosedForSend(err) {
		t.Errorf("WritePackets after Close = %d, %v; want 0, ErrClosedForSend", n, err)
	}
	// A closed endpoint never restarts.
	ep.Attach(nopDispatcher{})
	ep.Wait()
}

// TestNewVnetEndpointNeedsPollableFile: a blocking file is refused, since
// Close could not interrupt its reads.
func TestNewVnetEndpointNeedsPollableFile(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	r.Fd() // makes r blocking
	if _, err := NewVnetEndpoint(r, 1500); err == nil {
		t.Errorf("NewVnetEndpoint(blocking pipe) = nil error, want one")
	}
}

func isClosedForSend(err tcpip.Error) bool {
	_, ok := err.(*tcpip.ErrClosedForSend)
	return ok
}

func bufferOf(b []byte) buffer.Buffer { return buffer.MakeWithData(b) }

// nopDispatcher drops what the endpoint delivers.
type nopDispatcher struct{}

func (nopDispatcher) DeliverNetworkPacket(tcpip.NetworkProtocolNumber, *gstack.PacketBuffer) {}
func (nopDispatcher) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *gstack.PacketBuffer)    {}

// lockingDispatcher blocks each delivery on mu, as gVisor's output path
// blocks on the stack's lock (FindNICNameFromID), and reports the first.
type lockingDispatcher struct {
	mu      *sync.Mutex
	entered chan struct{}
	once    sync.Once
}

func (l *lockingDispatcher) DeliverNetworkPacket(tcpip.NetworkProtocolNumber, *gstack.PacketBuffer) {
	l.once.Do(func() { close(l.entered) })
	l.mu.Lock()
	l.mu.Unlock()
}

func (*lockingDispatcher) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *gstack.PacketBuffer) {}

// TestVnetTeardownWhileDelivering: gVisor removes a NIC, calling
// Attach(nil) and Wait, with the stack's lock held; a delivery under way
// may be waiting for that lock. Attach(nil) and Wait must still return,
// and the loop end once the lock is released.
func TestVnetTeardownWhileDelivering(t *testing.T) {
	leakcheck.Check(t)
	f, peer := packetPair(t, 0)
	ep, err := NewVnetEndpoint(f, 1500)
	if err != nil {
		t.Fatalf("NewVnetEndpoint = %v", err)
	}
	k := &kernelDouble{t: t, f: peer, ep: ep}
	teardownWhileDelivering(t, ep, func() { k.send(virtioHdr{}, icmpEcho(1)) }, func() { f.Close() })
}

// teardownWhileDelivering attaches a dispatcher whose deliveries wait for
// a lock, takes that lock as gVisor's NIC removal holds the stack's, has
// send make a packet arrive, and once its delivery waits calls
// Attach(nil) and Wait: both must return. Then closeDev closes the
// device, as the owner may once Wait returned, and the lock is released.
func teardownWhileDelivering(t *testing.T, ep interface {
	Attach(gstack.NetworkDispatcher)
	Wait()
}, send, closeDev func()) {
	t.Helper()
	var stackLock sync.Mutex
	d := &lockingDispatcher{mu: &stackLock, entered: make(chan struct{})}
	ep.Attach(d)
	stackLock.Lock()
	send()
	<-d.entered
	done := make(chan struct{})
	go func() { ep.Attach(nil); ep.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		stackLock.Unlock()
		t.Fatalf("Attach(nil)+Wait blocked on a delivery waiting for the caller's lock")
	}
	closeDev()
	stackLock.Unlock()
}
