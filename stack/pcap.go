package stack

import (
	"io"
	"sync"

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
	return sniffer.NewWithWriter(ep, cw, pcapSnapLen)
}

// captureWriter stands between the sniffer and the caller's writer. The
// sniffer panics when a Write fails (sniffer.go, DumpPacket), which would
// take the whole stack down on a full disk; captureWriter instead stops
// writing at the first error and remembers it for CaptureErr.
type captureWriter struct {
	mu  sync.Mutex // guards err, and serialises writes so records never interleave
	w   io.Writer
	err error
}

func (c *captureWriter) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		_, c.err = c.w.Write(b)
	}
	return len(b), nil
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
