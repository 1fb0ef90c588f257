//go:build linux

package sockapi

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/stack"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/pipe"
)

// Addresses of netDualStack. The black-holed ones are on a link nobody
// reads, so a SYN to them is never answered.
var (
	netHole6, netHole4 = netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("192.0.2.1")
	netServer6         = netip.MustParseAddr("2001:db8:1::1")
)

// netDual is a client whose names resolve to black-holed and live
// addresses of both families.
type netDual struct {
	client *Sockets
	// hole is the link of the black-holed addresses: packets sent there
	// queue up unread until the test looks at them.
	hole *channel.Endpoint
	// port is the port of a "tcp4" listener of the server on 10.0.0.1,
	// which accepts and closes every connection.
	port string
}

// netDualStack returns a client with two links: one to a server that has
// 10.0.0.1 and 2001:db8:1::1 (listening only on IPv4), and one where
// 2001:db8::1 and 192.0.2.1 black-hole SYNs. Its hosts table has
//
//	dual.test:   2001:db8::1, 10.0.0.1       (IPv6 black-holed, IPv4 live)
//	hole.test:   2001:db8::1, 192.0.2.1      (both black-holed)
//	refuse.test: 2001:db8:1::1, 10.0.0.1     (IPv6 refused, IPv4 live)
//
// and its resolver lists the IPv6 address first (RFC 6724's precedence:
// 40 for 2001:db8::/32, 35 for IPv4), so IPv6 is the primary family.
func netDualStack(t *testing.T) netDual {
	t.Helper()
	ea, eb := pipe.New("\x02\x00\x00\x00\x00\x01", "\x02\x00\x00\x00\x00\x02", 1500)
	hole := channel.New(256, 1500, "")
	mk := func(nics ...stack.NICConfig) *Sockets {
		st, err := stack.New(stack.Config{NICs: nics})
		if err != nil {
			t.Fatalf("stack.New = %v", err)
		}
		return netSockets(t, st)
	}
	pfx := netip.MustParsePrefix
	server := mk(stack.NICConfig{Endpoint: ea, Addrs: []netip.Prefix{pfx("10.0.0.1/24"), pfx("2001:db8:1::1/64")}})
	client := mk(
		stack.NICConfig{Endpoint: eb, Addrs: []netip.Prefix{pfx("10.0.0.2/24"), pfx("2001:db8:1::2/64")}},
		stack.NICConfig{Endpoint: hole, Addrs: []netip.Prefix{pfx("192.0.2.2/24"), pfx("2001:db8::2/64")}},
	)
	hosts := filepath.Join(t.TempDir(), "hosts")
	table := "2001:db8::1 dual.test hole.test\n10.0.0.1 dual.test refuse.test\n192.0.2.1 hole.test\n2001:db8:1::1 refuse.test\n"
	if err := os.WriteFile(hosts, []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := client.SetResolver(ResolverConfig{HostsFile: hosts}); err != nil {
		t.Fatalf("SetResolver = %v", err)
	}
	for _, name := range []string{"dual.test", "hole.test", "refuse.test"} {
		ais, err := client.Getaddrinfo(name, "", &AddrInfo{Socktype: unix.SOCK_STREAM})
		if err != nil || len(ais) != 2 || !client.netAddrPort(ais[0].Addr).Addr().Is6() {
			t.Fatalf("Getaddrinfo(%s) = %v, %v; want an IPv6 address, then an IPv4 one", name, ais, err)
		}
	}
	l, err := (&ListenConfig{Sockets: server}).Listen(context.Background(), "tcp4", "10.0.0.1:0")
	if err != nil {
		t.Fatalf("Listen = %v", err)
	}
	t.Cleanup(func() { l.Close() })
	go netAcceptAll(l)
	return netDual{client: client, hole: hole, port: strconv.Itoa(l.Addr().(*net.TCPAddr).Port)}
}

// sentSYNs drains the black-hole link and returns the destinations of the
// TCP segments sent there.
func (nd netDual) sentSYNs() map[netip.Addr]bool {
	dsts := map[netip.Addr]bool{}
	for pkt := nd.hole.Read(); pkt != nil; pkt = nd.hole.Read() {
		v := pkt.ToView()
		b := v.AsSlice()
		switch {
		case len(b) >= header.IPv6MinimumSize && header.IPVersion(b) == header.IPv6Version:
			if ip := header.IPv6(b); ip.NextHeader() == uint8(header.TCPProtocolNumber) {
				a, _ := netip.AddrFromSlice(ip.DestinationAddressSlice())
				dsts[a] = true
			}
		case len(b) >= header.IPv4MinimumSize && header.IPVersion(b) == header.IPv4Version:
			if ip := header.IPv4(b); ip.Protocol() == uint8(header.TCPProtocolNumber) {
				a, _ := netip.AddrFromSlice(ip.DestinationAddressSlice())
				dsts[a] = true
			}
		}
		v.Release()
		pkt.DecRef()
	}
	return dsts
}

// netWaitGoroutines waits, for a grace period, until no more goroutines
// run than before, and fails t if they do not return to that count.
func netWaitGoroutines(t *testing.T, what string, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Errorf("%s: %d goroutines, %d before it: the losing attempt left one running", what, runtime.NumGoroutine(), before)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// netWantReached checks that c is connected to the server's IPv4 address.
func netWantReached(t *testing.T, what string, c net.Conn, nd netDual) {
	t.Helper()
	if got, want := c.RemoteAddr().String(), "10.0.0.1:"+nd.port; got != want {
		t.Errorf("%s reached %s, want %s", what, got, want)
	}
}

func TestNetDialFallbackDelay(t *testing.T) {
	leakcheck.Check(t)
	nd := netDualStack(t)
	tests := []struct {
		name string
		d    Dialer
		head time.Duration // the IPv6 attempt's head start
	}{
		// A serial dial would give the black hole 10s of the 20s.
		{"default delay with timeout", Dialer{Timeout: 20 * time.Second}, defaultFallbackDelay},
		// A serial dial would wait on the black hole until cancelled.
		{"100ms without deadline", Dialer{FallbackDelay: 100 * time.Millisecond}, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.d.Sockets = nd.client
			// Cancel, not a deadline, guards the dial without one.
			ctx, cancel := context.WithCancel(context.Background())
			defer time.AfterFunc(15*time.Second, cancel).Stop()
			defer cancel()
			goroutines := runtime.NumGoroutine()
			start := time.Now()
			c, err := tt.d.DialContext(ctx, "tcp", net.JoinHostPort("dual.test", nd.port))
			took := time.Since(start)
			if err != nil {
				t.Fatalf("DialContext(tcp, dual.test) = %v after %v, want the IPv4 fallback to connect", err, took)
			}
			netWantReached(t, "DialContext(tcp, dual.test)", c, nd)
			if took < tt.head-10*time.Millisecond || took > 5*time.Second {
				t.Errorf("DialContext(tcp, dual.test) took %v, want about FallbackDelay %v, far below 5s", took, tt.head)
			}
			if n := openDescriptors(nd.client); n != 1 {
				t.Errorf("after the dial %d descriptors are open, want 1 (the connection): the IPv6 attempt's was not closed", n)
			}
			if !nd.sentSYNs()[netHole6] {
				t.Errorf("no SYN went to %v: the IPv6 address was not tried first", netHole6)
			}
			c.Close()
			netWaitGoroutines(t, "DialContext(tcp, dual.test)", goroutines)
		})
	}
}

func TestNetDialSerialPartialDeadline(t *testing.T) {
	leakcheck.Check(t)
	nd := netDualStack(t)
	// With the race off, the IPv6 address gets half of the 5s (2.5s, above
	// the 2s minimum) and the IPv4 one the rest: a dial giving the first
	// address the whole timeout would fail.
	d := &Dialer{Sockets: nd.client, FallbackDelay: -1, Timeout: 5 * time.Second}
	start := time.Now()
	c, err := d.Dial("tcp", net.JoinHostPort("dual.test", nd.port))
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Dial(tcp, dual.test) with FallbackDelay -1 = %v after %v, want IPv4 to connect after IPv6's share", err, took)
	}
	defer c.Close()
	netWantReached(t, "Dial(tcp, dual.test)", c, nd)
	if took < 2400*time.Millisecond {
		t.Errorf("Dial(tcp, dual.test) with FallbackDelay -1 took %v, want IPv4 tried only after IPv6's 2.5s share", took)
	}
	if !nd.sentSYNs()[netHole6] {
		t.Errorf("no SYN went to %v: the IPv6 address was not tried first", netHole6)
	}
	if n := openDescriptors(nd.client); n != 1 {
		t.Errorf("after the dial %d descriptors are open, want 1", n)
	}
}

func TestNetDialFamilyOnlyTriesItsAddresses(t *testing.T) {
	leakcheck.Check(t)
	nd := netDualStack(t)
	d := &Dialer{Sockets: nd.client, Timeout: 500 * time.Millisecond}
	_, err := d.Dial("tcp6", net.JoinHostPort("dual.test", nd.port))
	var oe *net.OpError
	if !errors.As(err, &oe) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial(tcp6, dual.test) = %v, want a timeout on the black-holed IPv6 address", err)
	}
	if want := net.JoinHostPort(netHole6.String(), nd.port); oe.Addr == nil || oe.Addr.String() != want {
		t.Errorf("Dial(tcp6, dual.test) error Addr = %v, want %s", oe.Addr, want)
	}
	if n := openDescriptors(nd.client); n != 0 {
		t.Errorf("after the failed dial %d descriptors are open, want 0", n)
	}
	c, err := d.Dial("tcp4", net.JoinHostPort("dual.test", nd.port))
	if err != nil {
		t.Fatalf("Dial(tcp4, dual.test) = %v", err)
	}
	netWantReached(t, "Dial(tcp4, dual.test)", c, nd)
	c.Close()
	if syns := nd.sentSYNs(); len(syns) != 1 || !syns[netHole6] {
		t.Errorf("SYNs went to %v, want only %v (from tcp6)", syns, netHole6)
	}
}

func TestNetDialFallbackWhenPrimaryFails(t *testing.T) {
	leakcheck.Check(t)
	nd := netDualStack(t)
	// The IPv6 address refuses at once: the fallback must start then,
	// not after the hour of FallbackDelay.
	d := &Dialer{Sockets: nd.client, FallbackDelay: time.Hour, Timeout: 20 * time.Second}
	c, err := d.Dial("tcp", net.JoinHostPort("refuse.test", nd.port))
	if err != nil {
		t.Fatalf("Dial(tcp, refuse.test) = %v, want IPv4 to connect once IPv6 refused", err)
	}
	netWantReached(t, "Dial(tcp, refuse.test)", c, nd)
	c.Close()
	// Both refuse: the error is the primary (IPv6) address's.
	_, err = d.Dial("tcp", "refuse.test:1")
	var oe *net.OpError
	if !errors.Is(err, unix.ECONNREFUSED) || !errors.As(err, &oe) || oe.Addr == nil || oe.Addr.String() != net.JoinHostPort(netServer6.String(), "1") {
		t.Errorf("Dial(tcp, refuse.test:1) = %v, want connection refused by [%v]:1", err, netServer6)
	}
	if n := openDescriptors(nd.client); n != 0 {
		t.Errorf("after the dials %d descriptors are open, want 0", n)
	}
}

func TestNetDialFallbackCancel(t *testing.T) {
	leakcheck.Check(t)
	nd := netDualStack(t)
	// Both families black-holed; cancel once both attempts are under way.
	d := &Dialer{Sockets: nd.client, FallbackDelay: 50 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(500*time.Millisecond, cancel)
	goroutines := runtime.NumGoroutine()
	start := time.Now()
	_, err := d.DialContext(ctx, "tcp", net.JoinHostPort("hole.test", nd.port))
	var oe *net.OpError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &oe) || oe.Op != "dial" {
		t.Errorf("DialContext cancelled = %v, want a dial *net.OpError wrapping context.Canceled", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("cancelled DialContext returned after %v, want promptly", took)
	}
	if syns := nd.sentSYNs(); !syns[netHole6] || !syns[netHole4] {
		t.Errorf("SYNs went to %v, want both %v and %v", syns, netHole6, netHole4)
	}
	if n := openDescriptors(nd.client); n != 0 {
		t.Errorf("after the cancelled dial %d descriptors are open, want 0", n)
	}
	netWaitGoroutines(t, "cancelled DialContext", goroutines)
}

func TestAttemptDeadline(t *testing.T) {
	now := time.Unix(1000, 0)
	tests := []struct {
		left time.Duration
		n    int
		want time.Duration // from now; 0 is a timeout
	}{
		{10 * time.Second, 2, 5 * time.Second},
		{10 * time.Second, 1, 10 * time.Second},
		{3 * time.Second, 2, 2 * time.Second}, // the minimum, taken from the last
		{time.Second, 3, time.Second},         // all that is left
		{0, 1, 0},
		{-time.Second, 2, 0},
	}
	for _, tt := range tests {
		got, err := attemptDeadline(now, now.Add(tt.left), tt.n)
		if tt.want == 0 {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("attemptDeadline(now, now%+v, %d) = %v, %v; want a timeout", tt.left, tt.n, got, err)
			}
			continue
		}
		if err != nil || got.Sub(now) != tt.want {
			t.Errorf("attemptDeadline(now, now+%v, %d) = now+%v, %v; want now+%v", tt.left, tt.n, got.Sub(now), err, tt.want)
		}
	}
}
