package tun

import (
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/ustack/ustack/stack"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// FuzzVirtioHeader feeds arbitrary device reads (virtio-net header and
// packet) through the endpoint's receive path, as readv scatters them, and
// into a real gVisor stack. Every read must be either delivered or counted
// as dropped, exactly once, and nothing may panic.
//
//	go test -fuzz=FuzzVirtioHeader ./tun
func FuzzVirtioHeader(f *testing.F) {
	msg := func(h virtioHdr, pkt []byte) []byte {
		b := make([]byte, virtioNetHdrLen+len(pkt))
		h.encode(b)
		copy(b[virtioNetHdrLen:], pkt)
		return b
	}
	for _, fam := range families {
		client := netip.AddrPortFrom(fam.host, 40000)
		server := netip.AddrPortFrom(fam.stack, 80)
		syn := tcpSpec{src: client, dst: server, seq: 1, flags: header.TCPFlagSyn, mss: 1460}.build()
		seg := tcpSpec{src: client, dst: server, seq: 2, ack: 1, flags: header.TCPFlagAck, payload: make([]byte, 9000), partial: true}.build()
		gso := virtioHdr{flags: virtioFlagNeedsCsum, gsoType: fam.gsoType, hdrLen: uint16(fam.ipLen + 20), gsoSize: 1448, csumStart: uint16(fam.ipLen), csumOffset: 16}
		f.Add(msg(virtioHdr{}, syn))
		f.Add(msg(virtioHdr{flags: virtioFlagDataValid}, syn))
		f.Add(msg(gso, seg))
		f.Add(msg(virtioHdr{flags: virtioFlagNeedsCsum, csumStart: uint16(fam.ipLen), csumOffset: 16}, seg[:fam.ipLen+20]))
	}
	f.Add(msg(virtioHdr{}, icmpEcho(1)))
	f.Add([]byte{1, 2, 3})
	f.Add(msg(virtioHdr{gsoType: virtioGSOUDP, flags: virtioFlagNeedsCsum}, icmpEcho(2)))

	k := newDouble(f, stack.TCPConfig{})
	// Discard the stack's answers, or they fill the socket and block it.
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		buf := make([]byte, 1<<16)
		for {
			if _, err := k.f.Read(buf); err != nil {
				return
			}
		}
	}()
	f.Cleanup(func() { k.f.Close(); <-drained })
	k.ep.mu.Lock()
	d := k.ep.dispatcher
	k.ep.mu.Unlock()
	if d == nil {
		f.Fatal("endpoint not attached")
	}
	r := newRxState(k.ep)
	f.Cleanup(r.release)
	f.Fuzz(func(t *testing.T, data []byte) {
		// A read whose delivery never returns is a bug: fail with the
		// stacks rather than let the fuzzer report a silent stall.
		wd := time.AfterFunc(5*time.Second, func() {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			os.Stderr.Write(buf)
			panic("hung")
		})
		defer wd.Stop()
		r.refill()
		// Scatter as readv does: header, 64 KiB chunk, tail.
		n := copy(r.hdr[:], data)
		n += copy(r.main.AsSlice(), data[n:])
		n += copy(r.tail.AsSlice(), data[n:])
		before := k.ep.Malformed.Load() + k.ep.BadChecksum.Load()
		r.take(n)
		after := k.ep.Malformed.Load() + k.ep.BadChecksum.Load()
		if got := int(after-before) + len(r.batch); got != 1 {
			t.Fatalf("read of %d bytes was counted %d times (dropped %d, delivered %d), want once", n, got, after-before, len(r.batch))
		}
		r.deliver(d, nil)
	})
}
