package relay

import (
	"context"
	"errors"
	"fmt"
	"github.com/ustack/ustack/stack"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
)

// Forward is a port forward from the host into the namespace.
type Forward struct {
	Proto     string     // "tcp" or "udp"
	HostAddr  netip.Addr // the host address to listen on; invalid means all (IPv4 and IPv6)
	HostPort  uint16
	GuestPort uint16
}

// String formats f as ParseForward reads it.
func (f Forward) String() string {
	host := ""
	if f.HostAddr.IsValid() {
		host = f.HostAddr.String() + ":"
		if f.HostAddr.Is6() {
			host = "[" + f.HostAddr.String() + "]:"
		}
	}
	return fmt.Sprintf("%s%d:%d/%s", host, f.HostPort, f.GuestPort, f.Proto)
}

// ParseForward parses [HOSTIP:]HOSTPORT:NSPORT[/tcp|/udp], with an IPv6
// HOSTIP in brackets. The protocol defaults to tcp.
func ParseForward(s string) (Forward, error) {
	f := Forward{Proto: "tcp"}
	spec := s
	if i := strings.LastIndexByte(spec, '/'); i >= 0 {
		f.Proto = spec[i+1:]
		spec = spec[:i]
		if f.Proto != "tcp" && f.Proto != "udp" {
			return Forward{}, fmt.Errorf("port forward %q: protocol %q: want tcp or udp", s, f.Proto)
		}
	}
	i := strings.LastIndexByte(spec, ':')
	if i < 0 {
		return Forward{}, fmt.Errorf("port forward %q: want [HOSTIP:]HOSTPORT:NSPORT[/tcp|/udp]", s)
	}
	guest, err := parsePort(spec[i+1:])
	if err != nil {
		return Forward{}, fmt.Errorf("port forward %q: namespace port: %w", s, err)
	}
	f.GuestPort = guest
	spec = spec[:i]
	if j := strings.LastIndexByte(spec, ':'); j >= 0 {
		host := strings.TrimSuffix(strings.TrimPrefix(spec[:j], "["), "]")
		a, err := netip.ParseAddr(host)
		if err != nil {
			return Forward{}, fmt.Errorf("port forward %q: host address %q is not an IP address", s, host)
		}
		if a.Zone() != "" {
			return Forward{}, fmt.Errorf("port forward %q: host address %q: a zone (%%%s) is not supported; use an address without a zone (not link-local), or none for all", s, host, a.Zone())
		}
		f.HostAddr = a.Unmap()
		spec = spec[j+1:]
	}
	hp, err := parsePort(spec)
	if err != nil {
		return Forward{}, fmt.Errorf("port forward %q: host port: %w", s, err)
	}
	f.HostPort = hp
	return f, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port number 1..65535", s)
	}
	return uint16(n), nil
}

// forwarder is one active port forward: a host listener and its flows.
type forwarder struct {
	f     Forward
	ln    net.Listener // tcp
	pc    *net.UDPConn // udp
	mu    sync.Mutex   // guards flows
	flows map[netip.AddrPort]*fwdFlow
}

// fwdFlow is one client's flow through a UDP port forward.
type fwdFlow struct {
	gc   *gonet.UDPConn
	wait readableWaiter // gc's
	last atomic.Int64   // UnixNano of the last datagram either way
}

func (fw *forwarder) close() {
	if fw.ln != nil {
		fw.ln.Close()
	}
	if fw.pc != nil {
		fw.pc.Close()
	}
	fw.mu.Lock()
	for _, fl := range fw.flows {
		fl.gc.Close()
	}
	fw.mu.Unlock()
}

// AddForward starts listening on the host for f.
func (r *Relay) AddForward(f Forward) error {
	if f.Proto != "tcp" && f.Proto != "udp" || f.HostPort == 0 || f.GuestPort == 0 {
		return fmt.Errorf("relay: invalid port forward %v", f)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("relay: closed")
	}
	if _, ok := r.forwards[f]; ok {
		return fmt.Errorf("relay: port forward %v already exists", f)
	}
	addr := ":" + strconv.Itoa(int(f.HostPort)) // all addresses, IPv4 and IPv6
	if f.HostAddr.IsValid() {
		addr = netip.AddrPortFrom(f.HostAddr, f.HostPort).String()
	}
	fw := &forwarder{f: f, flows: map[netip.AddrPort]*fwdFlow{}}
	var err error
	if f.Proto == "tcp" {
		fw.ln, err = net.Listen("tcp", addr)
	} else {
		var ua *net.UDPAddr
		if ua, err = net.ResolveUDPAddr("udp", addr); err == nil {
			fw.pc, err = net.ListenUDP("udp", ua)
		}
	}
	if err != nil {
		return fmt.Errorf("relay: port forward %v: %w", f, err)
	}
	r.forwards[f] = fw
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if fw.ln != nil {
			r.acceptLoop(fw)
		} else {
			r.datagramLoop(fw)
		}
	}()
	return nil
}

// RemoveForward stops listening for f. Connections already forwarded
// stay up; UDP flows of f end.
func (r *Relay) RemoveForward(f Forward) error {
	r.mu.Lock()
	fw, ok := r.forwards[f]
	delete(r.forwards, f)
	r.mu.Unlock()
	if !ok {
		return fmt.Errorf("relay: no port forward %v", f)
	}
	fw.close()
	return nil
}

// Forwards lists the active port forwards, sorted.
func (r *Relay) Forwards() []Forward {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Forward, 0, len(r.forwards))
	for f := range r.forwards {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// guestSide picks the namespace address a forwarded flow from client goes
// to and the source it appears from there: the real client address, except
// that a client on host loopback appears as the gateway, since the
// namespace's kernel drops loopback sources arriving on its TUN device as
// martians (RFC 1122 §3.2.1.3).
func (r *Relay) guestSide(client netip.AddrPort) (guest, src netip.Addr) {
	ca := client.Addr().Unmap()
	if ca.Is4() {
		guest, src = r.cfg.guest4, ca
		if ca.IsLoopback() || ca.IsUnspecified() {
			src = r.cfg.gateway4
		}
		return guest, src
	}
	guest, src = r.cfg.guest6, ca
	if ca.IsLoopback() || ca.IsUnspecified() || ca.IsLinkLocalUnicast() {
		src = r.cfg.gateway6
	}
	return guest, src
}

func (r *Relay) acceptLoop(fw *forwarder) {
	for {
		c, err := fw.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // closed by RemoveForward or Close
		}
		if !r.goTracked(func() { r.forwardTCP(fw, c.(*net.TCPConn)) }) {
			c.Close()
			return
		}
	}
}

// forwardTCP connects into the namespace from the client's address and
// relays. If the namespace refuses, the client gets a reset.
func (r *Relay) forwardTCP(fw *forwarder, c *net.TCPConn) {
	client := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	guest, src := r.guestSide(client)
	if !r.acquireFlow() {
		c.SetLinger(0)
		c.Close()
		return
	}
	defer r.releaseFlow()
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.DialTimeout)
	defer cancel()
	raddr := tcpip.FullAddress{NIC: r.nic, Addr: stack.Address(guest), Port: fw.f.GuestPort}
	gs := r.gs
	gc, err := dialGuest(ctx, gs, tcpip.FullAddress{NIC: r.nic, Addr: stack.Address(src), Port: client.Port()}, raddr, stack.Protocol(guest))
	if err != nil && ctx.Err() == nil {
		// The client's port may be taken on our side (two clients
		// mapped to the gateway); let the stack pick one.
		gc, err = dialGuest(ctx, gs, tcpip.FullAddress{NIC: r.nic, Addr: stack.Address(src)}, raddr, stack.Protocol(guest))
	}
	if err != nil && ctx.Err() == nil && dialRefused(err) {
		// Nothing listens on the client's family: a server on
		// 0.0.0.0 only (python3 -m http.server) and a client that
		// came over IPv6 (curl to [::1], or localhost resolving to
		// ::1 first), which cannot fall back itself since its
		// connect to our listener succeeded. Try the other family,
		// as Docker's proxy does, from the gateway: the client's own
		// address cannot be of that family.
		other, osrc := r.cfg.guest4, r.cfg.gateway4
		if guest.Is4() {
			other, osrc = r.cfg.guest6, r.cfg.gateway6
		}
		oaddr := tcpip.FullAddress{NIC: r.nic, Addr: stack.Address(other), Port: fw.f.GuestPort}
		if gc2, err2 := dialGuest(ctx, gs, tcpip.FullAddress{NIC: r.nic, Addr: stack.Address(osrc)}, oaddr, stack.Protocol(other)); err2 == nil {
			gc, err = gc2, nil
		}
	}
	if err != nil {
		r.c.forwardFailed.Add(1)
		r.logf("forward %v from %v: %v", fw.f, client, err)
		c.SetLinger(0) // reset, as the namespace did
		c.Close()
		return
	}
	r.c.forwardAccepted.Add(1)
	defer r.reserveSendBuffer(gc.ep)()
	r.splice(gc, c, nsEndpoint{ep: gc.ep, wq: gc.wq})
}

// datagramLoop reads datagrams for a UDP port forward and relays each
// client's datagrams as one flow into the namespace.
func (r *Relay) datagramLoop(fw *forwarder) {
	bp := datagramPool.Get().(*[]byte)
	defer datagramPool.Put(bp)
	for {
		n, client, err := fw.pc.ReadFromUDPAddrPort(*bp)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ECONNREFUSED from an earlier reply
		}
		client = netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
		gc := r.forwardFlow(fw, client)
		if gc == nil {
			continue
		}
		r.c.bytesIn.Add(uint64(n))
		gc.Write((*bp)[:n])
	}
}

// forwardFlow returns the namespace-side socket of client's flow, opening
// it and its reply loop if new; nil when refused. It marks the flow
// active: a client's datagrams keep it alive as the namespace's replies
// do.
func (r *Relay) forwardFlow(fw *forwarder, client netip.AddrPort) *gonet.UDPConn {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fl, ok := fw.flows[client]; ok {
		fl.last.Store(time.Now().UnixNano())
		return fl.gc
	}
	if !r.acquireFlow() {
		return nil
	}
	guest, src := r.guestSide(client)
	gs := r.gs
	raddr := tcpip.FullAddress{NIC: r.nic, Addr: stack.Address(guest), Port: fw.f.GuestPort}
	gc, wait, err := dialGuestUDP(gs, tcpip.FullAddress{NIC: r.nic, Addr: stack.Address(src), Port: client.Port()}, raddr, stack.Protocol(guest))
	if err != nil {
		gc, wait, err = dialGuestUDP(gs, tcpip.FullAddress{NIC: r.nic, Addr: stack.Address(src)}, raddr, stack.Protocol(guest))
	}
	if err != nil {
		r.releaseFlow()
		r.c.forwardFailed.Add(1)
		r.logf("forward %v from %v: %v", fw.f, client, err)
		return nil
	}
	if !r.track(gc) {
		r.releaseFlow()
		return nil
	}
	fl := &fwdFlow{gc: gc, wait: wait}
	fl.last.Store(time.Now().UnixNano())
	fw.flows[client] = fl
	r.c.forwardAccepted.Add(1)
	r.c.udpActive.Add(1)
	started := r.goTracked(func() {
		defer func() {
			fw.mu.Lock()
			if fw.flows[client] == fl {
				delete(fw.flows, client)
			}
			fw.mu.Unlock()
			r.untrack(gc)
			r.c.udpActive.Add(-1)
			r.releaseFlow()
		}()
		r.forwardReplies(fw, fl, client)
	})
	if !started {
		delete(fw.flows, client)
		r.c.udpActive.Add(-1)
		r.releaseFlow()
		return nil
	}
	return gc
}

// expireForwardFlow removes fl from fw's flows if it has been idle for
// UDPIdleTimeout, and reports whether it did. Deciding under fw.mu, which
// forwardFlow holds to find and mark a flow, means a client's datagram
// either refreshes the flow in time or finds it gone and opens a new one:
// it is never written to a flow being closed. (The namespace side is
// written by datagramLoop outside fw.mu, right after forwardFlow
// refreshed fl.last under it, so that write is never to an expired flow
// either.)
func (r *Relay) expireForwardFlow(fw *forwarder, fl *fwdFlow, client netip.AddrPort) bool {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if time.Since(time.Unix(0, fl.last.Load())) < r.cfg.UDPIdleTimeout {
		return false
	}
	if fw.flows[client] == fl {
		delete(fw.flows, client)
	}
	return true
}

// forwardReplies sends the namespace's replies on a forwarded UDP flow
// back to the client until the flow is idle (no datagram either way) for
// UDPIdleTimeout. Replies leave from the forward's own socket, so the
// client sees them come from the address it sent to.
func (r *Relay) forwardReplies(fw *forwarder, fl *fwdFlow, client netip.AddrPort) {
	gc := fl.gc
	for {
		deadline := time.Unix(0, fl.last.Load()).Add(r.cfg.UDPIdleTimeout)
		gc.SetReadDeadline(deadline)
		fl.wait(deadline) // a buffer only for a reply that is there, as in relayDatagrams
		bp := datagramPool.Get().(*[]byte)
		n, err := gc.Read(*bp)
		if err != nil {
			datagramPool.Put(bp)
			if isTimeout(err) {
				if !r.expireForwardFlow(fw, fl, client) {
					continue // the client sent meanwhile
				}
				r.c.udpExpired.Add(1)
			}
			return
		}
		fl.last.Store(time.Now().UnixNano())
		r.c.bytesOut.Add(uint64(n))
		dst := client
		if fw.pc.LocalAddr().(*net.UDPAddr).IP.To4() == nil && client.Addr().Is4() {
			dst = netip.AddrPortFrom(netip.AddrFrom16(client.Addr().As16()), client.Port())
		}
		fw.pc.WriteToUDPAddrPort((*bp)[:n], dst)
		datagramPool.Put(bp)
	}
}
