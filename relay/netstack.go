package relay

import (
	"io"
	"net/netip"
	"time"

	"github.com/ustack/ustack/stack"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// NICName is the name of the interface toward the namespace in a stack
// built from StackConfig, and the default Config.NIC.
const NICName = "ns"

// StackConfig returns the configuration of the stack that faces the
// namespace over ep (its TUN device's link endpoint): one promiscuous,
// spoofing interface (it accepts connections to any address and answers
// as that address) holding nw's gateway and DNS addresses (the zero
// Network: the defaults), default routes through it, and paused, so that
// no packet arrives before the relay is installed. pcap, if non-nil,
// receives a capture of the link. Give the relay the same Network
// (Config.Network); StackConfig does not check nw, New does.
//
// Build the stack with stack.New, install the relay with New, then call
// the stack's Resume. Close the relay before the stack.
func StackConfig(ep gstack.LinkEndpoint, pcap io.Writer, nw Network) stack.Config {
	return stack.Config{
		NICs: []stack.NICConfig{{
			Name:     NICName,
			Endpoint: newTxQueue(ep),
			Addrs: []netip.Prefix{
				netip.PrefixFrom(nw.Gateway4(), nw.Bits4()), netip.PrefixFrom(nw.DNS4(), nw.Bits4()),
				netip.PrefixFrom(nw.Gateway6(), nw.Bits6()), netip.PrefixFrom(nw.DNS6(), nw.Bits6()),
			},
			Pcap:        pcap,
			Promiscuous: true,
			Spoofing:    true,
		}},
		Routes: []stack.Route{
			{Dest: netip.MustParsePrefix("0.0.0.0/0"), NIC: NICName},
			{Dest: netip.MustParsePrefix("::/0"), NIC: NICName},
		},
		// The relay's endpoints pass on writes as they come, as a proxy
		// should (Go's host sockets are TCP_NODELAY too).
		//
		// No TIME_WAIT to speak of: when the real server closes first,
		// the relay's side closes first and would sit in TIME_WAIT, and
		// gVisor passes a SYN that reopens a TIME_WAIT connection only
		// to a listening endpoint (tcp.handleTimeWaitSegments), which the
		// relay's forwarder is not. A command reconnecting from the same
		// port (a fixed or narrow port range) then waited for its SYN
		// retransmission, a second each time, where a Linux server takes
		// the newer SYN at once (RFC 1122 4.2.2.13). TIME_WAIT guards
		// against segments of the old connection still in flight and
		// re-ACKs a lost final ACK: across a TUN queue nothing stays in
		// flight, and a FIN sent again finds no connection and gets a
		// reset, which only ends a socket its program closed already.
		TCP:    stack.TCPConfig{NoDelay: true, TimeWaitTimeout: time.Nanosecond},
		Paused: true,
	}
}
