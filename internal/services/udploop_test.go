package services

import (
	"context"
	"io"
	"net/netip"
	"regexp"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/stack"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// TestUDPServicesRefuseLoopingPeers: UDP echo and daytime answer every
// datagram, so one datagram with a forged source that is another host's
// echo, daytime or chargen port (the port 7 of a second ustack serve, of
// an inetd) starts a loop between the two services that never ends
// (CVE-1999-0103). Like xinetd's and FreeBSD inetd's built-in services,
// they now answer no datagram from a port below 1024, where those services
// live and where no client's ephemeral port ever is, and count what they
// dropped. A client's datagram from an ephemeral port is answered.
func TestUDPServicesRefuseLoopingPeers(t *testing.T) {
	leakcheck.Check(t)
	link, st := startOnLink(t, stack.Route{Dest: netip.MustParsePrefix("0.0.0.0/0"), NIC: "tun0"})

	// answered sends one datagram from peerAddr:sport to port dport and
	// reports whether the stack sent anything back to sport.
	answered := func(sport, dport uint16) bool {
		t.Helper()
		injectIPv4(link, ipv4Packet(peerAddr, nicAddr, header.UDPProtocolNumber,
			udpDatagram(peerAddr, nicAddr, sport, dport, []byte("loop?"))))
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		for {
			pkt := link.ReadContext(ctx)
			if pkt == nil {
				return false
			}
			b := pkt.ToView().AsSlice()
			pkt.DecRef()
			ip := header.IPv4(b)
			if ip.TransportProtocol() == header.UDPProtocolNumber && header.UDP(ip.Payload()).DestinationPort() == sport {
				return true
			}
		}
	}
	for _, tc := range []struct {
		name         string
		sport, dport uint16
		want         bool
	}{
		{"client to echo", 40000, PortEcho, true},
		{"client to daytime", 40001, PortDaytime, true},
		{"echo to echo", PortEcho, PortEcho, false},
		{"chargen to echo", PortChargen, PortEcho, false},
		{"echo to daytime", PortEcho, PortDaytime, false},
		{"daytime to echo", PortDaytime, PortEcho, false},
		{"port 1023 to echo", 1023, PortEcho, false},
	} {
		if got := answered(tc.sport, tc.dport); got != tc.want {
			t.Errorf("%s: datagram from port %d to %d answered = %v, want %v", tc.name, tc.sport, tc.dport, got, tc.want)
		}
	}

	resp, err := httpClient(st).Get("http://127.0.0.1/")
	if err != nil {
		t.Fatalf("GET /: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `(?m)^Services\.UDPLowPortDropped +5$`; !regexp.MustCompile(want).Match(body) {
		t.Errorf("GET / does not match %s:\n%s", want, body)
	}
}
