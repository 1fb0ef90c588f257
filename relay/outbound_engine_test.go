package relay

import (
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
)

// TestOutboundSource: with Outbound4 127.0.0.2, the host sockets the
// relay opens for the namespace's TCP connections and UDP flows (here to
// host loopback through the gateway) come from 127.0.0.2, which the
// servers see; without it, from 127.0.0.1.
func TestOutboundSource(t *testing.T) {
	leakcheck.Check(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveTCP(t, ln, func(c net.Conn) { c.Write([]byte(c.RemoteAddr().(*net.TCPAddr).IP.String())) })
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udpDone := make(chan struct{})
	go func() {
		defer close(udpDone)
		buf := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(from.(*net.UDPAddr).IP.String()), from)
		}
	}()
	defer func() { pc.Close(); <-udpDone }()
	tcpPort := ln.Addr().(*net.TCPAddr).Port
	udpPort := pc.LocalAddr().(*net.UDPAddr).Port
	for _, tc := range []struct {
		outbound netip.Addr
		want     string
	}{
		{netip.MustParseAddr("127.0.0.2"), "127.0.0.2"},
		{netip.Addr{}, "127.0.0.1"},
	} {
		h := newHarness(t, Config{AllowHostLoopback: true, Outbound4: tc.outbound})
		c, err := h.dial(t, netip.AddrPortFrom(DefaultGateway4, uint16(tcpPort)).String())
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAllTimeout(c)
		c.Close()
		if got != tc.want || err != nil {
			t.Errorf("Outbound4 %v: TCP server saw %q (%v), want %q", tc.outbound, got, err, tc.want)
		}
		fa, proto := full(netip.AddrPortFrom(DefaultGateway4, uint16(udpPort)))
		uc, terr := gonet.DialUDP(h.ns.GVisor(), nil, &fa, proto)
		if terr != nil {
			t.Fatal(terr)
		}
		uc.Write([]byte("x"))
		uc.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 64)
		n, err := uc.Read(buf)
		uc.Close()
		if string(buf[:n]) != tc.want || err != nil {
			t.Errorf("Outbound4 %v: UDP server saw %q (%v), want %q", tc.outbound, buf[:n], err, tc.want)
		}
	}
}

func readAllTimeout(c net.Conn) (string, error) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

func TestOutboundFamilyChecked(t *testing.T) {
	leakcheck.Check(t)
	gwn := gatewayStack(t)
	for _, cfg := range []Config{
		{Outbound4: netip.MustParseAddr("::1")},
		{Outbound6: netip.MustParseAddr("127.0.0.1")},
		{Outbound6: netip.MustParseAddr("::ffff:127.0.0.1")},
	} {
		cfg.Stack = gwn
		if r, err := New(cfg); err == nil || !strings.Contains(err.Error(), "Config.Outbound") {
			if r != nil {
				r.Close()
			}
			t.Errorf("New(Outbound4 %v, Outbound6 %v) = %v, want an error naming the field", cfg.Outbound4, cfg.Outbound6, err)
		}
	}
}
