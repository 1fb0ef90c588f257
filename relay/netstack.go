package relay

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	"gvisor.dev/gvisor/pkg/tcpip/link/sniffer"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// NICID is the ID of the one interface of a stack made by NewStack.
const NICID tcpip.NICID = 1

// StackConfig describes the stack NewStack builds.
type StackConfig struct {
	// Endpoint is the link toward the namespace (its TUN device).
	// Required. The stack owns it once NewStack succeeds.
	Endpoint gstack.LinkEndpoint
	// Pcap, if set, receives a capture of every packet on the link; the
	// caller closes it after the stack is closed.
	Pcap io.Writer
	// Addrs are the stack's own addresses: the gateway and DNS addresses
	// with the namespace's prefix length. Default: 10.0.2.2/24,
	// 10.0.2.3/24, fd00::2/64, fd00::3/64.
	Addrs []netip.Prefix
}

// Netstack is the gVisor stack that faces the namespace, as NewStack
// builds it.
type Netstack struct {
	// Stack is the gVisor stack, for Config.Stack. Close it only through
	// Netstack.Close.
	Stack *gstack.Stack
	gate  *gate
}

// Close stops delivering packets from the link, then closes the stack,
// waits for its goroutines and removes the NIC (closing the endpoint).
//
// Why the gate first: removing the NIC (Stack.Wait) holds the stack's lock
// while the link endpoint's Attach(nil) waits for its dispatch loop, and a
// packet arriving just then blocks that loop on the same lock (FindRoute,
// to answer it with a reset) — a deadlock seen with the TUN endpoints.
// With the gate shut no packet enters the stack any more.
func (n *Netstack) Close() {
	n.gate.shut()
	n.Stack.Close()
	n.Stack.Wait()
}

// Open starts delivering packets from the link to the stack. Call it
// once the relay is installed (relay.New): the relay's handlers and the
// state they read are then published to the goroutine that delivers
// packets through the gate's lock, and no packet meets a half-built
// relay. Packets arriving before Open are dropped.
func (n *Netstack) Open() { n.gate.set(gateOpen) }

// gate passes packets from the link to the stack while open.
type gate struct {
	nested.Endpoint
	mu    sync.RWMutex // held for reading by every delivery in progress
	state int          // guarded by mu: gateNew, gateOpen or gateShut
}

const (
	gateNew  = iota // not yet open: drop
	gateOpen        // deliver
	gateShut        // closing: drop, for good
)

var _ gstack.NetworkDispatcher = (*gate)(nil)

func newGate(lower gstack.LinkEndpoint) *gate {
	g := &gate{}
	g.Endpoint.Init(lower, g)
	return g
}

// DeliverNetworkPacket implements stack.NetworkDispatcher.
func (g *gate) DeliverNetworkPacket(p tcpip.NetworkProtocolNumber, pkt *gstack.PacketBuffer) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.state == gateOpen {
		g.Endpoint.DeliverNetworkPacket(p, pkt)
	}
}

// set moves the gate to state (never back from gateShut), waiting for
// deliveries in progress.
func (g *gate) set(state int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state != gateShut {
		g.state = state
	}
}

// shut drops every later packet and waits for deliveries in progress.
func (g *gate) shut() { g.set(gateShut) }

// NewStack builds the gVisor stack that faces the namespace: one
// promiscuous, spoofing interface (it accepts connections to any address
// and answers as that address) with default routes through it.
//
// Why not package stack: stack.New always sets HandleLocal, and with
// HandleLocal a promiscuous NIC drops every packet it receives, because
// gVisor's IPv4 input creates a temporary address for the source and then
// counts it as one of its own (network/ipv4/ipv4.go, "The source address
// is one of our own"). The TCP settings below follow package stack's,
// with its reasons.
func NewStack(cfg StackConfig) (*Netstack, error) {
	if cfg.Endpoint == nil {
		return nil, errors.New("relay: StackConfig.Endpoint is nil")
	}
	if len(cfg.Addrs) == 0 {
		cfg.Addrs = []netip.Prefix{
			netip.PrefixFrom(DefaultGateway4, 24), netip.PrefixFrom(DefaultDNS4, 24),
			netip.PrefixFrom(DefaultGateway6, 64), netip.PrefixFrom(DefaultDNS6, 64),
		}
	}
	s := gstack.New(gstack.Options{
		NetworkProtocols:   []gstack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []gstack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
	})
	n := &Netstack{Stack: s}
	if err := n.configure(cfg); err != nil {
		s.Close()
		s.Wait()
		return nil, err
	}
	return n, nil
}

func (n *Netstack) configure(cfg StackConfig) error {
	s := n.Stack
	if err := setTCPOptions(s); err != nil {
		return err
	}
	ep := cfg.Endpoint
	if cfg.Pcap != nil {
		// The sniffer also logs every packet unless told not to; the
		// capture file is what the user asked for.
		sniffer.LogPackets.Store(0)
		sn, err := sniffer.NewWithWriter(ep, cfg.Pcap, ep.MTU()+64)
		if err != nil {
			return fmt.Errorf("relay: pcap: %w", err)
		}
		ep = sn
	}
	n.gate = newGate(ep)
	if err := s.CreateNIC(NICID, n.gate); err != nil {
		return fmt.Errorf("relay: create NIC: %s", err)
	}
	if err := s.SetPromiscuousMode(NICID, true); err != nil {
		return fmt.Errorf("relay: promiscuous mode: %s", err)
	}
	if err := s.SetSpoofing(NICID, true); err != nil {
		return fmt.Errorf("relay: spoofing: %s", err)
	}
	for _, a := range cfg.Addrs {
		pa := tcpip.ProtocolAddress{
			Protocol:          protoOf(a.Addr()),
			AddressWithPrefix: tcpip.AddressWithPrefix{Address: toTCPIP(a.Addr()), PrefixLen: a.Bits()},
		}
		if err := s.AddProtocolAddress(NICID, pa, gstack.AddressProperties{}); err != nil {
			return fmt.Errorf("relay: add address %v: %s", a, err)
		}
	}
	s.SetRouteTable([]tcpip.Route{
		{Destination: header4Any(), NIC: NICID},
		{Destination: header6Any(), NIC: NICID},
	})
	return nil
}

func header4Any() tcpip.Subnet {
	sn, _ := tcpip.NewSubnet(tcpip.AddrFrom4([4]byte{}), tcpip.MaskFromBytes(make([]byte, 4)))
	return sn
}

func header6Any() tcpip.Subnet {
	sn, _ := tcpip.NewSubnet(tcpip.AddrFrom16([16]byte{}), tcpip.MaskFromBytes(make([]byte, 16)))
	return sn
}

// setTCPOptions applies package stack's TCP defaults.
func setTCPOptions(s *gstack.Stack) error {
	sack := tcpip.TCPSACKEnabled(true)                                                         // Linux default; recovers multiple losses per window (RFC 2018)
	cc := tcpip.CongestionControlOption("cubic")                                               // Linux's default since 2.6.19
	mod := tcpip.TCPModerateReceiveBufferOption(true)                                          // Linux's tcp_moderate_rcvbuf=1
	snd := tcpip.TCPSendBufferSizeRangeOption{Min: 4 << 10, Default: 16 << 10, Max: 4 << 20}   // Linux tcp_wmem
	rcv := tcpip.TCPReceiveBufferSizeRangeOption{Min: 4 << 10, Default: 1 << 20, Max: 6 << 20} // fills a 64 KiB-segment path at once
	tw := tcpip.TCPTimeWaitTimeoutOption(1e9)                                                  // 1s: one host, no stray old segments (see package stack)
	for _, o := range []tcpip.SettableTransportProtocolOption{&sack, &cc, &mod, &snd, &rcv, &tw} {
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, o); err != nil {
			return fmt.Errorf("relay: TCP option %T: %s", o, err)
		}
	}
	ttl := tcpip.DefaultTTLOption(64) // Linux's net.ipv4.ip_default_ttl
	for _, p := range []tcpip.NetworkProtocolNumber{ipv4.ProtocolNumber, ipv6.ProtocolNumber} {
		if err := s.SetNetworkProtocolOption(p, &ttl); err != nil {
			return fmt.Errorf("relay: default TTL: %s", err)
		}
	}
	return nil
}
