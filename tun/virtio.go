package tun

import (
	"encoding/binary"

	"github.com/ustack/ustack/internal/l4sum"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// The virtio-net header that precedes every packet on a TUN opened with
// IFF_VNET_HDR: struct virtio_net_hdr in include/uapi/linux/virtio_net.h
// (the 10-byte legacy layout, no num_buffers). Its 16-bit fields are
// little-endian because Open sets TUNSETVNETLE; gVisor's
// header.VirtioNetHeader reads them big-endian, so we do not use it.
const virtioNetHdrLen = 10

// Flags and GSO types, from include/uapi/linux/virtio_net.h.
const (
	virtioFlagNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM: checksum is partial
	virtioFlagDataValid = 2 // VIRTIO_NET_HDR_F_DATA_VALID: the kernel verified it

	virtioGSONone  = 0    // VIRTIO_NET_HDR_GSO_NONE
	virtioGSOTCPv4 = 1    // VIRTIO_NET_HDR_GSO_TCPV4
	virtioGSOUDP   = 3    // VIRTIO_NET_HDR_GSO_UDP (UFO; never enabled by us)
	virtioGSOTCPv6 = 4    // VIRTIO_NET_HDR_GSO_TCPV6
	virtioGSOECN   = 0x80 // VIRTIO_NET_HDR_GSO_ECN: a bit or'ed into gso_type
)

// virtioHdr is a decoded virtio_net_hdr.
type virtioHdr struct {
	flags      uint8
	gsoType    uint8
	hdrLen     uint16 // length of the headers (a hint on receive)
	gsoSize    uint16 // MSS of the segments
	csumStart  uint16 // offset of the transport header from the IP header
	csumOffset uint16 // offset of the checksum field from csumStart
}

func decodeVirtioHdr(b []byte) virtioHdr {
	_ = b[virtioNetHdrLen-1]
	return virtioHdr{
		flags:      b[0],
		gsoType:    b[1],
		hdrLen:     binary.LittleEndian.Uint16(b[2:]),
		gsoSize:    binary.LittleEndian.Uint16(b[4:]),
		csumStart:  binary.LittleEndian.Uint16(b[6:]),
		csumOffset: binary.LittleEndian.Uint16(b[8:]),
	}
}

func (h *virtioHdr) encode(b []byte) {
	_ = b[virtioNetHdrLen-1]
	b[0] = h.flags
	b[1] = h.gsoType
	binary.LittleEndian.PutUint16(b[2:], h.hdrLen)
	binary.LittleEndian.PutUint16(b[4:], h.gsoSize)
	binary.LittleEndian.PutUint16(b[6:], h.csumStart)
	binary.LittleEndian.PutUint16(b[8:], h.csumOffset)
}

// txVirtioHdr builds the header for an outbound packet. gVisor's TCP on an
// endpoint with host GSO leaves a pseudo-header partial checksum in the
// TCP header (NeedsCsum) and may hand us a segment of up to GSOMaxSize that
// the kernel splits into MSS-sized ones. A TUN carries no link header, so
// csum_start is where the transport header begins in the IP packet: the
// actual network header length, not fdbased's Ethernet-based offset, and
// not GSOOptions.L3HdrLen, which is the minimum IP header size. ok is false
// for a GSO type this endpoint never advertises.
func txVirtioHdr(pkt *stack.PacketBuffer) (h virtioHdr, ok bool) {
	gso := pkt.GSOOptions
	var typ uint8
	switch gso.Type {
	case stack.GSONone:
		return virtioHdr{}, true
	case stack.GSOTCPv4:
		typ = virtioGSOTCPv4
	case stack.GSOTCPv6:
		typ = virtioGSOTCPv6
	default:
		return virtioHdr{}, false
	}
	h.hdrLen = uint16(pkt.HeaderSize())
	if gso.NeedsCsum {
		h.flags = virtioFlagNeedsCsum
		h.csumStart = uint16(len(pkt.LinkHeader().Slice()) + len(pkt.NetworkHeader().Slice()))
		h.csumOffset = gso.CsumOffset
	}
	if gso.MSS > 0 && pkt.Data().Size() > int(gso.MSS) {
		h.gsoType = typ
		h.gsoSize = gso.MSS
	}
	return h, true
}

// rxVerdict says what to do with a packet read from the device.
type rxVerdict int

const (
	rxDeliver     rxVerdict = iota
	rxMalformed             // bad or unsupported virtio header, or not IP
	rxBadChecksum           // a full checksum the kernel did not verify is wrong
)

// checkRx decides whether the packet pkt (the bytes after the virtio header,
// all of them) may go to the stack, and as which network protocol.
//
// The endpoint advertises RX checksum offload, so gVisor skips verifying
// IPv4 header, TCP and UDP checksums on every packet. That is right for
// packets with NEEDS_CSUM (built by this host's kernel, the checksum field
// holds only the pseudo-header sum: Linux's CHECKSUM_PARTIAL) and for
// DATA_VALID (the kernel verified it: CHECKSUM_UNNECESSARY). A packet with
// neither flag (CHECKSUM_NONE: forwarded from elsewhere, or ICMP) carries a
// full checksum nobody checked yet, so checkRx verifies it here.
//
// A GSO packet (up to 64 KiB, from the kernel's TSO) is accepted whole: it is
// one TCP segment carrying many MSS worth of bytes, exactly what GRO makes
// of a burst on a real NIC, and gVisor's TCP handles segments of any size.
// Delivering it unsplit costs one trip through the stack instead of ~45.
func checkRx(h virtioHdr, pkt []byte) (tcpip.NetworkProtocolNumber, rxVerdict) {
	proto, ok := ipVersion(pkt)
	if !ok {
		return 0, rxMalformed
	}
	if h.flags&^(virtioFlagNeedsCsum|virtioFlagDataValid) != 0 {
		return 0, rxMalformed // e.g. VIRTIO_NET_HDR_F_RSC_INFO: not negotiated
	}
	if h.flags&virtioFlagNeedsCsum != 0 {
		// The kernel would fold the sum into pkt[csumStart+csumOffset:][:2].
		if int(h.csumStart) < minIPHeader(proto) || int(h.csumStart)+int(h.csumOffset)+2 > len(pkt) {
			return 0, rxMalformed
		}
	}
	if !checkRxGSO(h, proto, pkt) {
		return 0, rxMalformed
	}
	if h.flags == 0 && !fullChecksumsValid(proto, pkt) {
		return 0, rxBadChecksum
	}
	return proto, rxDeliver
}

func minIPHeader(proto tcpip.NetworkProtocolNumber) int {
	if proto == header.IPv4ProtocolNumber {
		return header.IPv4MinimumSize
	}
	return header.IPv6MinimumSize
}

// checkRxGSO checks the GSO fields: only TCP segmentation of the packet's
// own IP version is ever enabled (TUNSETOFFLOAD), and the virtio spec
// (5.1.6.2) requires NEEDS_CSUM with any GSO type.
func checkRxGSO(h virtioHdr, proto tcpip.NetworkProtocolNumber, pkt []byte) bool {
	typ := h.gsoType &^ virtioGSOECN
	switch {
	case typ == virtioGSONone:
		return h.gsoType == virtioGSONone // ECN alone means nothing
	case typ == virtioGSOTCPv4 && proto == header.IPv4ProtocolNumber:
		if header.IPv4(pkt).Protocol() != uint8(header.TCPProtocolNumber) {
			return false
		}
	case typ == virtioGSOTCPv6 && proto == header.IPv6ProtocolNumber:
	default:
		return false // UDP/USO, or TCPv4 on an IPv6 packet and vice versa
	}
	if h.flags&virtioFlagNeedsCsum == 0 || h.gsoSize == 0 || int(h.hdrLen) > len(pkt) {
		return false
	}
	// csum_start must point at a whole TCP header with its checksum field.
	if h.csumOffset != header.TCPChecksumOffset || int(h.csumStart)+header.TCPMinimumSize > len(pkt) {
		return false
	}
	return true
}

// fullChecksumsValid verifies what gVisor will skip for this packet: the
// IPv4 header checksum and, when the packet is unfragmented and its
// transport header follows the IP header directly, the TCP or UDP checksum.
// ICMP checksums gVisor always verifies itself; fragments are verified
// after reassembly only in the kernel that sent them, which for a packet
// with a full checksum and no offload flag is the sender's own stack.
func fullChecksumsValid(proto tcpip.NetworkProtocolNumber, pkt []byte) bool {
	if proto == header.IPv4ProtocolNumber {
		ip := header.IPv4(pkt)
		hl, tl := int(ip.HeaderLength()), int(ip.TotalLength())
		if hl < header.IPv4MinimumSize || hl > len(pkt) || tl < hl || tl > len(pkt) {
			return true // not ours to judge: gVisor drops it as malformed
		}
		if !ip.IsChecksumValid() {
			return false
		}
	}
	seg, ok := l4sum.Find(pkt)
	return !ok || seg.Valid()
}
