package services

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/stack"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
)

// TestDeadPeerConnectionsClosed: a connection whose peer vanished without
// a FIN or a reset (the host went away, a firewall now drops its packets,
// its namespace was torn down behind a router) must not stay open for
// ever. Echo and discard wait for the peer to speak and so sent nothing
// that could fail: they held such connections, their goroutines and
// gVisor endpoints until serve stopped. Accepted connections now have
// keep-alive, as Go's net package gives every accepted connection (15 s,
// 15 s, 9 probes), and as ustack run's relay has for the same reason.
func TestDeadPeerConnectionsClosed(t *testing.T) {
	leakcheck.Check(t)
	saved := keepAlive
	keepAlive.idle, keepAlive.interval, keepAlive.count = 200*time.Millisecond, 100*time.Millisecond, 2
	t.Cleanup(func() { keepAlive = saved })

	a, b := pipe.New("", "", 1500)
	client, err := stack.New(stack.Config{NICs: []stack.NICConfig{{Endpoint: a, Addrs: []netip.Prefix{netip.MustParsePrefix("10.99.0.1/24")}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	server, err := stack.New(stack.Config{NICs: []stack.NICConfig{{Endpoint: b, Addrs: []netip.Prefix{netip.MustParsePrefix("10.99.0.2/24")}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(server.Close)
	srv, err := Start(Config{Stack: server, Addrs: []netip.Addr{netip.MustParseAddr("10.99.0.2")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })

	for _, port := range []uint16{PortEcho, PortDiscard} {
		fa, proto := fullAddress(netip.MustParseAddr("10.99.0.2"), port)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := gonet.DialContextTCP(ctx, client.GVisor(), fa, proto)
		cancel()
		if err != nil {
			t.Fatalf("dial port %d: %v", port, err)
		}
		t.Cleanup(func() { c.Close() })
	}
	waitConns := func(n int, within time.Duration) bool {
		deadline := time.Now().Add(within)
		for len(srv.Conns()) != n {
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(10 * time.Millisecond)
		}
		return true
	}
	if !waitConns(2, 5*time.Second) {
		t.Fatalf("Conns() = %d entries, want 2", len(srv.Conns()))
	}
	// The client goes away without a word: its interface is gone, so
	// what the server sends is dropped and nothing comes back.
	if err := client.GVisor().RemoveNIC(nicIDOf(t, client, "10.99.0.1")); err != nil {
		t.Fatalf("RemoveNIC: %v", err)
	}
	if !waitConns(0, 3*time.Second) {
		t.Errorf("3s after the peer vanished (keep-alive after 200ms, 2 probes 100ms apart): %d connections still open, want 0", len(srv.Conns()))
	}
}

// nicIDOf returns the ID of the NIC of s that has address addr.
func nicIDOf(t *testing.T, s *stack.Stack, addr string) tcpip.NICID {
	t.Helper()
	want := netip.MustParseAddr(addr)
	for id, info := range s.GVisor().NICInfo() {
		for _, pa := range info.ProtocolAddresses {
			if pa.AddressWithPrefix.Address == tcpip.AddrFrom4(want.As4()) {
				return id
			}
		}
	}
	t.Fatalf("no NIC with %v", addr)
	return 0
}
