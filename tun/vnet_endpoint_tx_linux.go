package tun

import (
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// maxIov is IOV_MAX on Linux: a packet in more slices is copied first.
const maxIov = 1024

// txState is the scratch of one WritePackets call.
type txState struct {
	e       *VnetEndpoint
	hdr     [virtioNetHdrLen]byte
	iov     []unix.Iovec
	pkts    []*stack.PacketBuffer
	out     []*stack.PacketBuffer // WritePackets' list after the ACK delayer
	owned   []*stack.PacketBuffer // held ACKs the delayer let go, to release
	next    int                   // index in pkts of the packet to write next
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
// With delayed ACKs on, some pure ACKs are held or dropped (see
// ackDelayer); they count as written.
func (e *VnetEndpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	list := pkts.AsSlice()
	if e.acks == nil {
		return e.writeList(list)
	}
	t := e.txs.Get().(*txState)
	out, owned := e.acks.filter(list, t.out[:0], t.owned[:0])
	n, err := e.writeList(out)
	for _, p := range owned {
		p.DecRef()
	}
	clear(out)
	clear(owned)
	t.out, t.owned = out[:0], owned[:0]
	e.txs.Put(t)
	if err != nil {
		// Count only the caller's packets before the failure.
		return min(n, len(list)), err
	}
	return len(list), nil
}

// writeList writes pkts in order and returns how many were written.
func (e *VnetEndpoint) writeList(pkts []*stack.PacketBuffer) (int, tcpip.Error) {
	if len(pkts) == 0 {
		return 0, nil
	}
	t := e.txs.Get().(*txState)
	t.pkts, t.next, t.written, t.err = pkts, 0, 0, 0
	err := e.rc.Write(t.writeFn)
	n, errno := t.written, t.err
	// Drop the pooled state's hold on the caller's list, but leave the
	// list itself alone: it is the caller's (a qdisc resets it after).
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
