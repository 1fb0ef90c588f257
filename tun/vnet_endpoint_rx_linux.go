package tun

import (
	"io"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

const (
	// rxChunk is the receive buffer for one packet: gVisor's largest
	// pooled chunk (buffer.MaxChunkSize, 64 KiB). One byte more and
	// NewViewSize allocates outside the pool on every read, which cut
	// kernel->stack throughput from ~22 to 6 Gbit/s in the prototype.
	rxChunk = buffer.MaxChunkSize
	// rxTail catches the bytes of a packet beyond rxChunk: an IPv6
	// packet may be 40+65535 bytes. A read that fills the tail too was
	// truncated and is dropped.
	rxTail = 128
	// rxCopyMax: a packet this small is copied into pool views of its
	// own size and the 64 KiB chunk reused, so that small packets (ACKs,
	// MTU-sized segments) never pin 64 KiB each in the stack's queues;
	// larger ones keep the chunk, wasting under half of it, no worse than
	// the pool's power-of-two rounding.
	rxCopyMax = rxChunk / 2
	// rxHead is copied into a view of its own (see buffer): it holds an
	// IPv4 header with options and a TCP header with options (60+60).
	rxHead = 128
	// rxBatch bounds the packets read per wakeup before delivering them,
	// and rxBatchBytes their bytes: small packets (ACKs) are batched, but
	// a TSO segment goes to the stack at once, since holding it back
	// delays the ACK the kernel's sender waits for.
	rxBatch      = 16
	rxBatchBytes = 32 << 10
	// rxYieldBytes: after delivering this much, the dispatch loop of a
	// program with one P yields it, so that the goroutines the
	// deliveries woke (the TCP processor, which acknowledges, and the
	// reader, whose reads open the window) run before it reads on.
	// Otherwise they run only once the device is empty: in bulk
	// kernel->stack the kernel's sender sent about 1 MB, then waited
	// ~250 us for the one ACK that came after ustack had processed all
	// of it (tcpdump on the TUN), with both CPUs partly idle. Small
	// packets (round trips, handshakes) seldom add up to it.
	rxYieldBytes = 256 << 10
)

// rxState is the dispatch loop's receive state.
type rxState struct {
	e      *VnetEndpoint
	hdr    [virtioNetHdrLen]byte
	main   *buffer.View // rxChunk bytes, or nil once handed to a packet
	tail   *buffer.View // rxTail bytes, or nil once handed to a packet
	iov    [3]unix.Iovec
	batch  []rxPacket
	bytes  int                // in batch
	err    error              // why the loop must end, set by read
	readFn func(uintptr) bool // read, bound once so Read does not allocate
}

type rxPacket struct {
	proto tcpip.NetworkProtocolNumber
	buf   buffer.Buffer
}

func newRxState(e *VnetEndpoint) *rxState {
	r := &rxState{e: e, batch: make([]rxPacket, 0, rxBatch)}
	r.iov[0].Base = &r.hdr[0]
	r.iov[0].SetLen(virtioNetHdrLen)
	r.readFn = r.read
	return r
}

// refill gives the iovecs fresh buffers where the last packet took them.
func (r *rxState) refill() {
	if r.main == nil {
		r.main = buffer.NewViewSize(rxChunk)
		r.iov[1].Base = &r.main.AsSlice()[0]
		r.iov[1].SetLen(rxChunk)
	}
	if r.tail == nil {
		r.tail = buffer.NewViewSize(rxTail)
		r.iov[2].Base = &r.tail.AsSlice()[0]
		r.iov[2].SetLen(rxTail)
	}
}

func (r *rxState) release() {
	for i := range r.batch {
		r.batch[i].buf.Release()
	}
	r.batch = r.batch[:0]
	r.bytes = 0
	for _, v := range []**buffer.View{&r.main, &r.tail} {
		if *v != nil {
			(*v).Release()
			*v = nil
		}
	}
}

// read is the RawConn.Read callback: it reads packets until the batch is
// full or the device has none (EAGAIN), and returns false only to wait
// for readability with an empty batch.
func (r *rxState) read(fd uintptr) bool {
	for len(r.batch) < rxBatch && r.bytes < rxBatchBytes {
		r.refill()
		n, errno := readv(fd, r.iov[:])
		switch errno {
		case 0:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return len(r.batch) > 0
		case unix.EINVAL:
			// The kernel dropped a packet it could not describe in a
			// virtio-net header (tun_put_user: "unexpected GSO type");
			// the next read goes on.
			r.e.Malformed.Add(1)
			continue
		default:
			r.err = errno
			return true
		}
		if n == 0 {
			r.err = io.EOF // a socketpair double's peer closed
			return true
		}
		r.take(n)
	}
	return true
}

// deliver hands the batch to the stack and empties it. Once stop is
// closed, the rest is dropped: the stack is going away.
func (r *rxState) deliver(d stack.NetworkDispatcher, stop <-chan struct{}) {
	for i := range r.batch {
		p := &r.batch[i]
		select {
		case <-stop:
			p.buf.Release()
		default:
			pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: p.buf})
			d.DeliverNetworkPacket(p.proto, pkt)
			pkt.DecRef()
		}
		*p = rxPacket{}
	}
	r.batch = r.batch[:0]
	r.bytes = 0
}

// take checks the packet just read (n bytes with the header) and adds it
// to the batch, or counts it as dropped.
func (r *rxState) take(n int) {
	size := n - virtioNetHdrLen
	if size <= 0 || size >= rxChunk+rxTail {
		r.e.Malformed.Add(1) // no header, or truncated
		return
	}
	h := decodeVirtioHdr(r.hdr[:])
	pkt := r.main.AsSlice()[:min(size, rxChunk)]
	if size > rxChunk {
		// Only an IPv6 TSO segment gets here, if ever: check a copy.
		pkt = append(append(make([]byte, 0, size), pkt...), r.tail.AsSlice()[:size-rxChunk]...)
	}
	proto, verdict := checkRx(h, pkt)
	switch verdict {
	case rxMalformed:
		r.e.Malformed.Add(1)
		return
	case rxBadChecksum:
		r.e.BadChecksum.Add(1)
		return
	}
	r.batch = append(r.batch, rxPacket{proto: proto, buf: r.buffer(size)})
	r.bytes += size
}

// buffer turns the packet just read (size bytes) into the stack's buffer.
// Its first rxHead bytes, where the IP and TCP headers are, get a small
// view of their own: gVisor clones a header's whole chunk when it reads
// the header while holding another reference to it (ipv4 HandlePacket
// does), which for a 64 KiB chunk cost a 64 KiB clear and copy per packet.
func (r *rxState) buffer(size int) buffer.Buffer {
	pkt := r.main.AsSlice()
	head := min(size, rxHead)
	buf := buffer.MakeWithView(buffer.NewViewWithData(pkt[:head]))
	switch rest := size - head; {
	case rest == 0:
	case rest <= rxCopyMax:
		buf.Append(buffer.NewViewWithData(pkt[head:size]))
	default:
		v := r.main
		r.main = nil
		v.CapLength(min(size, rxChunk))
		v.TrimFront(head)
		buf.Append(v)
		if size > rxChunk {
			r.tail.CapLength(size - rxChunk)
			buf.Append(r.tail)
			r.tail = nil
		}
	}
	return buf
}
