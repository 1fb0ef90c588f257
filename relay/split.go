package relay

import (
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// headerSplit wraps the link toward the namespace and moves the first
// splitHead bytes of each large inbound packet (its IP and TCP headers)
// into a chunk of their own, so that gVisor never copies the payload's
// chunk.
//
// Why: gVisor's IPv4 input holds a reference to the network header's
// chunk (parseAndValidate returns a clone of the header view) and then
// asks for the header again (HandlePacket, "refresh the header"); a
// PullUp of a range in a shared chunk copies the whole chunk first
// (buffer.PullUp, sharesChunk). A TSO segment from the namespace arrives
// in one 64 KiB chunk, so every one was copied and its copy cleared: a
// tenth of ustack's CPU in a `ustack run` upload profile. With the
// headers apart only the 128-byte head is copied.
type headerSplit struct {
	nested.Endpoint
}

const (
	// splitHead holds an IPv4 header with options and a TCP header with
	// options (60+60 bytes); an IPv6 header with extension headers may
	// reach past it, and gVisor then merges just the range it needs.
	splitHead = 128
	// splitMin: smaller packets are not worth it; the TUN endpoint
	// copies them into chunks of their own size anyway.
	splitMin = 4096
)

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
	head := buffer.NewViewSize(splitHead)
	rest.ReadAt(head.AsSlice(), 0)
	rest.TrimFront(splitHead)
	b := buffer.MakeWithView(head)
	b.Merge(&rest)
	split := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: b})
	e.Endpoint.DeliverNetworkPacket(proto, split)
	split.DecRef()
}
