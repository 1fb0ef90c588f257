package stack

import (
	"encoding/binary"
	"io"
	"sync"

	"github.com/ustack/ustack/internal/l4sum"

	"gvisor.dev/gvisor/pkg/tcpip/link/sniffer"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// pcapSnapLen is tcpdump's default snap length; GSO segments (up to 64 KiB)
// exceed any MTU-based one.
const pcapSnapLen = 262144

// newSniffer wraps ep in gVisor's pcap sniffer writing to w through cw.
func newSniffer(ep gstack.LinkEndpoint, cw *captureWriter) (gstack.LinkEndpoint, error) {
	// The sniffer also logs every packet through the log package unless
	// this global is off (sniffer.go, DumpPacket); a capture is what the
	// caller asked for, and logging each packet would swamp stderr.
	sniffer.LogPackets.Store(0)
	cw.complete = ep.Capabilities()&gstack.CapabilityRXChecksumOffload != 0
	return sniffer.NewWithWriter(ep, cw, pcapSnapLen)
}

// captureWriter stands between the sniffer and the caller's writer. The
// sniffer panics when a Write fails (sniffer.go, DumpPacket), which would
// take the whole stack down on a full disk; captureWriter instead stops
// writing at the first error and remembers it for CaptureErr.
type captureWriter struct {
	mu  sync.Mutex // guards err and started, and serialises writes so records never interleave
	w   io.Writer
	err error

	// complete fills in TCP and UDP checksums that checksum offload left
	// partial (see completeChecksums). started is set once the file
	// header, the sniffer's first write, has gone through.
	complete, started bool
}

// Write takes one pcap record per call (the sniffer's contract,
// sniffer.NewWithWriter), after the file header.
func (c *captureWriter) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		rec := b
		if c.started && c.complete {
			rec = completeChecksums(b)
		}
		c.started = true
		_, c.err = c.w.Write(rec)
	}
	return len(b), nil
}

// completeChecksums returns the pcap record rec with its TCP or UDP
// checksum correct, copying it only when the checksum needs a change.
//
// On a NIC whose endpoint offloads checksums (the vnet TUN driver), the
// packets gVisor sends as GSO segments carry only the pseudo-header sum,
// which the kernel completes, and the packets the kernel hands over with
// NEEDS_CSUM carry the same; tcpdump and Wireshark would flag nearly every
// TCP packet of a capture as bad, as they do on a host NIC with offload.
// Filling the sums in tells no lie: such an endpoint delivers nothing with
// a wrong full checksum (the TUN endpoint verifies and drops those), and
// what gVisor sends is right once the kernel completes it. A record
// truncated by the snap length is left alone.
func completeChecksums(rec []byte) []byte {
	const hdr = 16 // ts_sec, ts_usec, incl_len, orig_len
	if len(rec) < hdr || binary.LittleEndian.Uint32(rec[8:]) != binary.LittleEndian.Uint32(rec[12:]) {
		return rec
	}
	seg, ok := l4sum.Find(rec[hdr:])
	if !ok || seg.Valid() {
		return rec
	}
	// The sniffer owns rec (io.Writer: Write must not change it).
	out := append([]byte(nil), rec...)
	seg, _ = l4sum.Find(out[hdr:])
	seg.Complete()
	return out
}

func (c *captureWriter) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// CaptureErr returns the first error writing a NIC's pcap capture, after
// which that capture stopped; nil if every capture is whole so far.
func (s *Stack) CaptureErr() error {
	s.nicMu.Lock()
	defer s.nicMu.Unlock()
	for _, c := range s.captures {
		if err := c.failure(); err != nil {
			return err
		}
	}
	return nil
}
