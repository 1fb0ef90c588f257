package relay

import (
	"bytes"
	"testing"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// recorder is a NetworkDispatcher that keeps what it is given.
type recorder struct {
	views [][]byte
	all   []byte
}

func (r *recorder) DeliverNetworkPacket(_ tcpip.NetworkProtocolNumber, pkt *gstack.PacketBuffer) {
	for _, s := range pkt.AsSlices() {
		r.views = append(r.views, s)
		r.all = append(r.all, s...)
	}
}

func (r *recorder) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *gstack.PacketBuffer) {}

// TestHeaderSplit checks that a large packet reaches the stack byte for
// byte with its first splitHead bytes in a view of their own, and that a
// small one passes unchanged.
func TestHeaderSplit(t *testing.T) {
	for _, size := range []int{100, splitMin - 1, splitMin, 65000} {
		ch := channel.New(1, 65520, "")
		e := newHeaderSplit(ch)
		var rec recorder
		e.Attach(&rec)
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i * 7)
		}
		pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData(data)})
		e.DeliverNetworkPacket(header.IPv4ProtocolNumber, pkt)
		pkt.DecRef()
		if !bytes.Equal(rec.all, data) {
			t.Errorf("size %d: delivered %d bytes, differing from the %d sent", size, len(rec.all), size)
		}
		if size >= splitMin && (len(rec.views) < 2 || len(rec.views[0]) != splitHead) {
			t.Errorf("size %d: first view is %d bytes of %d views, want %d bytes apart", size, len(rec.views[0]), len(rec.views), splitHead)
		}
		if size < splitMin && len(rec.views) != 1 {
			t.Errorf("size %d: delivered in %d views, want 1 (untouched)", size, len(rec.views))
		}
		e.Attach(nil)
		ch.Close()
	}
}
