package stack

import (
	"fmt"
	"runtime"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// TCPConfig holds TCP protocol settings. Each zero field means the default
// documented beside it.
type TCPConfig struct {
	// DisableSACK turns selective acknowledgements off. Default on, as in
	// Linux (net.ipv4.tcp_sack=1): SACK recovers from multiple losses per
	// window without waiting out an RTO (RFC 2018).
	DisableSACK bool
	// CongestionControl is "reno" or "cubic". Default "cubic", Linux's
	// default since 2.6.19; gVisor's default is reno.
	CongestionControl string
	// SendBuffer and ReceiveBuffer bound the per-socket buffers, like
	// net.ipv4.tcp_wmem and tcp_rmem. Zero fields take the defaults below.
	SendBuffer, ReceiveBuffer BufferRange
	// DisableModerateReceiveBuffer turns receive-buffer auto-tuning off.
	// Default on, as Linux's tcp_moderate_rcvbuf=1: without it a
	// connection's window stays at ReceiveBuffer.Default and bulk
	// throughput over high-BDP links is capped.
	DisableModerateReceiveBuffer bool
	// DisableZeroWindowACKFix turns off the rewrite, on every NIC, that
	// lets gVisor process a peer's ACK sent just past a window gVisor
	// rounded down to zero. Default on: without it a program whose read
	// waits for its write can stall for good against a Linux peer
	// (docs/stall.md; google/gvisor#1610).
	DisableZeroWindowACKFix bool
	// TimeWaitTimeout is how long a closed connection stays in TIME_WAIT.
	// Default 1s rather than Linux's 60s: every connection lives inside
	// one process and one host, where stray old segments cannot arrive
	// after a few RTTs, and 60s held ~4 KB per connection, halving the
	// connection rate across repeated bursts (measured in the prototype).
	TimeWaitTimeout time.Duration
	// Processors is how many goroutines process inbound TCP segments.
	// Default 1 rather than gVisor's one per GOMAXPROCS: gVisor queues an
	// endpoint to the processor picked by each segment's 4-tuple, so a
	// listener getting SYNs from several clients is handed to several
	// processors at once, and each one that loses the race for its lock
	// requeues it in a busy loop (tcp/dispatcher.go, processor.start)
	// until the holder is done. With 8 clients connecting over TUN that
	// loop took three quarters of `ustack serve`'s CPU (docs/perf.md).
	// One processor cannot race itself, and a connection's segments always
	// went to a single processor anyway; more only helps many busy
	// connections on a machine with cores to spare.
	Processors int
	// NoDelay starts every TCP endpoint with Nagle's algorithm off, as if
	// TCP_NODELAY were set on it. Default off (Nagle on), as on Linux. A
	// proxy such as the relay of `ustack run` wants it on: it writes what
	// it just read, and Nagle would hold each write's last partial segment
	// until the peer acknowledges what is in flight (RFC 896).
	NoDelay bool
}

// BufferRange is a socket buffer's minimum, default and maximum in bytes.
type BufferRange struct {
	Min, Default, Max int
}

// Defaults chosen for a userspace stack on one host:
var (
	// Linux's tcp_wmem default (4 KiB, 16 KiB, 4 MiB).
	defaultSendBuffer = BufferRange{Min: 4 << 10, Default: 16 << 10, Max: 4 << 20}
	// Linux's tcp_rmem minimum and maximum; a 1 MiB default (Linux: 128 KiB)
	// lets a fresh connection fill a 64 KiB-segment TSO path at once.
	defaultReceiveBuffer = BufferRange{Min: 4 << 10, Default: 1 << 20, Max: 6 << 20}
	defaultTimeWait      = time.Second
	defaultProcessors    = 1
)

func (c *TCPConfig) validate() error {
	switch c.CongestionControl {
	case "", "reno", "cubic":
	default:
		return fmt.Errorf("stack: TCP.CongestionControl %q: want reno or cubic", c.CongestionControl)
	}
	for _, b := range []struct {
		name string
		r    BufferRange
	}{{"SendBuffer", c.SendBuffer}, {"ReceiveBuffer", c.ReceiveBuffer}} {
		if b.r.Min < 0 || b.r.Default < 0 || b.r.Max < 0 {
			return fmt.Errorf("stack: TCP.%s %+v has a negative size", b.name, b.r)
		}
		if b.r != (BufferRange{}) && !(b.r.Min <= b.r.Default && b.r.Default <= b.r.Max) {
			return fmt.Errorf("stack: TCP.%s %+v: want Min <= Default <= Max", b.name, b.r)
		}
	}
	if c.TimeWaitTimeout < 0 {
		return fmt.Errorf("stack: TCP.TimeWaitTimeout %v is negative", c.TimeWaitTimeout)
	}
	if c.Processors < 0 {
		return fmt.Errorf("stack: TCP.Processors %d is negative", c.Processors)
	}
	return nil
}

// gomaxprocsMu serializes newTCPProtocol's GOMAXPROCS swap, so that
// stacks built at the same time each restore the value they found.
var gomaxprocsMu sync.Mutex

// newTCPProtocol returns a factory for gVisor's TCP with n processor
// goroutines (n > 0). tcp.NewProtocol has no option for the count: it
// starts one processor per runtime.GOMAXPROCS(0) at the moment it runs.
// So GOMAXPROCS is n for the length of that call, then restored; a
// program whose GOMAXPROCS differs from n thereby has it marked as set
// by the program, which stops Go's automatic updates from cgroup limits
// (runtime.SetDefaultGOMAXPROCS turns them back on).
func newTCPProtocol(n int) gstack.TransportProtocolFactory {
	return func(s *gstack.Stack) gstack.TransportProtocol {
		gomaxprocsMu.Lock()
		defer gomaxprocsMu.Unlock()
		if prev := runtime.GOMAXPROCS(0); prev != n {
			runtime.GOMAXPROCS(n)
			defer runtime.GOMAXPROCS(prev)
		}
		return tcp.NewProtocol(s)
	}
}

func (s *Stack) setProtocolOptions(cfg Config) error {
	t := cfg.TCP
	sack := tcpip.TCPSACKEnabled(!t.DisableSACK)
	cc := tcpip.CongestionControlOption(orString(t.CongestionControl, "cubic"))
	mod := tcpip.TCPModerateReceiveBufferOption(!t.DisableModerateReceiveBuffer)
	snd := tcpip.TCPSendBufferSizeRangeOption(orRange(t.SendBuffer, defaultSendBuffer))
	rcv := tcpip.TCPReceiveBufferSizeRangeOption(orRange(t.ReceiveBuffer, defaultReceiveBuffer))
	tw := tcpip.TCPTimeWaitTimeoutOption(defaultTimeWait)
	if t.TimeWaitTimeout > 0 {
		tw = tcpip.TCPTimeWaitTimeoutOption(t.TimeWaitTimeout)
	}
	// Reuse a TIME_WAIT port for a new outgoing connection on loopback,
	// like Linux's net.ipv4.tcp_tw_reuse=2 default.
	twReuse := tcpip.TCPTimeWaitReuseLoopbackOnly
	// Nagle on by default, as on Linux; TCP_NODELAY turns it off per socket.
	delay := tcpip.TCPDelayEnabled(!t.NoDelay)
	for _, o := range []tcpip.SettableTransportProtocolOption{&sack, &cc, &mod, &snd, &rcv, &tw, &twReuse, &delay} {
		if err := s.s.SetTransportProtocolOption(tcp.ProtocolNumber, o); err != nil {
			return fmt.Errorf("stack: TCP option %T: %s", o, err)
		}
	}
	// Linux's default TTL and hop limit (net.ipv4.ip_default_ttl=64).
	ttl := tcpip.DefaultTTLOption(64)
	for _, p := range []tcpip.NetworkProtocolNumber{ipv4.ProtocolNumber, ipv6.ProtocolNumber} {
		if err := s.s.SetNetworkProtocolOption(p, &ttl); err != nil {
			return fmt.Errorf("stack: default TTL: %s", err)
		}
		if cfg.Forwarding {
			if err := s.s.SetForwardingDefaultAndAllNICs(p, true); err != nil {
				return fmt.Errorf("stack: forwarding: %s", err)
			}
		}
	}
	return nil
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orRange(r, def BufferRange) BufferRange {
	if r == (BufferRange{}) {
		return def
	}
	return r
}

func orInt(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}
