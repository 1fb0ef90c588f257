// Package stack builds and owns a gVisor network stack: its NICs, addresses,
// routes and protocol settings.
//
// It knows gVisor and nothing of descriptors or devices: a caller hands it
// link endpoints (a TUN device from package tun, an in-memory pipe, ...) and
// reaches sockets through package sockapi. Every stack has a loopback
// interface "lo" with 127.0.0.1/8 and ::1 up, so New(Config{}) alone is a
// complete loopback-only stack.
//
// The Stack owns the link endpoints it is given once New succeeds: Close
// removes every NIC, which closes each endpoint and waits for its goroutines.
// It does not own the files or devices behind those endpoints; their opener
// closes them after Close returns.
package stack

import (
	"fmt"
	"io"
	"net/netip"
	"sort"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/loopback"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// LoopbackNIC is the NIC ID of the loopback interface every Stack has.
const LoopbackNIC tcpip.NICID = 1

// Config describes a stack. The zero value is a loopback-only stack with
// the default protocol settings.
type Config struct {
	// NICs are the interfaces besides loopback, numbered from 2 in order.
	NICs []NICConfig
	// Routes are added to the routes implied by the NICs' addresses (each
	// address's subnet through its NIC). A route with an invalid Gateway is
	// on-link.
	Routes []Route
	// TCP holds the TCP protocol settings.
	TCP TCPConfig
	// Forwarding enables IP forwarding between NICs.
	Forwarding bool
	// Paused makes the NICs drop inbound packets until Resume, so that a
	// caller can install handlers (forwarders) before the first packet.
	Paused bool
}

// NICConfig describes one interface.
type NICConfig struct {
	// Name is the interface name; "" gives "ethN" with N the NIC ID.
	Name string
	// Endpoint is the link endpoint. Required. The Stack takes ownership.
	Endpoint gstack.LinkEndpoint
	// Addrs are the interface's addresses with their prefix lengths.
	Addrs []netip.Prefix
	// Pcap, if non-nil, receives a pcap capture of every packet crossing
	// this NIC. The caller closes it after Stack.Close. A failed write
	// stops the capture (see Stack.CaptureErr), never the stack.
	Pcap io.Writer
	// Promiscuous accepts packets for any destination address, and
	// Spoofing lets endpoints send from any source address; a transparent
	// proxy such as `ustack run` needs both. A stack with a promiscuous
	// NIC does not short-circuit traffic between its own addresses (see
	// New).
	Promiscuous, Spoofing bool
}

// Route sends Dest through the NIC named NIC (or the loopback NIC for
// "lo"), via Gateway if it is valid.
type Route struct {
	Dest    netip.Prefix
	Gateway netip.Addr
	NIC     string
}

// Stack is a running gVisor stack. Its methods are safe for concurrent use.
type Stack struct {
	s *gstack.Stack

	nicMu    sync.Mutex // guards nics, gates, captures
	nics     map[string]tcpip.NICID
	gates    []*gate
	captures []*captureWriter

	routeMu sync.Mutex // serialises AddAddress's edits of the route table

	closeOnce sync.Once
}

// New builds a stack from cfg. On error nothing is left running, and the
// endpoints in cfg remain the caller's to close.
func New(cfg Config) (*Stack, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Stack{
		s: gstack.New(gstack.Options{
			NetworkProtocols: []gstack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
			TransportProtocols: []gstack.TransportProtocolFactory{
				newTCPProtocol(orInt(cfg.TCP.Processors, defaultProcessors)),
				udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6,
			},
			// Packets between two of the stack's own addresses never leave
			// it, as on Linux where they cross lo. Except with a
			// promiscuous NIC: there gVisor's IP input takes each packet's
			// source for one of its own temporary addresses and drops it
			// as coming from itself (network/ipv4/ipv4.go, "The source
			// address is one of our own").
			HandleLocal: !cfg.promiscuous(),
			// gVisor's timers in a heap of their own rather than the Go
			// runtime's, whose rescans cost 10% of connection setup
			// (clock.go).
			Clock: newHeapClock(),
		}),
		nics: map[string]tcpip.NICID{},
	}
	if err := s.configure(cfg); err != nil {
		s.s.Close()
		s.s.Wait()
		return nil, err
	}
	return s, nil
}

func (cfg *Config) promiscuous() bool {
	for _, n := range cfg.NICs {
		if n.Promiscuous {
			return true
		}
	}
	return false
}

func (cfg *Config) validate() error {
	if err := cfg.checkMapped(); err != nil {
		return err
	}
	for i, n := range cfg.NICs {
		if n.Endpoint == nil {
			return fmt.Errorf("stack: NICs[%d].Endpoint is nil", i)
		}
		if n.Name == "lo" {
			return fmt.Errorf("stack: NICs[%d].Name %q is reserved for loopback", i, n.Name)
		}
		for _, a := range n.Addrs {
			if !a.IsValid() {
				return fmt.Errorf("stack: NICs[%d].Addrs has an invalid prefix %v", i, a)
			}
		}
	}
	for i, r := range cfg.Routes {
		if !r.Dest.IsValid() {
			return fmt.Errorf("stack: Routes[%d].Dest is invalid", i)
		}
		if r.Gateway.IsValid() && r.Gateway.Is4() != r.Dest.Addr().Is4() {
			return fmt.Errorf("stack: Routes[%d].Gateway %v is not of Dest's family", i, r.Gateway)
		}
	}
	if err := cfg.checkNames(); err != nil {
		return err
	}
	if err := cfg.checkMTU(); err != nil {
		return err
	}
	return cfg.TCP.validate()
}

func (s *Stack) configure(cfg Config) error {
	if err := s.setProtocolOptions(cfg); err != nil {
		return err
	}
	lo := NICConfig{
		Name:     "lo",
		Endpoint: loopback.New(),
		Addrs:    []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8"), netip.MustParsePrefix("::1/128")},
	}
	if err := s.addNIC(LoopbackNIC, lo, gateOpen, cfg.TCP); err != nil {
		return err
	}
	state := gateOpen
	if cfg.Paused {
		state = gatePaused
	}
	for i, n := range cfg.NICs {
		if n.Name == "" {
			n.Name = fmt.Sprintf("eth%d", int(LoopbackNIC)+1+i)
		}
		if err := s.addNIC(LoopbackNIC+1+tcpip.NICID(i), n, state, cfg.TCP); err != nil {
			return err
		}
	}
	return s.setRoutes(cfg)
}

func (s *Stack) addNIC(id tcpip.NICID, n NICConfig, state gateState, tcpCfg TCPConfig) error {
	ep := n.Endpoint
	if n.Pcap != nil {
		cw := &captureWriter{w: n.Pcap}
		sn, err := newSniffer(ep, cw)
		if err != nil {
			return fmt.Errorf("stack: pcap for NIC %q: %w", n.Name, err)
		}
		ep = sn
		s.nicMu.Lock()
		s.captures = append(s.captures, cw)
		s.nicMu.Unlock()
	}
	if !tcpCfg.DisableZeroWindowACKFix {
		// Outside the sniffer, so a capture shows the packets as sent.
		ep = newZeroWindowACKs(ep)
	}
	if id != LoopbackNIC {
		// Outside the sniffer too: the capture shows the MTU as announced.
		// Not on lo: no router sends it a "too big", and the floor would
		// cost every loopback packet a look at its headers and one more
		// endpoint to cross.
		ep = newPMTUFloor(ep)
	}
	g := newGate(ep, state)
	if err := s.s.CreateNICWithOptions(id, g, gstack.NICOptions{Name: n.Name}); err != nil {
		return fmt.Errorf("stack: create NIC %q: %s", n.Name, err)
	}
	s.nicMu.Lock()
	s.nics[n.Name] = id
	s.gates = append(s.gates, g)
	s.nicMu.Unlock()
	if err := s.s.SetPromiscuousMode(id, n.Promiscuous); err != nil {
		return fmt.Errorf("stack: promiscuous mode on %q: %s", n.Name, err)
	}
	if err := s.s.SetSpoofing(id, n.Spoofing); err != nil {
		return fmt.Errorf("stack: spoofing on %q: %s", n.Name, err)
	}
	for _, a := range n.Addrs {
		if err := s.addAddress(id, n.Name, a); err != nil {
			return err
		}
	}
	return nil
}

// AddAddress adds prefix's address to the NIC named nic, with a route to
// its subnet through that NIC unless the stack has one, as New does for
// NICConfig.Addrs (and as `ip addr add` adds the prefix route on Linux).
//
// It refuses what New refuses in NICConfig.Addrs: an invalid prefix, an
// IPv4-mapped address, an IPv6 address on a NIC whose MTU is below IPv6's
// minimum.
func (s *Stack) AddAddress(nic string, prefix netip.Prefix) error {
	id, err := s.NICID(nic)
	if err != nil {
		return err
	}
	if err := s.checkAddress(id, nic, prefix); err != nil {
		return err
	}
	if err := s.addAddress(id, nic, prefix); err != nil {
		return err
	}
	s.addSubnetRoute(id, prefix)
	return nil
}

// checkAddress applies New's checks of NICConfig.Addrs (validate's
// IsValid, mappedAddr, mtuTooSmall) to an address added later to NIC id,
// named nic.
func (s *Stack) checkAddress(id tcpip.NICID, nic string, prefix netip.Prefix) error {
	switch {
	case !prefix.IsValid():
		return fmt.Errorf("stack: AddAddress(%q, %v): invalid prefix", nic, prefix)
	case mappedAddr(prefix):
		return fmt.Errorf("stack: AddAddress(%q, %v): IPv4-mapped address; give IPv4 as a.b.c.d/N", nic, prefix)
	}
	if mtu := s.s.NICInfo()[id].MTU; mtuTooSmall(mtu, prefix) {
		return fmt.Errorf("stack: AddAddress(%q, %v): NIC has MTU %d, below the %d an IPv6 address needs", nic, prefix, mtu, minMTU6)
	}
	return nil
}

// addSubnetRoute adds a route to prefix's subnet through NIC id, in the
// specificity order setRoutes keeps, unless the table has it already.
func (s *Stack) addSubnetRoute(id tcpip.NICID, prefix netip.Prefix) {
	r := tcpip.Route{Destination: subnetOf(prefix), NIC: id}
	s.routeMu.Lock()
	defer s.routeMu.Unlock()
	routes := s.s.GetRouteTable()
	for _, x := range routes {
		if x.Equal(r) {
			return
		}
	}
	routes = append(routes, r)
	sortRoutes(routes)
	s.s.SetRouteTable(routes)
}

// addAddress adds prefix's address to NIC id, named nic, without a route.
func (s *Stack) addAddress(id tcpip.NICID, nic string, prefix netip.Prefix) error {
	pa := tcpip.ProtocolAddress{
		Protocol: Protocol(prefix.Addr()),
		AddressWithPrefix: tcpip.AddressWithPrefix{
			Address:   Address(prefix.Addr()),
			PrefixLen: prefix.Bits(),
		},
	}
	if terr := s.s.AddProtocolAddress(id, pa, gstack.AddressProperties{}); terr != nil {
		return fmt.Errorf("stack: add address %v to %q: %s", prefix, nic, terr)
	}
	return nil
}

// NICID returns the ID of the NIC named name.
func (s *Stack) NICID(name string) (tcpip.NICID, error) {
	s.nicMu.Lock()
	defer s.nicMu.Unlock()
	id, ok := s.nics[name]
	if !ok {
		return 0, fmt.Errorf("stack: no NIC named %q", name)
	}
	return id, nil
}

func (s *Stack) setRoutes(cfg Config) error {
	var routes []tcpip.Route
	add := func(dest netip.Prefix, gw netip.Addr, nic string) error {
		id, err := s.NICID(nic)
		if err != nil {
			return err
		}
		r := tcpip.Route{Destination: subnetOf(dest), NIC: id}
		if gw.IsValid() {
			r.Gateway = Address(gw)
		}
		routes = append(routes, r)
		return nil
	}
	for _, p := range []string{"127.0.0.0/8", "::1/128"} {
		if err := add(netip.MustParsePrefix(p), netip.Addr{}, "lo"); err != nil {
			return err
		}
	}
	for i, n := range cfg.NICs {
		name := n.Name
		if name == "" {
			name = fmt.Sprintf("eth%d", int(LoopbackNIC)+1+i)
		}
		for _, a := range n.Addrs {
			if err := add(a.Masked(), netip.Addr{}, name); err != nil {
				return err
			}
		}
	}
	for _, r := range cfg.Routes {
		if err := add(r.Dest.Masked(), r.Gateway, r.NIC); err != nil {
			return err
		}
	}
	sortRoutes(routes)
	s.s.SetRouteTable(routes)
	return nil
}

// sortRoutes orders routes most specific first, keeping the order of
// equally specific ones: gVisor takes the first matching route, so this
// makes it choose as Linux's longest-prefix match would.
func sortRoutes(routes []tcpip.Route) {
	sort.SliceStable(routes, func(i, j int) bool {
		return routes[i].Destination.Prefix() > routes[j].Destination.Prefix()
	})
}

func subnetOf(p netip.Prefix) tcpip.Subnet {
	p = p.Masked()
	addr := tcpip.AddrFromSlice(p.Addr().AsSlice())
	sn, err := tcpip.NewSubnet(addr, tcpip.MaskFromBytes(maskBytes(p)))
	if err != nil {
		panic(fmt.Sprintf("stack: subnet of masked prefix %v: %v", p, err)) // unreachable: masked prefixes are valid subnets
	}
	return sn
}

func maskBytes(p netip.Prefix) []byte {
	n := p.Addr().BitLen() / 8
	m := make([]byte, n)
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}

// GVisor returns the underlying gVisor stack, for packages (sockapi, the
// relay of `ustack run`) that create endpoints on it. Callers must not
// Close it; Stack.Close does.
func (s *Stack) GVisor() *gstack.Stack { return s.s }

// Resume opens the NICs of a stack made with Config.Paused.
func (s *Stack) Resume() { s.setGates(gateOpen) }

func (s *Stack) setGates(state gateState) {
	s.nicMu.Lock()
	gates := append([]*gate(nil), s.gates...)
	s.nicMu.Unlock()
	for _, g := range gates {
		g.set(state)
	}
}

// Close stops inbound packets, aborts every endpoint, removes every NIC
// (closing its link endpoint) and waits for all goroutines the stack
// started. It is safe to call more than once.
func (s *Stack) Close() {
	s.closeOnce.Do(func() {
		s.setGates(gateShut) // first: see gate's comment
		s.s.Close()
		s.s.Wait()
	})
}
