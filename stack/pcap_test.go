package stack

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// offloadPipe is a pipe end that, like the vnet TUN endpoint, offloads
// checksums: gVisor leaves its TCP checksums for the "hardware" and
// trusts what it receives.
type offloadPipe struct{ *pipe.Endpoint }

func (offloadPipe) Capabilities() gstack.LinkEndpointCapabilities {
	return gstack.CapabilityRXChecksumOffload | gstack.CapabilityTXChecksumOffload
}

// TestPcapShowsCompleteChecksums checks that a capture of a NIC with
// checksum offload shows every TCP segment with its correct checksum, in
// both directions, as a capture of the water driver does: tcpdump -vv and
// Wireshark would otherwise flag nearly every packet of a vnet capture as
// bad, which sends someone debugging a connection the wrong way.
func TestPcapShowsCompleteChecksums(t *testing.T) {
	leakcheck.Check(t)
	var capture syncBuffer
	s1, s2 := pipeStacksOver(t, NICConfig{Pcap: &capture}, Config{}, func(e *pipe.Endpoint) gstack.LinkEndpoint { return offloadPipe{e} })
	echoRoundTrip(t, s2, s1, "10.0.0.2:7")

	capture.mu.Lock()
	data := capture.b.Bytes()
	capture.mu.Unlock()
	var sent, received, bad int
	for off := 24; off+16 <= len(data); {
		n := int(binary.LittleEndian.Uint32(data[off+8:]))
		pkt := header.IPv4(data[off+16 : off+16+n])
		off += 16 + n
		if pkt.TransportProtocol() != header.TCPProtocolNumber {
			continue
		}
		if pkt.SourceAddress().String() == "10.0.0.1" {
			sent++
		} else {
			received++
		}
		tcp := header.TCP(pkt.Payload())
		payload := tcp[tcp.DataOffset():]
		if !tcp.IsChecksumValid(pkt.SourceAddress(), pkt.DestinationAddress(), checksum.Checksum(payload, 0), uint16(len(payload))) {
			bad++
		}
	}
	if sent < 10 || received < 10 {
		t.Fatalf("capture has %d TCP segments sent and %d received, want both at least 10", sent, received)
	}
	if bad != 0 {
		t.Errorf("%d of %d captured TCP segments have a wrong checksum, want none", bad, sent+received)
	}
}

// badTCPRecord is a pcap record of an IPv4 TCP segment whose checksum is
// wrong (zero).
func badTCPRecord() []byte {
	pkt := make([]byte, header.IPv4MinimumSize+header.TCPMinimumSize+5)
	ip := header.IPv4(pkt)
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(pkt)), Protocol: uint8(header.TCPProtocolNumber), TTL: 64,
		SrcAddr: tcpip.AddrFrom4([4]byte{10, 0, 0, 2}), DstAddr: tcpip.AddrFrom4([4]byte{10, 0, 0, 1})})
	ip.SetChecksum(^ip.CalculateChecksum())
	header.TCP(ip.Payload()).Encode(&header.TCPFields{SrcPort: 1, DstPort: 2, DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagAck})
	copy(pkt[header.IPv4MinimumSize+header.TCPMinimumSize:], "hello")
	rec := make([]byte, 16, 16+len(pkt))
	binary.LittleEndian.PutUint32(rec[8:], uint32(len(pkt)))
	binary.LittleEndian.PutUint32(rec[12:], uint32(len(pkt)))
	return append(rec, pkt...)
}

// TestPcapKeepsRealBadChecksums checks the other half of
// TestPcapShowsCompleteChecksums: on a NIC without checksum offload (the
// water driver) a received segment's wrong checksum is real, gVisor drops
// the segment for it, and the capture must show it as it came; only an
// offloading NIC's capture completes checksums.
func TestPcapKeepsRealBadChecksums(t *testing.T) {
	a, b := pipe.New("\x02\x00\x00\x00\x00\x01", "\x02\x00\x00\x00\x00\x02", 1500)
	for _, tc := range []struct {
		name      string
		ep        gstack.LinkEndpoint
		wantFixed bool
	}{
		{"no offload", a, false},
		{"rx offload", offloadPipe{b}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			cw := &captureWriter{w: &out}
			if _, err := newSniffer(tc.ep, cw); err != nil {
				t.Fatal(err)
			}
			out.Reset() // the file header
			rec := badTCPRecord()
			orig := append([]byte(nil), rec...)
			cw.Write(rec)
			if !bytes.Equal(rec, orig) {
				t.Fatal("Write changed the caller's record")
			}
			got := out.Bytes()
			if len(got) != len(rec) {
				t.Fatalf("wrote %d bytes, want the %d-byte record", len(got), len(rec))
			}
			ip := header.IPv4(got[16:])
			tcp := header.TCP(ip.Payload())
			payload := tcp[tcp.DataOffset():]
			fixed := tcp.IsChecksumValid(ip.SourceAddress(), ip.DestinationAddress(), checksum.Checksum(payload, 0), uint16(len(payload)))
			if fixed != tc.wantFixed {
				t.Errorf("checksum valid in the capture = %v, want %v", fixed, tc.wantFixed)
			}
		})
	}
}
