// Package relay gives a network namespace its network through host
// sockets, the job slirp4netns and pasta do: a gVisor stack faces the
// namespace (through a TUN device the caller opened), terminates every TCP
// connection and UDP flow the namespace opens, and a relay copies the
// bytes through an ordinary host socket to the real destination. ICMP echo
// goes out through host ping sockets and only real replies come back.
// Port forwards carry host connections into the namespace.
//
// It owns the forwarders it installs on the stack, the host sockets it
// opens and the goroutines that copy between them. It does not own the
// stack or the device: Close stops every relay and waits for its
// goroutines, and only then may the caller close the stack and the device.
package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ustack/ustack/stack"
	"gvisor.dev/gvisor/pkg/tcpip"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// The slirp-style addresses the namespace is configured with by default:
// DefaultNetwork's.
var (
	DefaultGateway4 = DefaultNetwork.Gateway4()
	DefaultDNS4     = DefaultNetwork.DNS4()
	DefaultGuest4   = DefaultNetwork.Guest4()
	DefaultGateway6 = DefaultNetwork.Gateway6()
	DefaultDNS6     = DefaultNetwork.DNS6()
	DefaultGuest6   = DefaultNetwork.Guest6()
)

// Config describes a relay. Zero fields take the defaults beside them.
type Config struct {
	// Stack is the stack facing the namespace (see StackConfig). Required.
	// Its NIC must be promiscuous (to accept connections to any address)
	// and spoofing (to answer from them).
	Stack *stack.Stack
	// NIC names the stack's interface toward the namespace; "" means
	// NICName.
	NIC string

	// Network is the namespace's addressing, the same value the stack
	// was built with (StackConfig); its zero value is DefaultNetwork, and
	// New refuses a prefix CheckPrefix refuses. The relay's addresses all
	// come from it: the gateways (10.0.2.2, fd00::2), which map to the
	// host's 127.0.0.1 and ::1 only with AllowHostLoopback; the DNS
	// forwarders (10.0.2.3, fd00::3); the namespace's own addresses,
	// where port forwards connect (10.0.2.100, fd00::100).
	Network Network
	// The addresses of Network, set by New.
	gateway4, gateway6 netip.Addr
	dns4, dns6         netip.Addr
	guest4, guest6     netip.Addr

	// AllowHostLoopback lets the gateway addresses reach host loopback.
	AllowHostLoopback bool
	// Deny lists destinations the namespace may not reach. It is matched
	// against the host address the relay would really connect to: the
	// destination itself, host loopback (127.0.0.1, ::1) for the gateway,
	// the DNS upstreams for the DNS forwarder. The gateway and DNS
	// addresses are the stack's own and are not matched themselves.
	Deny []netip.Prefix
	// DNSUpstreams are the resolvers DNS queries are forwarded to: new
	// flows go to the current one, which starts as the first and moves to
	// the next when one refuses or leaves a flow's queries unanswered.
	// Upstreams in a Deny prefix are never used. Empty (or all denied)
	// means DNS to the forwarder address is refused.
	DNSUpstreams []netip.AddrPort

	// MaxFlows caps concurrent relayed TCP connections, UDP flows and ICMP
	// echo flows together, so the namespace cannot exhaust the host's
	// descriptors. Default 4096.
	MaxFlows int
	// DialTimeout bounds connecting to a real destination, during which
	// the namespace's connection stays half-open, and then, separately,
	// the namespace's side of the handshake. A destination that has
	// not answered by then gets no answer from the relay either, so the
	// namespace's connect times out by its own clock, as on the real
	// network. Default 30s.
	DialTimeout time.Duration
	// HalfCloseTimeout closes a connection that one side has shut down
	// when the other has then sent nothing for this long. Default 2m.
	HalfCloseTimeout time.Duration
	// UDPIdleTimeout expires a UDP or ICMP flow with no traffic either
	// way for this long. Default 60s (DNS flows: 10s).
	UDPIdleTimeout time.Duration
	// BufferSize is the copy buffer per direction of a TCP connection.
	// Default 256 KiB: io.Copy's 32 KiB capped bulk throughput well below
	// what the offloaded TUN path carries (measured in the prototype).
	BufferSize int
	// SendBufferBudget caps the bytes the relay may hold for the
	// namespace in its connections' send buffers, all together, so a
	// namespace that stops reading cannot make ustack hold MaxFlows times
	// the stack's largest send buffer (4 MiB by default, see
	// reserveSendBuffer). Default 256 MiB.
	SendBufferBudget int

	// Outbound4/6, if valid, are the source addresses every host socket
	// the relay opens toward a real destination of that family is bound
	// to (TCP, UDP, DNS upstreams, ICMP echo), as slirp4netns's
	// --outbound-addr: which host address (and so, by the host's source
	// routing, which interface) the namespace's traffic leaves from.
	// Invalid means the host kernel chooses.
	Outbound4, Outbound6 netip.Addr

	// Dial, if set, connects to real TCP destinations instead of a
	// net.Dialer with DialTimeout (to set socket options, say); binding
	// to Outbound4/6 is then its business. It must return a
	// *net.TCPConn or another conn with CloseWrite.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)

	// ControlRefuse, if set, is asked about each control socket client
	// (ServeControl); when it returns an error, every request the client
	// sends is answered with that error and nothing is done. ustack run
	// refuses clients inside the namespace it networks.
	ControlRefuse func(net.Conn) error

	// LinkMalformed, if set, returns how many packets from the namespace
	// the link endpoint dropped itself as malformed or with a bad
	// checksum (a TUN device checks some before the stack sees them:
	// tun.Device.Stats); Stats.Malformed includes them.
	LinkMalformed func() uint64

	// Logf, if set, receives one line per noteworthy event.
	Logf func(format string, args ...any)
}

// Stats counts what the relay did. Each limit hit is counted.
type Stats struct {
	TCPRelayed      uint64 `json:"tcp_relayed"`       // connections established to a real destination
	TCPActive       int64  `json:"tcp_active"`        // relayed connections now open
	TCPDialFailed   uint64 `json:"tcp_dial_failed"`   // dials that failed: refused (reset sent), unreachable (ICMP sent) or unanswered (nothing sent)
	UDPFlows        uint64 `json:"udp_flows"`         // UDP flows opened
	UDPActive       int64  `json:"udp_active"`        // UDP flows now open
	UDPExpired      uint64 `json:"udp_expired"`       // UDP flows closed after UDPIdleTimeout
	DNSQueries      uint64 `json:"dns_queries"`       // datagrams sent to a DNS upstream
	PortUnreachable uint64 `json:"port_unreachable"`  // real port-unreachable errors passed to the namespace
	HostUnreachable uint64 `json:"host_unreachable"`  // dials that failed as host/network unreachable or prohibited, passed on as ICMP
	ICMPEchoSent    uint64 `json:"icmp_echo_sent"`    // echo requests sent through the host
	ICMPEchoReplies uint64 `json:"icmp_echo_replies"` // real replies returned to the namespace
	ICMPFailed      uint64 `json:"icmp_failed"`       // echo requests the host could not send
	TimeExceeded    uint64 `json:"time_exceeded"`     // packets with their TTL (hop limit) spent at the gateway, answered with ICMP time exceeded
	ICMPRateLimited uint64 `json:"icmp_rate_limited"` // ICMP errors of the relay's own held back by the stack's ICMP rate limit
	Denied          uint64 `json:"denied"`            // connections/datagrams to a denied destination
	FlowLimitHits   uint64 `json:"flow_limit_hits"`   // new flows refused at MaxFlows
	HalfOpenClosed  uint64 `json:"half_open_closed"`  // connections closed after HalfCloseTimeout
	SYNDropped      uint64 `json:"syn_dropped"`       // SYNs dropped with MaxFlows handshakes already waiting on a dial
	// HandshakeTimeouts counts connections whose real destination was
	// reached but whose handshake with the namespace did not complete
	// within DialTimeout (a SYN from a source address nobody there owns).
	HandshakeTimeouts uint64 `json:"handshake_timeouts"`
	// Malformed counts packets from the namespace dropped as malformed:
	// IP, TCP, UDP or ICMP headers, lengths or checksums that do not hold
	// (what a raw socket in the namespace can send), by the stack, the
	// relay or the link (Config.LinkMalformed).
	Malformed       uint64 `json:"malformed"`
	ForwardAccepted uint64 `json:"forward_accepted"` // port-forwarded connections and flows
	ForwardFailed   uint64 `json:"forward_failed"`   // port forwards the namespace refused
	BytesOut        uint64 `json:"bytes_out"`        // bytes from the namespace to the host
	BytesIn         uint64 `json:"bytes_in"`         // bytes from the host to the namespace
}

type counters struct {
	tcpRelayed, tcpDialFailed         atomic.Uint64
	tcpActive, udpActive              atomic.Int64
	udpFlows, udpExpired, dnsQueries  atomic.Uint64
	portUnreachable, hostUnreachable  atomic.Uint64
	icmpSent, icmpReplies, icmpFailed atomic.Uint64
	denied, limitHits, halfOpenClosed atomic.Uint64
	handshakeTimeouts, malformedUDP   atomic.Uint64
	forwardAccepted, forwardFailed    atomic.Uint64
	bytesOut, bytesIn                 atomic.Uint64
	timeExceeded, icmpRateLimited     atomic.Uint64
}

// Relay relays a namespace's traffic. Its methods are safe for concurrent
// use.
type Relay struct {
	cfg Config
	gs  *gstack.Stack // cfg.Stack's gVisor stack
	nic tcpip.NICID   // cfg.NIC's ID
	c   counters

	ctx    context.Context // canceled by Close; aborts dials
	cancel context.CancelFunc
	flows  atomic.Int64  // relayed TCP connections + UDP and ICMP flows
	dnsCur atomic.Uint32 // index (mod len) of the current DNS upstream

	sendReserved  atomic.Int64 // send buffer bytes reserved (reserveSendBuffer)
	maxSendBuffer int64        // the stack's largest TCP send buffer (reserveSendBuffer)

	mu       sync.Mutex // guards closed, conns, forwards, wg.Add
	closed   bool
	conns    map[io.Closer]struct{} // every open relayed socket, closed by Close
	forwards map[Forward]*forwarder
	wg       sync.WaitGroup // every goroutine the relay started or adopted

	icmpMu    sync.Mutex // guards icmp and rawIdents
	icmp      map[echoKey]*echoFlow
	rawIdents map[rawIdent]struct{}                  // identifiers raw echo flows use on the wire
	synMu     sync.Mutex                             // guards syns and synPruned
	syns      map[gstack.TransportEndpointID]synNote // ISS of SYNs waiting in the forwarder
	synPruned time.Time                              // when noteSYN last pruned syns

	busyMu sync.Mutex // guards busy and its flowBytes' seen
	busy   map[*flowBytes]struct{}

	bufPool sync.Pool
}

// New installs the relay's forwarders on cfg.Stack.
func New(cfg Config) (*Relay, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	nic, err := cfg.Stack.NICID(cfg.NIC)
	if err != nil {
		return nil, fmt.Errorf("relay: Config.NIC: %w", err)
	}
	gs := cfg.Stack.GVisor()
	ctx, cancel := context.WithCancel(context.Background())
	r := &Relay{
		cfg: cfg, gs: gs, nic: nic, ctx: ctx, cancel: cancel,
		conns:     map[io.Closer]struct{}{},
		forwards:  map[Forward]*forwarder{},
		icmp:      map[echoKey]*echoFlow{},
		rawIdents: map[rawIdent]struct{}{},
		syns:      map[gstack.TransportEndpointID]synNote{},
		busy:      map[*flowBytes]struct{}{},
	}
	r.bufPool.New = func() any { b := make([]byte, cfg.BufferSize); return &b }
	var sndRange tcpip.TCPSendBufferSizeRangeOption
	if err := gs.TransportProtocolOption(tcp.ProtocolNumber, &sndRange); err != nil {
		cancel()
		return nil, fmt.Errorf("relay: reading the stack's send buffer range: %v", err)
	}
	r.maxSendBuffer = int64(sndRange.Max)
	// maxInFlight bounds the handshakes waiting on a dial (half-open
	// connections); SYNs beyond it are dropped and retransmitted.
	tf := tcp.NewForwarder(gs, 0, cfg.MaxFlows, r.handleTCP)
	gs.SetTransportProtocolHandler(tcp.ProtocolNumber, func(id gstack.TransportEndpointID, pkt *gstack.PacketBuffer) bool {
		if subnetBroadcast(pkt) || r.expired(pkt) {
			return true // dropped, or answered with time exceeded
		}
		r.noteSYN(id, pkt)
		return tf.HandlePacket(id, pkt)
	})
	uf := udp.NewForwarder(gs, r.handleUDP)
	gs.SetTransportProtocolHandler(udp.ProtocolNumber, func(id gstack.TransportEndpointID, pkt *gstack.PacketBuffer) bool {
		if !udpValid(pkt) {
			r.c.malformedUDP.Add(1)
			return true // dropped
		}
		if subnetBroadcast(pkt) || r.expired(pkt) {
			return true // dropped, or answered with time exceeded
		}
		return uf.HandlePacket(id, pkt)
	})
	gs.SetTransportProtocolHandler(icmp.ProtocolNumber4, r.handleICMP4)
	gs.SetTransportProtocolHandler(icmp.ProtocolNumber6, r.handleICMP6)
	return r, nil
}

func (c *Config) fill() error {
	if c.Stack == nil {
		return errors.New("relay: Config.Stack is nil")
	}
	if c.NIC == "" {
		c.NIC = NICName
	}
	if err := c.fillNetwork(); err != nil {
		return err
	}
	if c.MaxFlows < 0 || c.BufferSize < 0 || c.DialTimeout < 0 || c.HalfCloseTimeout < 0 || c.UDPIdleTimeout < 0 || c.SendBufferBudget < 0 {
		return errors.New("relay: negative limit in Config")
	}
	if c.MaxFlows == 0 {
		c.MaxFlows = 4096
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 30 * time.Second
	}
	if c.HalfCloseTimeout == 0 {
		c.HalfCloseTimeout = 2 * time.Minute
	}
	if c.UDPIdleTimeout == 0 {
		c.UDPIdleTimeout = 60 * time.Second
	}
	if c.BufferSize == 0 {
		c.BufferSize = 256 << 10
	}
	if c.SendBufferBudget == 0 {
		c.SendBufferBudget = defaultSendBudget
	}
	if c.Outbound4.IsValid() && !isFamily(c.Outbound4, true) {
		return fmt.Errorf("relay: Config.Outbound4 %v is not an IPv4 address", c.Outbound4)
	}
	if c.Outbound6.IsValid() && !isFamily(c.Outbound6, false) {
		return fmt.Errorf("relay: Config.Outbound6 %v is not an IPv6 address", c.Outbound6)
	}
	for _, p := range c.Deny {
		if !p.IsValid() {
			return fmt.Errorf("relay: invalid Deny prefix %v", p)
		}
	}
	c.DNSUpstreams = c.allowedUpstreams()
	return nil
}

// fillNetwork checks Network and sets the addresses from it.
func (c *Config) fillNetwork() error {
	nw := c.Network.orDefault()
	for _, f := range []struct {
		name string
		p    netip.Prefix
		v4   bool
	}{{"Prefix4", nw.Prefix4, true}, {"Prefix6", nw.Prefix6, false}} {
		err := CheckPrefix(f.p)
		if err == nil && !isFamily(f.p.Addr(), f.v4) {
			err = errors.New("wrong address family")
		}
		if err != nil {
			return fmt.Errorf("relay: Config.Network.%s %v: %w", f.name, f.p, err)
		}
	}
	c.Network = nw
	c.gateway4, c.dns4, c.guest4 = nw.Gateway4(), nw.DNS4(), nw.Guest4()
	c.gateway6, c.dns6, c.guest6 = nw.Gateway6(), nw.DNS6(), nw.Guest6()
	return nil
}

// isFamily reports whether a is an IPv4 (v4) or IPv6 address; an
// IPv4-mapped IPv6 address is neither, as the host kernel would treat it
// as IPv4 behind an IPv6 socket.
func isFamily(a netip.Addr, v4 bool) bool {
	if v4 {
		return a.Is4()
	}
	return a.Is6() && !a.Is4In6()
}

// Stats returns a snapshot of the counters.
func (r *Relay) Stats() Stats {
	c := &r.c
	return Stats{
		TCPRelayed: c.tcpRelayed.Load(), TCPActive: c.tcpActive.Load(), TCPDialFailed: c.tcpDialFailed.Load(),
		UDPFlows: c.udpFlows.Load(), UDPActive: c.udpActive.Load(), UDPExpired: c.udpExpired.Load(),
		DNSQueries: c.dnsQueries.Load(), PortUnreachable: c.portUnreachable.Load(),
		HostUnreachable: c.hostUnreachable.Load(),
		ICMPEchoSent:    c.icmpSent.Load(), ICMPEchoReplies: c.icmpReplies.Load(), ICMPFailed: c.icmpFailed.Load(),
		TimeExceeded: c.timeExceeded.Load(), ICMPRateLimited: c.icmpRateLimited.Load(),
		Denied: c.denied.Load(), FlowLimitHits: c.limitHits.Load(), HalfOpenClosed: c.halfOpenClosed.Load(),
		SYNDropped: r.gs.Stats().TCP.ForwardMaxInFlightDrop.Value(), HandshakeTimeouts: c.handshakeTimeouts.Load(),
		Malformed:       r.malformed(),
		ForwardAccepted: c.forwardAccepted.Load(), ForwardFailed: c.forwardFailed.Load(),
		BytesOut: c.bytesOut.Load(), BytesIn: c.bytesIn.Load(),
	}
}

// malformed sums the stack's counters of packets dropped as malformed
// (each packet is counted in one of them: a bad fragment also counts as a
// bad IP packet, so fragments are not added again; a TCP header that does
// not parse, bad checksum included, is the NIC's MalformedL4).
func (r *Relay) malformed() uint64 {
	st := r.gs.Stats()
	return st.IP.MalformedPacketsReceived.Value() + st.NICs.MalformedL4RcvdPackets.Value() +
		st.TCP.InvalidSegmentsReceived.Value() + st.TCP.ChecksumErrors.Value() +
		st.UDP.MalformedPacketsReceived.Value() + st.UDP.ChecksumErrors.Value() +
		st.ICMP.V4.PacketsReceived.Invalid.Value() + st.ICMP.V6.PacketsReceived.Invalid.Value() +
		r.c.malformedUDP.Load() + r.linkMalformed()
}

func (r *Relay) linkMalformed() uint64 {
	if r.cfg.LinkMalformed == nil {
		return 0
	}
	return r.cfg.LinkMalformed()
}

// Close stops relaying new flows, closes every port forward and relayed
// socket and waits for every goroutine of the relay. Safe to call twice.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	// The handlers stay installed (gVisor reads them without a lock, so
	// replacing them under traffic would race); once closed they refuse
	// new TCP connections with a reset and drop new flows.
	r.closed = true
	r.cancel()
	for _, f := range r.forwards {
		f.close()
	}
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return nil
}

// goTracked runs fn on a goroutine the relay waits for; it reports false
// (and runs nothing) once the relay is closed.
func (r *Relay) goTracked(fn func()) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		fn()
	}()
	return true
}

// enter adopts the calling goroutine (a forwarder's) as one the relay
// waits for; the caller must call r.wg.Done when it returns true.
func (r *Relay) enter() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.wg.Add(1)
	return true
}

// track registers sockets for Close to close; it reports false, closing
// them, when the relay is already closed.
func (r *Relay) track(cs ...io.Closer) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		r.conns[c] = struct{}{}
	}
	return true
}

func (r *Relay) untrack(cs ...io.Closer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range cs {
		delete(r.conns, c)
		c.Close()
	}
}

// acquireFlow takes one of MaxFlows slots, counting a limit hit when none
// is left.
func (r *Relay) acquireFlow() bool {
	if r.flows.Add(1) > int64(r.cfg.MaxFlows) {
		r.flows.Add(-1)
		r.c.limitHits.Add(1)
		r.logf("flow limit %d reached; refusing a new flow", r.cfg.MaxFlows)
		return false
	}
	return true
}

func (r *Relay) releaseFlow() { r.flows.Add(-1) }

func (r *Relay) logf(format string, args ...any) {
	if r.cfg.Logf != nil {
		r.cfg.Logf(format, args...)
	}
}

func (r *Relay) getBuf() *[]byte  { return r.bufPool.Get().(*[]byte) }
func (r *Relay) putBuf(b *[]byte) { r.bufPool.Put(b) }
