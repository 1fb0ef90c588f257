package l4sum

import (
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// packet builds an IPv4 or IPv6 packet around a transport segment of
// proto with a zero checksum and payload bytes after its header.
func packet(v6 bool, proto tcpip.TransportProtocolNumber, payload int) []byte {
	l4 := header.TCPMinimumSize
	if proto == header.UDPProtocolNumber {
		l4 = header.UDPMinimumSize
	}
	seg := make([]byte, l4+payload)
	for i := l4; i < len(seg); i++ {
		seg[i] = byte(i * 7)
	}
	if proto == header.TCPProtocolNumber {
		header.TCP(seg).Encode(&header.TCPFields{SrcPort: 1, DstPort: 2, DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagAck})
	} else {
		header.UDP(seg).Encode(&header.UDPFields{SrcPort: 1, DstPort: 2, Length: uint16(len(seg))})
	}
	if v6 {
		ip := make([]byte, header.IPv6MinimumSize)
		header.IPv6(ip).Encode(&header.IPv6Fields{PayloadLength: uint16(len(seg)), TransportProtocol: proto, HopLimit: 64,
			SrcAddr: tcpip.AddrFromSlice([]byte{0xfd, 0, 15: 1}), DstAddr: tcpip.AddrFromSlice([]byte{0xfd, 0, 15: 2})})
		return append(ip, seg...)
	}
	ip := make([]byte, header.IPv4MinimumSize)
	header.IPv4(ip).Encode(&header.IPv4Fields{TotalLength: uint16(header.IPv4MinimumSize + len(seg)), Protocol: uint8(proto), TTL: 64,
		SrcAddr: tcpip.AddrFrom4([4]byte{10, 0, 0, 1}), DstAddr: tcpip.AddrFrom4([4]byte{10, 0, 0, 2})})
	header.IPv4(ip).SetChecksum(^header.IPv4(ip).CalculateChecksum())
	return append(ip, seg...)
}

func TestCompleteMakesValid(t *testing.T) {
	for _, tc := range []struct {
		name    string
		v6      bool
		proto   tcpip.TransportProtocolNumber
		payload int
	}{
		{"tcp4", false, header.TCPProtocolNumber, 1000},
		{"tcp4 odd length", false, header.TCPProtocolNumber, 999},
		{"tcp6", true, header.TCPProtocolNumber, 60000},
		{"udp6", true, header.UDPProtocolNumber, 3},
		{"tcp4 no payload", false, header.TCPProtocolNumber, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkt := packet(tc.v6, tc.proto, tc.payload)
			seg, ok := Find(pkt)
			if !ok {
				t.Fatal("Find() = false, want the segment")
			}
			if seg.Valid() {
				t.Fatal("a zero checksum is valid, want invalid (the test's packet is wrong)")
			}
			seg.Complete()
			if !seg.Valid() {
				t.Errorf("after Complete, Valid() = false")
			}
			// gVisor's own receive-side check agrees.
			if tc.proto == header.TCPProtocolNumber {
				tcp := header.TCP(seg.Bytes)
				payload := seg.Bytes[tcp.DataOffset():]
				if !tcp.IsChecksumValid(seg.Src, seg.Dst, checksum.Checksum(payload, 0), uint16(len(payload))) {
					t.Errorf("gVisor's TCP check refuses the completed checksum")
				}
			}
		})
	}
}

func TestFindRefusesWhatItCannotJudge(t *testing.T) {
	frag := packet(false, header.TCPProtocolNumber, 100)
	header.IPv4(frag).SetFlagsFragmentOffset(header.IPv4FlagMoreFragments, 0)
	later := packet(false, header.TCPProtocolNumber, 100)
	header.IPv4(later).SetFlagsFragmentOffset(0, 64)
	udpNoSum := packet(false, header.UDPProtocolNumber, 10)
	icmp := packet(false, header.TCPProtocolNumber, 10)
	icmp[9] = uint8(header.ICMPv4ProtocolNumber)
	truncated := packet(true, header.TCPProtocolNumber, 100)[:100]
	shortTCP := packet(false, header.UDPProtocolNumber, 0) // 8 bytes where TCP needs 20
	shortTCP[9] = uint8(header.TCPProtocolNumber)
	for name, pkt := range map[string][]byte{
		"empty": nil, "first fragment": frag, "later fragment": later,
		"ipv4 udp without checksum": udpNoSum, "icmp": icmp,
		"truncated": truncated, "tcp shorter than its header": shortTCP,
		"not ip": {0x50, 0, 0, 0},
	} {
		if _, ok := Find(pkt); ok {
			t.Errorf("%s: Find() = true, want false", name)
		}
	}
}
