package tun

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// VnetEndpoint is the link endpoint of the "vnet" driver: IP packets, each
// preceded by a virtio-net header, on a TUN fd opened with IFF_VNET_HDR and
// TUNSETOFFLOAD(TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6). Both ways, TCP segments of
// up to 64 KiB cross the device with partial checksums, and the kernel
// segments and checksums them: the stack does host GSO on send and accepts
// the kernel's TSO segments whole on receive.
//
// It reads through Go's netpoller (the file must be non-blocking), with
// readv of the header and the packet into separate buffers from gVisor's
// pool, and writes each packet with one writev of the header and the
// packet's own slices, without copying.
//
// It does not own the file: whoever opened it closes it after Wait returns.
// Close and Attach(nil) stop the dispatch loop by setting a past read
// deadline on the file.
type VnetEndpoint struct {
	f   *os.File
	rc  syscall.RawConn
	mtu atomic.Uint32

	// Malformed counts packets read from the device and dropped because
	// their virtio-net header was short, inconsistent or unsupported, or
	// they were neither IPv4 nor IPv6.
	Malformed atomic.Uint64
	// BadChecksum counts packets dropped because a checksum the kernel
	// had not verified (no NEEDS_CSUM or DATA_VALID flag) was wrong.
	BadChecksum atomic.Uint64
	// TxDropped counts outbound packets dropped before reaching the
	// device because their GSO type cannot be expressed in the header.
	TxDropped atomic.Uint64

	mu         sync.Mutex              // guards dispatcher, onClose
	dispatcher stack.NetworkDispatcher // guarded by mu
	onClose    func()                  // guarded by mu
	stop       chan struct{}           // closed by Attach(nil) or Close
	stopOnce   sync.Once
	wg         sync.WaitGroup // the dispatch loop

	rx  *rxState  // owned by the dispatch loop
	txs sync.Pool // of *txState, one per concurrent WritePackets
}

var (
	_ stack.LinkEndpoint = (*VnetEndpoint)(nil)
	_ stack.GSOEndpoint  = (*VnetEndpoint)(nil)
)

// NewVnetEndpoint returns an endpoint over f, a non-blocking packet file
// whose every read and write starts with a 10-byte virtio-net header (a TUN
// set up by Open, or a socketpair in tests), with the given MTU.
func NewVnetEndpoint(f *os.File, mtu uint32) (*VnetEndpoint, error) {
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		return nil, fmt.Errorf("tun: vnet endpoint needs a non-blocking file: %w", err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("tun: vnet endpoint: %w", err)
	}
	// A file made blocking after opening (by its Fd method) still takes
	// deadlines, but they no longer interrupt its reads.
	flags := 0
	rc.Control(func(fd uintptr) { flags, err = unix.FcntlInt(fd, unix.F_GETFL, 0) })
	if err != nil || flags&unix.O_NONBLOCK == 0 {
		return nil, fmt.Errorf("tun: vnet endpoint needs a non-blocking file (O_NONBLOCK is off: %v)", err)
	}
	e := &VnetEndpoint{f: f, rc: rc, stop: make(chan struct{})}
	e.mtu.Store(mtu)
	e.rx = newRxState(e)
	e.txs.New = func() any { return newTxState(e) }
	return e, nil
}

// gsoMaxSize is the largest segment the stack hands us and the kernel
// accepts: 64 KiB, the kernel's default gso_max_size (GSO_LEGACY_MAX_SIZE).
// gVisor keeps TCP payloads 161 bytes under it, so the IP length fits 16 bits.
const gsoMaxSize = 1 << 16

// GSOMaxSize implements stack.GSOEndpoint.
func (*VnetEndpoint) GSOMaxSize() uint32 { return gsoMaxSize }

// SupportedGSO implements stack.GSOEndpoint: the kernel segments.
func (*VnetEndpoint) SupportedGSO() stack.SupportedGSO { return stack.HostGSOSupported }

// MTU implements stack.LinkEndpoint.
func (e *VnetEndpoint) MTU() uint32 { return e.mtu.Load() }

// SetMTU implements stack.LinkEndpoint.
func (e *VnetEndpoint) SetMTU(mtu uint32) { e.mtu.Store(mtu) }

// MaxHeaderLength implements stack.LinkEndpoint: a TUN has no link header;
// the virtio-net header goes in its own iovec.
func (*VnetEndpoint) MaxHeaderLength() uint16 { return 0 }

// LinkAddress implements stack.LinkEndpoint: a TUN has no link address.
func (*VnetEndpoint) LinkAddress() tcpip.LinkAddress { return "" }

// SetLinkAddress implements stack.LinkEndpoint.
func (*VnetEndpoint) SetLinkAddress(tcpip.LinkAddress) {}

// Capabilities implements stack.LinkEndpoint. RX checksum offload: packets
// from the kernel carry partial (NEEDS_CSUM) or verified (DATA_VALID)
// checksums, and checkRx verifies the rest before delivery. No TX checksum
// offload: gVisor would then leave UDP and ICMP checksums empty, while TCP
// with host GSO already leaves the kernel a partial checksum to finish.
func (*VnetEndpoint) Capabilities() stack.LinkEndpointCapabilities {
	return stack.CapabilityRXChecksumOffload
}

// ARPHardwareType implements stack.LinkEndpoint.
func (*VnetEndpoint) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareNone }

// AddHeader implements stack.LinkEndpoint.
func (*VnetEndpoint) AddHeader(*stack.PacketBuffer) {}

// ParseHeader implements stack.LinkEndpoint.
func (*VnetEndpoint) ParseHeader(*stack.PacketBuffer) bool { return true }

// IsAttached implements stack.LinkEndpoint.
func (e *VnetEndpoint) IsAttached() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dispatcher != nil
}

// Attach implements stack.LinkEndpoint. The first non-nil dispatcher starts
// the dispatch loop; nil (the NIC is being removed) stops it for good.
func (e *VnetEndpoint) Attach(d stack.NetworkDispatcher) {
	if d == nil {
		e.shutdown()
		e.wg.Wait()
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dispatcher != nil || e.stopped() {
		return
	}
	e.dispatcher = d
	e.wg.Add(1)
	go e.dispatchLoop(d)
}

// Wait implements stack.LinkEndpoint: it waits for the dispatch loop.
func (e *VnetEndpoint) Wait() { e.wg.Wait() }

// Close implements stack.LinkEndpoint: it stops the dispatch loop and runs
// the close action. The file stays open.
func (e *VnetEndpoint) Close() {
	e.shutdown()
	e.mu.Lock()
	f := e.onClose
	e.onClose = nil
	e.mu.Unlock()
	if f != nil {
		f()
	}
}

// SetOnCloseAction implements stack.LinkEndpoint.
func (e *VnetEndpoint) SetOnCloseAction(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.onClose = f
}

// shutdown marks the endpoint stopped and wakes a read or write waiting in
// the netpoller: it returns os.ErrDeadlineExceeded, and the loop sees stop.
func (e *VnetEndpoint) shutdown() {
	e.stopOnce.Do(func() {
		close(e.stop)
		past := time.Unix(1, 0)
		e.f.SetReadDeadline(past)
		e.f.SetWriteDeadline(past)
	})
}

func (e *VnetEndpoint) stopped() bool {
	select {
	case <-e.stop:
		return true
	default:
		return false
	}
}

// dispatchLoop reads batches of packets and delivers them until the
// endpoint stops or the file fails (EOF, EBADFD once the device is gone).
func (e *VnetEndpoint) dispatchLoop(d stack.NetworkDispatcher) {
	defer e.wg.Done()
	defer e.rx.release()
	for {
		err := e.rc.Read(e.rx.readFn)
		e.rx.deliver(d)
		if e.stopped() || err != nil || e.rx.err != nil {
			return
		}
	}
}

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
	// rxCopyMax: a packet this small is copied into a pool view of its
	// own size and the 64 KiB chunk reused, so that small packets (ACKs,
	// MTU-sized segments) never pin 64 KiB each in the stack's queues;
	// larger ones keep the chunk, wasting under half of it, no worse than
	// the pool's power-of-two rounding.
	rxCopyMax = rxChunk / 2
	// rxBatch bounds the packets read per wakeup before delivering them.
	rxBatch = 16
)

// rxState is the dispatch loop's receive state.
type rxState struct {
	e      *VnetEndpoint
	hdr    [virtioNetHdrLen]byte
	main   *buffer.View // rxChunk bytes, or nil once handed to a packet
	tail   *buffer.View // rxTail bytes, or nil once handed to a packet
	iov    [3]unix.Iovec
	batch  []rxPacket
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
	for len(r.batch) < rxBatch {
		r.refill()
		n, errno := readv(fd, r.iov[:])
		switch errno {
		case 0:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return len(r.batch) > 0
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

// deliver hands the batch to the stack and empties it.
func (r *rxState) deliver(d stack.NetworkDispatcher) {
	for i := range r.batch {
		p := &r.batch[i]
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: p.buf})
		d.DeliverNetworkPacket(p.proto, pkt)
		pkt.DecRef()
		*p = rxPacket{}
	}
	r.batch = r.batch[:0]
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
	var buf buffer.Buffer
	switch {
	case size <= rxCopyMax:
		buf = buffer.MakeWithView(buffer.NewViewWithData(pkt))
	case size <= rxChunk:
		r.main.CapLength(size)
		buf = buffer.MakeWithView(r.main)
		r.main = nil
	default:
		r.main.CapLength(rxChunk)
		r.tail.CapLength(size - rxChunk)
		buf = buffer.MakeWithView(r.main)
		buf.Append(r.tail)
		r.main, r.tail = nil, nil
	}
	r.batch = append(r.batch, rxPacket{proto: proto, buf: buf})
}

// maxIov is IOV_MAX on Linux: a packet in more slices is copied first.
const maxIov = 1024

// txState is the scratch of one WritePackets call.
type txState struct {
	e       *VnetEndpoint
	hdr     [virtioNetHdrLen]byte
	iov     []unix.Iovec
	pkts    []*stack.PacketBuffer
	next    int // index in pkts of the packet to write next
	written int
	err     unix.Errno
	writeFn func(uintptr) bool // write, bound once
}

func newTxState(e *VnetEndpoint) *txState {
	t := &txState{e: e, iov: make([]unix.Iovec, 0, 16)}
	t.writeFn = t.write
	return t
}

// WritePackets implements stack.LinkEndpoint: one writev per packet, of its
// virtio-net header and the packet's slices. A TUN takes each write whole.
func (e *VnetEndpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	t := e.txs.Get().(*txState)
	t.pkts, t.next, t.written, t.err = pkts.AsSlice(), 0, 0, 0
	err := e.rc.Write(t.writeFn)
	n, errno := t.written, t.err
	clear(t.pkts)
	t.pkts = nil
	e.txs.Put(t)
	switch {
	case err != nil: // deadline set by shutdown, or the file closed
		return n, &tcpip.ErrClosedForSend{}
	case errno != 0:
		return n, tcpip.TranslateErrno(errno)
	}
	return n, nil
}

// write is the RawConn.Write callback; it returns false to wait for the
// file to become writable (a full socket buffer in tests; a TUN never is).
func (t *txState) write(fd uintptr) bool {
	for t.next < len(t.pkts) {
		pkt := t.pkts[t.next]
		h, ok := txVirtioHdr(pkt)
		if !ok {
			t.e.TxDropped.Add(1)
			t.next++
			continue
		}
		h.encode(t.hdr[:])
		t.gather(pkt)
		_, errno := writev(fd, t.iov)
		switch errno {
		case 0:
			t.written++
			t.next++
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			t.err = errno
			return true
		}
	}
	return true
}

// gather points t.iov at the header and the packet's bytes.
func (t *txState) gather(pkt *stack.PacketBuffer) {
	t.iov = t.iov[:0]
	t.iov = appendIov(t.iov, t.hdr[:])
	views, off := pkt.AsViewList()
	for v := views.Front(); v != nil; v = v.Next() {
		s := v.AsSlice()
		if off >= len(s) {
			off -= len(s)
			continue
		}
		t.iov = appendIov(t.iov, s[off:])
		off = 0
	}
	if len(t.iov) > maxIov {
		// Rare: a payload in over a thousand slices. Copy it.
		flat := make([]byte, 0, pkt.Size())
		for _, s := range pkt.AsSlices() {
			flat = append(flat, s...)
		}
		t.iov = appendIov(t.iov[:1], flat)
	}
}

func appendIov(iov []unix.Iovec, b []byte) []unix.Iovec {
	if len(b) == 0 {
		return iov
	}
	v := unix.Iovec{Base: &b[0]}
	v.SetLen(len(b))
	return append(iov, v)
}
