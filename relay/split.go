package relay

import (
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// headerSplit wraps the link toward the namespace and moves the IP and
// TCP headers of each large inbound packet into a chunk of their own, so
// that gVisor never copies the payload's chunk.
//
// Why: gVisor's IPv4 input holds a reference to the network header's
// chunk (parseAndValidate returns a clone of the header view) and then
// asks for the header again (HandlePacket, "refresh the header"); a
// PullUp of a range in a shared chunk copies the whole chunk first
// (buffer.PullUp, sharesChunk). A TSO segment from the namespace arrives
// in one 64 KiB chunk, so every one was copied and its copy cleared: a
// tenth of ustack's CPU in a `ustack run` upload profile. With the
// headers apart only they are copied, and the payload stays one view
// (copyOut writes it to the host socket in one call).
type headerSplit struct {
	nested.Endpoint
}

const (
	// splitHead bounds the head: an IPv4 header with options and a TCP
	// header with options (60+60 bytes). When the headers cannot be
	// parsed (not TCP, IPv6 extension headers), the first splitHead
	// bytes go in the head, and gVisor merges just the range it needs.
	splitHead = 128
	// splitMin: smaller packets are not worth it; the TUN endpoint
	// copies them into chunks of their own size anyway.
	splitMin = 4096
)

// headerLen returns the length of p's IP and TCP headers, or splitHead
// when p is not a TCP segment in IPv4 or in IPv6 without extension
// headers.
func headerLen(p []byte) int {
	ip := 0
	switch {
	case len(p) >= header.IPv4MinimumSize && p[0]>>4 == 4 && p[9] == uint8(header.TCPProtocolNumber):
		ip = int(p[0]&0xf) * 4
	case len(p) >= header.IPv6MinimumSize && p[0]>>4 == 6 && p[6] == uint8(header.TCPProtocolNumber):
		ip = header.IPv6MinimumSize
	default:
		return splitHead
	}
	if ip < header.IPv4MinimumSize || ip+header.TCPMinimumSize > len(p) {
		return splitHead
	}
	if n := ip + int(p[ip+12]>>4)*4; n >= ip+header.TCPMinimumSize && n <= len(p) {
		return n
	}
	return splitHead
}

var _ gstack.NetworkDispatcher = (*headerSplit)(nil)

func newHeaderSplit(lower gstack.LinkEndpoint) *headerSplit {
	e := &headerSplit{}
	e.Endpoint.Init(lower, e)
	return e
}

// DeliverNetworkPacket implements stack.NetworkDispatcher.
func (e *headerSplit) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *gstack.PacketBuffer) {
	if pkt.Size() < splitMin {
		e.Endpoint.DeliverNetworkPacket(proto, pkt)
		return
	}
	rest := pkt.ToBuffer() // shares pkt's chunks, copies nothing
	var first [splitHead]byte
	rest.ReadAt(first[:], 0)
	n := headerLen(first[:])
	head := buffer.NewViewWithData(first[:n])
	rest.TrimFront(int64(n))
	b := buffer.MakeWithView(head)
	b.Merge(&rest)
	split := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: b})
	e.Endpoint.DeliverNetworkPacket(proto, split)
	split.DecRef()
}
