package stack

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
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
	a, b := pipe.New("\x02\x00\x00\x00\x00\x01", "\x02\x00\x00\x00\x00\x02", 1500)
	s1, err := New(Config{NICs: []NICConfig{{Endpoint: offloadPipe{a}, Pcap: &capture, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	s2, err := New(Config{NICs: []NICConfig{{Endpoint: offloadPipe{b}, Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24")}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
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
