package relay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/ustack/ustack/stack"
	"math/rand/v2"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// echoKey names one ping session of the namespace: its source, the
// destination and the ICMP identifier it chose.
type echoKey struct {
	src, dst netip.Addr
	ident    uint16
}

// echoFlow relays one ping session through one host socket.
type echoFlow struct {
	key   echoKey
	sock  *os.File
	raw   bool   // a raw socket: we pick the identifier and filter replies
	ident uint16 // identifier on the wire for a raw socket
	last  atomic.Int64
}

func (r *Relay) handleICMP4(_ gstack.TransportEndpointID, pkt *gstack.PacketBuffer) bool {
	h := header.ICMPv4(pkt.TransportHeader().Slice())
	if len(h) < header.ICMPv4MinimumSize || h.Type() != header.ICMPv4Echo {
		return false
	}
	// gVisor's network layer counts a bad checksum as invalid but still
	// delivers the message here; relayed, it would become a valid echo
	// request on the host, and the reply to a corrupt packet come back.
	if checksum.Checksum(h, pkt.Data().Checksum()) != 0xffff {
		return true // dropped; counted by gVisor (ICMP invalid)
	}
	ip := header.IPv4(pkt.NetworkHeader().Slice())
	return r.handleEcho(stack.AddrOf(ip.SourceAddress()), stack.AddrOf(ip.DestinationAddress()), h.Ident(), h.Sequence(), pkt)
}

func (r *Relay) handleICMP6(_ gstack.TransportEndpointID, pkt *gstack.PacketBuffer) bool {
	h := header.ICMPv6(pkt.TransportHeader().Slice())
	if len(h) < header.ICMPv6EchoMinimumSize || h.Type() != header.ICMPv6EchoRequest {
		return false
	}
	// No checksum check here: gVisor's IPv6 layer drops an ICMPv6 message
	// with a bad checksum before it delivers anything (ipv6.handleICMP),
	// unlike IPv4's.
	ip := header.IPv6(pkt.NetworkHeader().Slice())
	return r.handleEcho(stack.AddrOf(ip.SourceAddress()), stack.AddrOf(ip.DestinationAddress()), h.Ident(), h.Sequence(), pkt)
}

// handleEcho relays an echo request to a destination outside. Requests to
// the stack's own addresses (the gateway, the DNS forwarder) are left to
// the stack, which answers them itself; nothing else is ever answered
// except by a real reply from the host's socket. A request to the
// subnet's broadcast is dropped: it is the router's own broadcast, not a
// destination out there, and Linux ignores broadcast pings by default
// (net.ipv4.icmp_echo_ignore_broadcasts=1).
func (r *Relay) handleEcho(src, dst netip.Addr, ident, seq uint16, pkt *gstack.PacketBuffer) bool {
	if subnetBroadcast(pkt) {
		return true
	}
	if r.isOwn(dst) {
		return false
	}
	if r.expired(pkt) {
		return true
	}
	if _, err := r.target(netip.AddrPortFrom(dst, 0)); err != nil {
		r.c.denied.Add(1)
		return true // dropped: a denied destination stays silent
	}
	data := pkt.Data().AsRange().ToSlice()
	f, err := r.echoFlowFor(echoKey{src, dst, ident})
	if err != nil {
		r.c.icmpFailed.Add(1)
		r.logf("icmp %v: %v", dst, err)
		var re *routeError
		if errors.As(err, &re) {
			r.echoUnreachable(src, dst, pkt, err)
		}
		return true
	}
	if f == nil {
		return true // flow limit
	}
	if err := f.send(seq, data); err != nil {
		r.c.icmpFailed.Add(1)
		r.logf("icmp %v: %v", dst, err)
		r.echoUnreachable(src, dst, pkt, err)
		return true
	}
	f.last.Store(time.Now().UnixNano())
	r.c.icmpSent.Add(1)
	return true
}

// routeError is a host socket refusing a destination because of the
// host's routes (connect failing with ENETUNREACH, EHOSTUNREACH, EACCES
// for a prohibit route, EINVAL for a blackhole), unlike a socket the host
// will not open at all (a ping socket outside ping_group_range).
type routeError struct{ err error }

func (e *routeError) Error() string { return e.err.Error() }
func (e *routeError) Unwrap() error { return e.err }

// echoUnreachable answers an echo request the host could not send for
// err with the ICMP unreachable a router gives for that reason, if any,
// quoting the request as the namespace sent it: ping then prints
// "Destination Host Unreachable" (or "Net", "Packet filtered") as behind
// a router, where it heard nothing.
func (r *Relay) echoUnreachable(src, dst netip.Addr, pkt *gstack.PacketBuffer, err error) {
	code, ok := unreachableFor(err)
	h := pkt.TransportHeader().Slice()
	if !ok || len(h) < 8 {
		return
	}
	proto := header.ICMPv4ProtocolNumber
	if dst.Is6() {
		proto = header.ICMPv6ProtocolNumber
	}
	if r.writeUnreachable(netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0), proto, h[:8], code) {
		r.c.hostUnreachable.Add(1)
	}
}

// echoFlowFor returns the flow for k, opening its socket and starting its
// reply loop if it is new. It returns nil, nil at the flow limit.
func (r *Relay) echoFlowFor(k echoKey) (*echoFlow, error) {
	r.icmpMu.Lock()
	defer r.icmpMu.Unlock()
	if f, ok := r.icmp[k]; ok {
		return f, nil
	}
	if !r.acquireFlow() {
		return nil, nil
	}
	f, err := openEcho(k, r.outbound(k.dst))
	if err != nil {
		r.releaseFlow()
		return nil, err
	}
	if f.raw {
		id, ok := r.pickRawIdent(k.dst)
		if !ok {
			f.sock.Close()
			r.releaseFlow()
			return nil, fmt.Errorf("every ICMP identifier toward %v is in use", k.dst)
		}
		f.ident = id
	}
	if !r.track(f.sock) {
		r.dropRawIdent(f)
		r.releaseFlow()
		return nil, errors.New("relay closed")
	}
	f.last.Store(time.Now().UnixNano())
	r.icmp[k] = f
	if !r.goTracked(func() { r.echoReplies(f) }) {
		delete(r.icmp, k)
		r.dropRawIdent(f)
		r.releaseFlow()
		return nil, errors.New("relay closed")
	}
	return f, nil
}

// rawIdent is an ICMP identifier in use on the wire toward dst by a raw
// echo flow.
type rawIdent struct {
	dst   netip.Addr
	ident uint16
}

// pickRawIdent chooses the identifier a new raw echo flow to dst uses on
// the wire, one no other of our raw flows to dst uses. A raw socket sees
// every echo reply from dst and keeps those carrying its identifier; two
// flows with the same one (a random pick collided: likely among a few
// hundred sessions to one host) each took the other's replies, and the
// namespace got replies to requests it never sent. The caller holds
// icmpMu; false means all 65536 are taken.
func (r *Relay) pickRawIdent(dst netip.Addr) (uint16, bool) {
	start := uint16(rand.Uint32())
	for i := 0; i < 1<<16; i++ {
		k := rawIdent{dst, start + uint16(i)}
		if _, used := r.rawIdents[k]; !used {
			r.rawIdents[k] = struct{}{}
			return k.ident, true
		}
	}
	return 0, false
}

// dropRawIdent frees f's identifier, if it is a raw flow. The caller
// holds icmpMu.
func (r *Relay) dropRawIdent(f *echoFlow) {
	if f.raw {
		delete(r.rawIdents, rawIdent{f.key.dst, f.ident})
	}
}

// send writes one echo request. A ping socket sets its own identifier and
// checksum; on a raw socket we set ours, and the checksum too for IPv4
// (the kernel fills it in for raw ICMPv6, RFC 3542 §3.1).
func (f *echoFlow) send(seq uint16, data []byte) error {
	b := make([]byte, 8+len(data))
	b[0] = byte(header.ICMPv4Echo)
	if f.key.dst.Is6() {
		b[0] = byte(header.ICMPv6EchoRequest)
	}
	binary.BigEndian.PutUint16(b[4:], f.ident)
	binary.BigEndian.PutUint16(b[6:], seq)
	copy(b[8:], data)
	if f.raw && f.key.dst.Is4() {
		binary.BigEndian.PutUint16(b[2:], ^checksum.Checksum(b, 0))
	}
	_, err := f.sock.Write(b)
	return err
}

// echoReplies reads real replies and hands them to the namespace until
// the flow has been idle for UDPIdleTimeout or the relay closes.
func (r *Relay) echoReplies(f *echoFlow) {
	defer func() {
		r.icmpMu.Lock()
		delete(r.icmp, f.key)
		r.dropRawIdent(f)
		r.icmpMu.Unlock()
		r.untrack(f.sock)
		r.releaseFlow()
	}()
	buf := make([]byte, 65535)
	for {
		f.sock.SetReadDeadline(time.Now().Add(r.cfg.UDPIdleTimeout))
		n, err := f.sock.Read(buf)
		if err != nil {
			if isTimeout(err) {
				if time.Since(time.Unix(0, f.last.Load())) < r.cfg.UDPIdleTimeout {
					continue
				}
				// Drop the flow from the map before the socket closes, so
				// a new request opens a fresh one.
				return
			}
			if errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, unix.EHOSTUNREACH) || errors.Is(err, unix.ENETUNREACH) {
				continue // an ICMP error for a request: no echo reply to pass on
			}
			return
		}
		seq, data, ok := f.parseReply(buf[:n])
		if !ok {
			continue
		}
		f.last.Store(time.Now().UnixNano())
		if r.writeEchoReply(f.key, seq, data) {
			r.c.icmpReplies.Add(1)
		}
	}
}

// parseReply extracts an echo reply's sequence number and data. A raw
// IPv4 socket delivers the IP header too; a raw socket sees every ICMP
// message from the destination, so it keeps only replies to our ident.
func (f *echoFlow) parseReply(b []byte) (seq uint16, data []byte, ok bool) {
	if f.raw && f.key.dst.Is4() {
		if len(b) < header.IPv4MinimumSize {
			return 0, nil, false
		}
		hl := int(b[0]&0xf) * 4
		if hl < header.IPv4MinimumSize || len(b) < hl {
			return 0, nil, false
		}
		b = b[hl:]
	}
	if len(b) < 8 {
		return 0, nil, false
	}
	want := byte(header.ICMPv4EchoReply)
	if f.key.dst.Is6() {
		want = byte(header.ICMPv6EchoReply)
	}
	if b[0] != want {
		return 0, nil, false
	}
	if f.raw && binary.BigEndian.Uint16(b[4:]) != f.ident {
		return 0, nil, false
	}
	return binary.BigEndian.Uint16(b[6:]), b[8:], true
}

// writeEchoReply sends the namespace an echo reply from k.dst carrying the
// real reply's sequence number and data under the namespace's identifier.
func (r *Relay) writeEchoReply(k echoKey, seq uint16, data []byte) bool {
	var pkt []byte
	if k.dst.Is4() {
		pkt = make([]byte, header.IPv4MinimumSize+header.ICMPv4MinimumSize+len(data))
		ip := header.IPv4(pkt)
		ip.Encode(&header.IPv4Fields{
			TotalLength: uint16(len(pkt)),
			TTL:         64,
			Protocol:    uint8(header.ICMPv4ProtocolNumber),
			SrcAddr:     stack.Address(k.dst),
			DstAddr:     stack.Address(k.src),
		})
		ip.SetChecksum(^ip.CalculateChecksum())
		h := header.ICMPv4(pkt[header.IPv4MinimumSize:])
		h.SetType(header.ICMPv4EchoReply)
		h.SetIdent(k.ident)
		h.SetSequence(seq)
		copy(h.Payload(), data)
		h.SetChecksum(^checksum.Checksum(h, 0))
	} else {
		pkt = make([]byte, header.IPv6MinimumSize+header.ICMPv6EchoMinimumSize+len(data))
		ip := header.IPv6(pkt)
		ip.Encode(&header.IPv6Fields{
			PayloadLength:     uint16(len(pkt) - header.IPv6MinimumSize),
			TransportProtocol: header.ICMPv6ProtocolNumber,
			HopLimit:          64,
			SrcAddr:           stack.Address(k.dst),
			DstAddr:           stack.Address(k.src),
		})
		h := header.ICMPv6(pkt[header.IPv6MinimumSize:])
		h.SetType(header.ICMPv6EchoReply)
		h.SetIdent(k.ident)
		h.SetSequence(seq)
		copy(h.MessageBody()[4:], data)
		h.SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{
			Header: h, Src: stack.Address(k.dst), Dst: stack.Address(k.src),
		}))
	}
	proto := stack.Protocol(k.dst)
	err := r.gs.WriteRawPacket(r.nic, proto, buffer.MakeWithData(pkt))
	return err == nil
}

// unreachable is an ICMP destination unreachable code for each family.
type unreachable struct{ code4, code6 uint8 }

var (
	portUnreachable = unreachable{uint8(header.ICMPv4PortUnreachable), uint8(header.ICMPv6PortUnreachable)}
	hostUnreachable = unreachable{uint8(header.ICMPv4HostUnreachable), uint8(header.ICMPv6AddressUnreachable)}
	netUnreachable  = unreachable{uint8(header.ICMPv4NetUnreachable), uint8(header.ICMPv6NetworkUnreachable)}
	prohibited      = unreachable{uint8(header.ICMPv4AdminProhibited), uint8(header.ICMPv6Prohibited)}
)

// unreachableFor gives the ICMP unreachable a Linux router sends where
// its host sockets fail with err (net/ipv4/route.c ip_error, and
// ip6_pkt_discard): no route, an unreachable route or a neighbour that
// does not answer, and a prohibit route (EACCES; EPERM is the host's
// firewall). The namespace's kernel turns them into ENETUNREACH,
// EHOSTUNREACH and, for a prohibited destination, EHOSTUNREACH (IPv4)
// or EACCES (IPv6), as behind that router. A host with no address to
// send from (EADDRNOTAVAIL: no IPv6 at all) has no route either, as far
// as the namespace can tell. Other errors have none.
func unreachableFor(err error) (unreachable, bool) {
	switch {
	case errors.Is(err, syscall.EHOSTUNREACH):
		return hostUnreachable, true
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EADDRNOTAVAIL):
		return netUnreachable, true
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return prohibited, true
	}
	return unreachable{}, false
}

// writePortUnreachable tells the namespace that its UDP datagrams from src
// to dst met a closed port.
func (r *Relay) writePortUnreachable(src, dst netip.AddrPort) {
	if r.writeUDPUnreachable(src, dst, portUnreachable) {
		r.c.portUnreachable.Add(1)
	}
}

// writeUDPUnreachable tells the namespace that its UDP datagrams from src
// to dst met the unreachable code.
func (r *Relay) writeUDPUnreachable(src, dst netip.AddrPort, code unreachable) bool {
	udpHdr := make([]byte, header.UDPMinimumSize)
	header.UDP(udpHdr).Encode(&header.UDPFields{SrcPort: src.Port(), DstPort: dst.Port(), Length: header.UDPMinimumSize})
	return r.writeUnreachable(src, dst, header.UDPProtocolNumber, udpHdr, code)
}

// writeUnreachable sends the namespace an ICMP destination unreachable
// to src quoting a packet of the flow: an IP header and the first 8 bytes
// of its transport header, which is what the kernel matches to the socket
// (ports, and for TCP the sequence number) (RFC 792; RFC 4443 §3.1). A
// port unreachable comes from dst, whose kernel would send it; the others
// from the gateway, the router that would (ping prints its address).
// It reports whether it was sent (see writeICMPError: the rate limit,
// sources never answered).
func (r *Relay) writeUnreachable(src, dst netip.AddrPort, proto tcpip.TransportProtocolNumber, transport8 []byte, code unreachable) bool {
	from := dst.Addr()
	if code != portUnreachable {
		from = r.cfg.gateway4
		if dst.Addr().Is6() {
			from = r.cfg.gateway6
		}
	}
	if dst.Addr().Is4() {
		quote := make([]byte, header.IPv4MinimumSize, header.IPv4MinimumSize+len(transport8))
		q := header.IPv4(quote)
		q.Encode(&header.IPv4Fields{TotalLength: uint16(header.IPv4MinimumSize + len(transport8)), TTL: 64,
			Protocol: uint8(proto), SrcAddr: stack.Address(src.Addr()), DstAddr: stack.Address(dst.Addr())})
		q.SetChecksum(^q.CalculateChecksum())
		quote = append(quote, transport8...)
		return r.writeICMPError(from, src.Addr(), uint8(header.ICMPv4DstUnreachable), code.code4, quote)
	}
	quote := make([]byte, header.IPv6MinimumSize, header.IPv6MinimumSize+len(transport8))
	header.IPv6(quote).Encode(&header.IPv6Fields{PayloadLength: uint16(len(transport8)), TransportProtocol: proto,
		HopLimit: 64, SrcAddr: stack.Address(src.Addr()), DstAddr: stack.Address(dst.Addr())})
	quote = append(quote, transport8...)
	return r.writeICMPError(from, src.Addr(), uint8(header.ICMPv6DstUnreachable), code.code6, quote)
}
