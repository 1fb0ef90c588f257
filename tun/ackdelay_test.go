package tun

import (
	"testing"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// seg describes an outbound TCP segment for the delayer tests.
type seg struct {
	sport   uint16
	ack     uint32
	flags   header.TCPFlags
	payload int
	sack    bool // a SACK block after the timestamp
	noTS    bool // no options at all
}

// build returns the segment as gVisor hands it to a link endpoint: IPv4
// and TCP headers pushed, payload as data.
func (s seg) build() *stack.PacketBuffer {
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
		ReserveHeaderBytes: 100,
		Payload:            buffer.MakeWithData(make([]byte, s.payload)),
	})
	opts := []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2} // NOP NOP TS
	switch {
	case s.noTS:
		opts = nil
	case s.sack:
		opts = append(opts, 1, 1, 5, 10, 0, 0, 0, 9, 0, 0, 0, 10)
	}
	th := header.TCP(pkt.TransportHeader().Push(header.TCPMinimumSize + len(opts)))
	th.Encode(&header.TCPFields{SrcPort: s.sport, DstPort: 40000, SeqNum: 1, AckNum: s.ack,
		DataOffset: uint8(len(th)), Flags: s.flags, WindowSize: 1000})
	copy(th[header.TCPMinimumSize:], opts)
	pkt.TransportProtocolNumber = header.TCPProtocolNumber
	ip := header.IPv4(pkt.NetworkHeader().Push(header.IPv4MinimumSize))
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(pkt.Size()), TTL: 64, Protocol: uint8(header.TCPProtocolNumber),
		SrcAddr: tcpip.AddrFrom4([4]byte{10, 99, 0, 2}), DstAddr: tcpip.AddrFrom4([4]byte{10, 99, 0, 1})})
	pkt.NetworkProtocolNumber = header.IPv4ProtocolNumber
	return pkt
}

const (
	ack  = header.TCPFlagAck
	push = header.TCPFlagAck | header.TCPFlagPsh
)

// TestACKDelayerFilter runs sequences of outbound segments, one filter
// call each, through the delayer and checks which reach the device.
func TestACKDelayerFilter(t *testing.T) {
	// warmup makes port 7's connection interactive: an ACK (ack 100),
	// then data within ackDelay of it.
	warmup := []seg{{sport: 7, ack: 100, flags: ack}, {sport: 7, ack: 100, flags: push, payload: 1}}
	for _, tc := range []struct {
		name string
		segs []seg
		// want[i]: the acknowledgement numbers written by the i-th call,
		// in order; a held ACK written before a segment shows up first.
		want [][]uint32
		held bool // an ACK is still held at the end
	}{
		{"bulk receiver is never delayed", []seg{{sport: 9, ack: 10, flags: ack}, {sport: 9, ack: 20, flags: ack}},
			[][]uint32{{10}, {20}}, false},
		{"reply carries the held ACK", append(warmup[:2:2], seg{sport: 7, ack: 101, flags: ack}, seg{sport: 7, ack: 101, flags: push, payload: 1}),
			[][]uint32{{100}, {100}, {}, {101}}, false},
		{"held ACK stays held", append(warmup[:2:2], seg{sport: 7, ack: 101, flags: ack}),
			[][]uint32{{100}, {100}, {}}, true},
		{"newer ACK goes out at once, older dropped", append(warmup[:2:2], seg{sport: 7, ack: 101, flags: ack}, seg{sport: 7, ack: 102, flags: ack}),
			[][]uint32{{100}, {100}, {}, {102}}, false},
		{"window update writes held ACK first", append(warmup[:2:2], seg{sport: 7, ack: 101, flags: ack}, seg{sport: 7, ack: 101, flags: ack}),
			[][]uint32{{100}, {100}, {}, {101, 101}}, false},
		{"ACK of nothing new is not held", append(warmup[:2:2], seg{sport: 7, ack: 100, flags: ack}),
			[][]uint32{{100}, {100}, {100}}, false},
		{"SACK is never held", append(warmup[:2:2], seg{sport: 7, ack: 101, flags: ack, sack: true}),
			[][]uint32{{100}, {100}, {101}}, false},
		{"no timestamps is held", append(warmup[:2:2], seg{sport: 7, ack: 101, flags: ack, noTS: true}),
			[][]uint32{{100}, {100}, {}}, true},
		{"other connection leaves it held", append(warmup[:2:2], seg{sport: 7, ack: 101, flags: ack}, seg{sport: 9, ack: 5, flags: push, payload: 3}),
			[][]uint32{{100}, {100}, {}, {5}}, true},
		{"RST writes held first", append(warmup[:2:2], seg{sport: 7, ack: 101, flags: ack}, seg{sport: 7, flags: header.TCPFlagRst}),
			[][]uint32{{100}, {100}, {}, {101, 0}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newACKDelayer(func([]*stack.PacketBuffer) {})
			defer d.stop()
			for i, s := range tc.segs {
				pkt := s.build()
				out, owned := d.filter([]*stack.PacketBuffer{pkt}, nil, nil)
				got := []uint32{}
				for _, p := range out {
					got = append(got, header.TCP(p.TransportHeader().Slice()).AckNumber())
				}
				if !equalU32(got, tc.want[i]) {
					t.Errorf("segment %d (%+v): wrote acks %v, want %v", i, s, got, tc.want[i])
				}
				for _, p := range owned {
					p.DecRef()
				}
				pkt.DecRef()
			}
			d.mu.Lock()
			held := d.held != nil
			d.mu.Unlock()
			if held != tc.held {
				t.Errorf("an ACK held at the end: %v, want %v", held, tc.held)
			}
		})
	}
}

func equalU32(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
