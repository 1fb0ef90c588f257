package tun

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
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
	f  *os.File
	rc syscall.RawConn
	ipLink

	// Malformed counts packets read from the device and dropped because
	// their virtio-net header was short, inconsistent or unsupported, or
	// they were neither IPv4 nor IPv6, or the kernel failed the read with
	// EINVAL for a packet it could not describe.
	Malformed atomic.Uint64
	// BadChecksum counts packets dropped because a checksum the kernel
	// had not verified (no NEEDS_CSUM or DATA_VALID flag) was wrong.
	BadChecksum atomic.Uint64
	// TxDropped counts outbound packets dropped before reaching the
	// device because their GSO type cannot be expressed in the header.
	TxDropped atomic.Uint64

	mu         sync.Mutex              // guards dispatcher
	dispatcher stack.NetworkDispatcher // guarded by mu
	onClose    closeAction             // the action SetOnCloseAction set
	stop       chan struct{}           // closed under loopMu by Attach(nil) or Close
	stopOnce   sync.Once

	loopMu   sync.Mutex
	loopCond sync.Cond // on loopMu; broadcast when running, reading or stop change
	running  bool      // guarded by loopMu: the dispatch loop has not returned
	reading  bool      // guarded by loopMu: the loop is reading the file

	rx   *rxState    // owned by the dispatch loop
	acks *ackDelayer // nil when delayed ACKs are off
	txs  sync.Pool   // of *txState, one per concurrent WritePackets
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
	e.loopCond.L = &e.loopMu
	e.mtu.Store(mtu)
	e.rx = newRxState(e)
	e.txs.New = func() any { return newTxState(e) }
	e.acks = newACKDelayer(func(p []*stack.PacketBuffer) { e.writeList(p) })
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

// Capabilities implements stack.LinkEndpoint. RX checksum offload: packets
// from the kernel carry partial (NEEDS_CSUM) or verified (DATA_VALID)
// checksums, and checkRx verifies the rest before delivery. No TX checksum
// offload: gVisor would then leave UDP and ICMP checksums empty, while TCP
// with host GSO already leaves the kernel a partial checksum to finish.
func (*VnetEndpoint) Capabilities() stack.LinkEndpointCapabilities {
	return stack.CapabilityRXChecksumOffload
}

// IsAttached implements stack.LinkEndpoint.
func (e *VnetEndpoint) IsAttached() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dispatcher != nil
}

// Attach implements stack.LinkEndpoint. The first non-nil dispatcher starts
// the dispatch loop; nil (the NIC is being removed) stops it for good.
//
// Attach(nil) does not wait: gVisor calls it, and Wait, with the stack's
// lock held (Stack.Wait -> removeNICLocked), and a packet being delivered
// at that moment may need that lock (a reply's output hook calls
// FindNICNameFromID): waiting for the delivery there deadlocked teardown.
func (e *VnetEndpoint) Attach(d stack.NetworkDispatcher) {
	if d == nil {
		e.shutdown()
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.loopMu.Lock()
	defer e.loopMu.Unlock()
	if e.dispatcher != nil || e.stopped() {
		return
	}
	e.dispatcher = d
	e.running = true
	go e.dispatchLoop(d)
}

// Wait implements stack.LinkEndpoint. Once the endpoint is stopped, it
// returns as soon as the loop no longer reads the file and never will, so
// the owner may close it; a delivery into the stack already under way
// finishes on its own (it may be waiting for the very lock the stack holds
// while calling Wait, see Attach), then the loop returns at once. Before
// the endpoint is stopped, Wait waits for the loop to end (the file
// failing or reaching EOF).
func (e *VnetEndpoint) Wait() {
	e.loopMu.Lock()
	defer e.loopMu.Unlock()
	for e.running && (e.reading || !e.stopped()) {
		e.loopCond.Wait()
	}
}

// Close implements stack.LinkEndpoint: it stops the dispatch loop and runs
// the close action. The file stays open.
func (e *VnetEndpoint) Close() {
	e.shutdown()
	e.onClose.run()
}

// SetOnCloseAction implements stack.LinkEndpoint.
func (e *VnetEndpoint) SetOnCloseAction(f func()) { e.onClose.SetOnCloseAction(f) }

// shutdown marks the endpoint stopped and wakes a read or write waiting in
// the netpoller: it returns os.ErrDeadlineExceeded, and the loop sees stop.
func (e *VnetEndpoint) shutdown() {
	e.stopOnce.Do(func() {
		e.loopMu.Lock()
		close(e.stop)
		e.loopCond.Broadcast()
		e.loopMu.Unlock()
		if e.acks != nil {
			e.acks.stop()
		}
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
	defer e.setLoop(false, false)
	defer e.rx.release()
	var since int // bytes delivered since the loop last yielded
	for e.setLoop(true, true) {
		err := e.rc.Read(e.rx.readFn)
		e.setLoop(true, false)
		if e.stopped() {
			return
		}
		if err != nil || e.rx.err != nil {
			e.fail(errors.Join(err, e.rx.err)) // the device is gone: say so (Failed)
			return
		}
		since += e.rx.bytes
		e.rx.deliver(d, e.stop)
		if since >= rxYieldBytes {
			since = 0
			// With more Ps the goroutines woken already run on
			// another; yielding would only move this loop around.
			if runtime.GOMAXPROCS(0) == 1 {
				runtime.Gosched()
			}
		}
	}
}

// setLoop records the loop's state for Wait. Starting a read (reading
// true) fails once the endpoint is stopped, so no read begins after Wait
// has returned.
func (e *VnetEndpoint) setLoop(running, reading bool) bool {
	e.loopMu.Lock()
	defer e.loopMu.Unlock()
	if reading && e.stopped() {
		reading = false
	}
	e.running, e.reading = running, reading
	e.loopCond.Broadcast()
	return reading
}
