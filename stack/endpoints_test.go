package stack

import (
	"context"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
)

// TestEndpointStatsCountSockets checks that Stats counts each socket once
// while it is open (a dual-stack one too), counts closed connections in
// TIME_WAIT, and is back to zero once they are gone: what a soak test
// reads to tell released sockets from leaked ones.
func TestEndpointStatsCountSockets(t *testing.T) {
	leakcheck.Check(t)
	s, err := New(Config{TCP: TCPConfig{TimeWaitTimeout: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.Endpoints(); got != (EndpointStats{}) {
		t.Fatalf("fresh stack: Endpoints = %+v, want zero", got)
	}

	l, err := gonet.ListenTCP(s.GVisor(), tcpip.FullAddress{Port: 7}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	// Unspecified address on IPv6: dual-stack, one endpoint in two tables.
	u, err := gonet.DialUDP(s.GVisor(), &tcpip.FullAddress{Port: 9}, nil, ipv6.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Endpoints().Registered; got != 2 {
		t.Errorf("listener and dual-stack UDP: Registered = %d, want 2", got)
	}

	const n = 5
	for range n {
		c, err := gonet.DialContextTCP(context.Background(), s.GVisor(),
			tcpip.FullAddress{Addr: tcpip.AddrFrom4([4]byte{127, 0, 0, 1}), Port: 7}, ipv4.ProtocolNumber)
		if err != nil {
			t.Fatal(err)
		}
		a, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c.Close() // the active closer keeps TIME_WAIT
		a.Close()
	}
	if got := s.Endpoints().Registered; got < 2+n {
		t.Errorf("after %d closed connections: Registered = %d, want at least %d (TIME_WAIT)", n, got, 2+n)
	}
	l.Close()
	u.Close()
	waitEndpoints(t, s, EndpointStats{})
}

func waitEndpoints(t *testing.T, s *Stack, want EndpointStats) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := s.Endpoints()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Endpoints = %+v, want %+v", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
