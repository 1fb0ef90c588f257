package relay

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// TestTxQueueKeepsOrder writes large packets (queued) and small ones
// (written inline when nothing is queued) and checks the device gets
// every one, in order; then that removing the NIC stops the write loop.
func TestTxQueueKeepsOrder(t *testing.T) {
	leakcheck.Check(t)
	const n = 2000
	ch := channel.New(n, 65520, "")
	q := newTxQueue(ch)
	q.Attach(nopDispatcher{})
	for i := 0; i < n; i++ {
		size := 100
		if i%3 != 0 {
			size = 8000 // queued
		}
		b := make([]byte, size)
		binary.BigEndian.PutUint32(b, uint32(i))
		pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
		pkt.NetworkProtocolNumber = header.IPv4ProtocolNumber
		var l gstack.PacketBufferList
		l.PushBack(pkt)
		for {
			got, err := q.WritePackets(l)
			if _, full := err.(*tcpip.ErrNoBufferSpace); full && got == 0 {
				// The write loop has not drained the queue yet (a
				// busy machine): the packet was not taken; again.
				time.Sleep(time.Millisecond)
				continue
			}
			if got != 1 || err != nil {
				t.Fatalf("WritePackets(packet %d) = %d, %v; want 1, nil", i, got, err)
			}
			break
		}
		pkt.DecRef()
	}
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < n; {
		p := ch.Read()
		if p == nil {
			if time.Now().After(deadline) {
				t.Fatalf("device got %d packets, want %d", i, n)
			}
			time.Sleep(time.Millisecond)
			continue
		}
		b := p.ToView().AsSlice()
		if got := binary.BigEndian.Uint32(b); got != uint32(i) {
			t.Fatalf("packet %d on the device is packet %d, want them in order", i, got)
		}
		p.DecRef()
		i++
	}
	q.Attach(nil)
	q.Close()
	var l gstack.PacketBufferList
	if _, err := q.WritePackets(l); err == nil {
		t.Errorf("WritePackets after Close succeeded, want ErrClosedForSend")
	}
}

func TestInlineable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sizes []int
		gso   gstack.GSOType
		want  bool
	}{
		{"small", []int{60}, gstack.GSONone, true},
		{"small TCP over GSO", []int{60}, gstack.GSOTCPv4, true}, // a pure ACK
		{"large", []int{8000}, gstack.GSOTCPv4, false},
		{"two small", []int{60, 60}, gstack.GSONone, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l gstack.PacketBufferList
			for _, n := range tc.sizes {
				p := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData(make([]byte, n))})
				p.GSOOptions.Type = tc.gso
				l.PushBack(p)
			}
			defer l.DecRef()
			if got := inlineable(l); got != tc.want {
				t.Errorf("inlineable(%v bytes, %v) = %v, want %v", tc.sizes, tc.gso, got, tc.want)
			}
		})
	}
}

// nopDispatcher is a NetworkDispatcher that drops what it is given.
type nopDispatcher struct{}

func (nopDispatcher) DeliverNetworkPacket(tcpip.NetworkProtocolNumber, *gstack.PacketBuffer) {}
func (nopDispatcher) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *gstack.PacketBuffer)    {}
