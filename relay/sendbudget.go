package relay

import "gvisor.dev/gvisor/pkg/tcpip"

// The send buffers of the connections the relay writes into toward the
// namespace are where a namespace that stops reading leaves the host's
// bytes: gVisor grows each to its maximum (4 MiB, the stack's default
// range in stack/tcp.go) as the congestion window grows, so a command
// that opened --max-flows connections to fast servers and read none of
// them held 4096 × 4 MiB = 16 GiB in ustack (measured: 50 such
// connections, 4.1 MiB of RSS each). A relay-wide budget caps the total.
const (
	// minSendBuffer is what a connection gets once the budget is spent,
	// enough for about 10 Gbit/s at the TUN path's ~100 µs round trip.
	minSendBuffer = 128 << 10
	// defaultSendBudget: 64 connections at the stack's default 4 MiB
	// maximum.
	defaultSendBudget = 256 << 20
)

// reserveSendBuffer reserves r.maxSendBuffer for the send buffer of ep, a
// connection toward the namespace, while Config.SendBufferBudget has
// room, else fixes it at what is left or minSendBuffer, and returns the
// function that gives the reservation back when the connection ends.
// r.maxSendBuffer is the stack's largest send buffer, read from the stack
// (so a larger TCPConfig.SendBuffer.Max is reserved whole): the most
// gVisor's auto-tuning would give ep anyway. A connection with the full
// reservation keeps auto-tuning, whose ceiling it is, so the first
// connections behave exactly as before; a fixed size turns auto-tuning
// off. Either way no connection holds more than it reserved: in all, at
// most SendBufferBudget + MaxFlows × minSendBuffer (768 MiB by default)
// whatever the namespace does.
func (r *Relay) reserveSendBuffer(ep tcpip.Endpoint) (release func()) {
	for {
		used := r.sendReserved.Load()
		size := r.maxSendBuffer
		if left := int64(r.cfg.SendBufferBudget) - used; left < size {
			size = max(left, minSendBuffer)
		}
		if r.sendReserved.CompareAndSwap(used, used+size) {
			if size < r.maxSendBuffer {
				ep.SocketOptions().SetSendBufferSize(size, true)
			}
			return func() { r.sendReserved.Add(-size) }
		}
	}
}
