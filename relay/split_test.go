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
// byte with its headers in a view of their own (the IPv4 and TCP headers
// of a TCP segment, else the first splitHead bytes), and that a small one
// passes unchanged.
func TestHeaderSplit(t *testing.T) {
	for _, tc := range []struct {
		size, tcpHdr int // tcpHdr > 0: an IPv4 TCP segment with that TCP header length
		wantHead     int
	}{
		{100, 0, 0}, {splitMin - 1, 0, 0}, {splitMin, 0, splitHead}, {65000, 0, splitHead},
		{65000, 32, header.IPv4MinimumSize + 32}, {splitMin, 60, header.IPv4MinimumSize + 60},
	} {
		size := tc.size
		ch := channel.New(1, 65520, "")
		e := newHeaderSplit(ch)
		var rec recorder
		e.Attach(&rec)
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i * 7)
		}
		if tc.tcpHdr > 0 {
			header.IPv4(data).Encode(&header.IPv4Fields{TotalLength: uint16(size), TTL: 64, Protocol: uint8(header.TCPProtocolNumber)})
			data[header.IPv4MinimumSize+12] = byte(tc.tcpHdr/4) << 4
		}
		pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData(data)})
		e.DeliverNetworkPacket(header.IPv4ProtocolNumber, pkt)
		pkt.DecRef()
		if !bytes.Equal(rec.all, data) {
			t.Errorf("size %d: delivered %d bytes, differing from the %d sent", size, len(rec.all), size)
		}
		if tc.wantHead > 0 && (len(rec.views) != 2 || len(rec.views[0]) != tc.wantHead) {
			t.Errorf("size %d, TCP header %d: first view is %d bytes of %d views, want %d bytes, then the rest in one", size, tc.tcpHdr, len(rec.views[0]), len(rec.views), tc.wantHead)
		}
		if tc.wantHead == 0 && len(rec.views) != 1 {
			t.Errorf("size %d: delivered in %d views, want 1 (untouched)", size, len(rec.views))
		}
		e.Attach(nil)
		ch.Close()
	}
}
