package tun

import (
	"encoding/binary"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/seqnum"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// ackDelay bounds how long a pure ACK is held, and is the window in which
// sending data after an ACK marks a connection interactive. Linux delays
// ACKs by at least 40 ms (TCP_ATO_MIN) and RFC 9293 section 3.8.6.3 allows
// up to 500 ms; 1 ms keeps well under both. (Go timers shorter than 1 ms
// fire after about 1 ms when the process is idle, so a shorter value would
// not be kept anyway.)
const ackDelay = time.Millisecond

// ackFlows is the size of the direct-mapped table of connection states;
// a collision forgets a connection's state, which only makes its next ACK
// go out at once.
const ackFlows = 256

// ackDelayer is the delayed ACK gVisor's TCP lacks, done on the way out to
// the device: gVisor sends a pure ACK after every batch of received
// segments, and when the application answers at once its reply, which
// carries the same acknowledgement, follows a few microseconds later. Each
// of the two is a write to the device and a packet the kernel's TCP
// handles. Linux's receiver instead delays the ACK of an interactive
// connection ("pingpong" mode, tcp_event_data_sent/tcp_delack_timer in
// net/ipv4/tcp_output.c and tcp_timer.c) so that the reply carries it.
//
// The same here: a connection becomes interactive when it sends data
// within ackDelay of its last pure ACK. Then its next pure ACK that
// acknowledges new data (not a duplicate or a window update, and without
// SACK blocks) is held, at most ackDelay, in a single slot. The next
// segment of the connection that acknowledges as much (its reply) makes
// the held one redundant and it is dropped; a newer pure ACK is written at
// once and the held one dropped, so a busy receiver still acknowledges at
// least every second ACK's worth, as RFC 9293 asks; anything else on the
// connection writes the held ACK first. If the timer runs out the held ACK
// is written and the connection leaves interactive mode, as Linux leaves
// pingpong mode when its delayed-ACK timer fires.
type ackDelayer struct {
	write func([]*stack.PacketBuffer) // writes a held ACK whose time is up

	mu       sync.Mutex
	held     *stack.PacketBuffer // guarded by mu: a pure ACK not yet written, with a reference of ours
	heldFlow flowKey             // guarded by mu
	heldAck  seqnum.Value        // guarded by mu
	timer    *time.Timer         // guarded by mu; created by the first hold
	stopped  bool                // guarded by mu; set by stop
	flows    [ackFlows]ackFlow   // guarded by mu
	epoch    time.Time           // monotonic base of ackFlow times
}

type flowKey struct {
	addrs        [32]byte // source then destination address
	sport, dport uint16
}

type ackFlow struct {
	key      flowKey
	lastACK  time.Duration // since epoch, of the last pure ACK sent or held
	ackSent  bool          // lastACK is set
	ackNo    seqnum.Value  // acknowledgement number last sent
	hasAckNo bool
	pingpong bool
}

// tcpOut is what the delayer needs of an outbound TCP segment.
type tcpOut struct {
	key      flowKey
	ack      seqnum.Value
	hasACK   bool
	pure     bool // ACK flag only, no payload
	holdable bool // pure, with no options but timestamps
	data     bool // carries payload, SYN or FIN
}

func newACKDelayer(write func([]*stack.PacketBuffer)) *ackDelayer {
	return &ackDelayer{write: write, epoch: time.Now()}
}

// filter appends to out the packets to write for pkts, in order: a held
// ACK that must go out first is put before the packet that requires it,
// and a packet the delayer now holds is left out. Every previously held
// ACK it lets go (written or dropped) is also appended to owned: it
// carries the delayer's reference, which the caller releases after
// writing out.
func (d *ackDelayer) filter(pkts, out, owned []*stack.PacketBuffer) ([]*stack.PacketBuffer, []*stack.PacketBuffer) {
	now := time.Since(d.epoch)
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, pkt := range pkts {
		seg, ok := parseTCPOut(pkt)
		if !ok {
			out = append(out, pkt)
			continue
		}
		f := d.flow(seg.key)
		superseded := false
		if d.held != nil && d.heldFlow == seg.key {
			h := d.held
			d.held = nil
			d.timer.Stop()
			owned = append(owned, h)
			if seg.hasACK && d.heldAck.LessThanEq(seg.ack) && !(seg.pure && seg.ack == d.heldAck) {
				superseded = true // h is dropped: seg says all it said
			} else {
				out = append(out, h)
			}
		}
		if seg.holdable && f.pingpong && !superseded && d.held == nil && !d.stopped &&
			f.hasAckNo && f.ackNo.LessThan(seg.ack) {
			d.hold(pkt, seg)
			f.lastACK, f.ackSent, f.ackNo = now, true, seg.ack
			continue
		}
		switch {
		case seg.pure:
			f.lastACK, f.ackSent = now, true
		case seg.data && f.ackSent && now-f.lastACK < ackDelay:
			f.pingpong = true
		}
		if seg.hasACK {
			f.ackNo, f.hasAckNo = seg.ack, true
		}
		out = append(out, pkt)
	}
	return out, owned
}

// flow returns the state slot of key, reset if another connection had it.
// d.mu must be held.
func (d *ackDelayer) flow(key flowKey) *ackFlow {
	h := uint32(key.sport)<<16 | uint32(key.dport)
	for i := 0; i < len(key.addrs); i += 4 {
		h = h*16777619 ^ binary.LittleEndian.Uint32(key.addrs[i:])
	}
	f := &d.flows[(h^h>>16)%ackFlows]
	if f.key != key {
		*f = ackFlow{key: key}
	}
	return f
}

// hold keeps pkt (a pure ACK) and starts the timer. d.mu must be held.
func (d *ackDelayer) hold(pkt *stack.PacketBuffer, seg tcpOut) {
	d.held, d.heldFlow, d.heldAck = pkt.IncRef(), seg.key, seg.ack
	if d.timer == nil {
		d.timer = time.AfterFunc(ackDelay, d.expire)
		return
	}
	d.timer.Reset(ackDelay)
}

// expire writes the held ACK once its time is up, and takes its
// connection out of interactive mode.
func (d *ackDelayer) expire() {
	d.mu.Lock()
	h := d.held
	d.held = nil
	if h != nil {
		d.flow(d.heldFlow).pingpong = false
	}
	d.mu.Unlock()
	if h != nil {
		d.write([]*stack.PacketBuffer{h})
		h.DecRef()
	}
}

// stop drops a held ACK and holds no more: the endpoint is closing.
func (d *ackDelayer) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	if d.timer != nil {
		d.timer.Stop()
	}
	if d.held != nil {
		d.held.DecRef()
		d.held = nil
	}
}

// parseTCPOut reads the headers gVisor set on an outbound TCP segment.
func parseTCPOut(pkt *stack.PacketBuffer) (tcpOut, bool) {
	var s tcpOut
	if pkt.TransportProtocolNumber != header.TCPProtocolNumber {
		return s, false
	}
	th := header.TCP(pkt.TransportHeader().Slice())
	nh := pkt.NetworkHeader().Slice()
	if len(th) < header.TCPMinimumSize || int(th.DataOffset()) > len(th) {
		return s, false
	}
	switch {
	case len(nh) >= header.IPv4MinimumSize && header.IPVersion(nh) == header.IPv4Version:
		copy(s.key.addrs[:4], nh[12:16])
		copy(s.key.addrs[16:20], nh[16:20])
	case len(nh) >= header.IPv6MinimumSize && header.IPVersion(nh) == header.IPv6Version:
		copy(s.key.addrs[:], nh[8:40])
	default:
		return s, false
	}
	s.key.sport, s.key.dport = th.SourcePort(), th.DestinationPort()
	flags := th.Flags()
	s.ack, s.hasACK = seqnum.Value(th.AckNumber()), flags&header.TCPFlagAck != 0
	payload := pkt.Data().Size() > 0
	s.pure = flags == header.TCPFlagAck && !payload
	s.data = payload || flags&(header.TCPFlagSyn|header.TCPFlagFin) != 0
	if s.pure {
		opts := th[header.TCPMinimumSize:th.DataOffset()]
		// No options, or NOP NOP TIMESTAMP as gVisor writes it.
		s.holdable = len(opts) == 0 ||
			len(opts) == 12 && opts[0] == header.TCPOptionNOP && opts[1] == header.TCPOptionNOP &&
				opts[2] == header.TCPOptionTS && opts[3] == header.TCPOptionTSLength
	}
	return s, true
}
