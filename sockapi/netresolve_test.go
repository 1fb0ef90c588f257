//go:build linux

package sockapi

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"golang.org/x/sys/unix"
)

// netAcceptAll accepts and closes connections on l until it is closed.
func netAcceptAll(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

func TestNetDialHostName(t *testing.T) {
	leakcheck.Check(t)
	a, b := netPair(t)
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("10.0.0.1 server.test\nfd00::1 server6.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := b.SetResolver(ResolverConfig{HostsFile: hosts}); err != nil {
		t.Fatalf("SetResolver = %v", err)
	}
	l, err := (&ListenConfig{Sockets: a}).Listen(context.Background(), "tcp", ":0")
	if err != nil {
		t.Fatalf("Listen = %v", err)
	}
	defer l.Close()
	go netAcceptAll(l)
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	d := &Dialer{Sockets: b}
	for name, want := range map[string]string{"server.test": "10.0.0.1", "server6.test": "fd00::1"} {
		c, err := d.Dial("tcp", net.JoinHostPort(name, port))
		if err != nil {
			t.Errorf("Dial(%s) = %v", name, err)
			continue
		}
		if got := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr(); got != netip.MustParseAddr(want) {
			t.Errorf("Dial(%s) reached %v, want %s", name, got, want)
		}
		c.Close()
	}
	_, err = d.Dial("tcp", net.JoinHostPort("nowhere.test", port))
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsNotFound {
		t.Errorf("Dial(nowhere.test) = %v, want a not-found *net.DNSError", err)
	}
	if _, err := d.Dial("tcp6", net.JoinHostPort("server.test", port)); err == nil {
		t.Errorf("Dial(tcp6, server.test) succeeded, but it has only an IPv4 address")
	}
}

func TestNetDialTriesEachAddress(t *testing.T) {
	leakcheck.Check(t)
	a, b := netPair(t)
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("fd00::1 multi.test\n10.0.0.1 multi.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := b.SetResolver(ResolverConfig{HostsFile: hosts}); err != nil {
		t.Fatalf("SetResolver = %v", err)
	}
	ais, err := b.Getaddrinfo("multi.test", "", &AddrInfo{Socktype: unix.SOCK_STREAM})
	if err != nil || len(ais) != 2 {
		t.Fatalf("Getaddrinfo(multi.test) = %v, %v; want two addresses", ais, err)
	}
	// Only the address the resolver lists second listens, so the dial
	// meets a refusal before it tries the one that answers.
	second := b.netAddrPort(ais[1].Addr).Addr()
	l, err := (&ListenConfig{Sockets: a}).Listen(context.Background(), "tcp", net.JoinHostPort(second.String(), "0"))
	if err != nil {
		t.Fatalf("Listen = %v", err)
	}
	defer l.Close()
	go netAcceptAll(l)
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	c, err := (&Dialer{Sockets: b}).Dial("tcp", net.JoinHostPort("multi.test", port))
	if err != nil {
		t.Fatalf("Dial(multi.test) = %v, want %v to answer", err, second)
	}
	if got := c.RemoteAddr().String(); got != net.JoinHostPort(second.String(), port) {
		t.Errorf("Dial(multi.test) reached %s, want %v", got, second)
	}
	c.Close()
	first := "tcp6"
	if second.Is6() {
		first = "tcp4"
	}
	_, err = (&Dialer{Sockets: b}).Dial(first, net.JoinHostPort("multi.test", port))
	if !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("Dial(%s, multi.test) = %v, want ECONNREFUSED from its one address", first, err)
	}
}

func TestNetDialLocalhostAndServiceName(t *testing.T) {
	leakcheck.Check(t)
	s := netLoopback(t)
	l, err := (&ListenConfig{Sockets: s}).Listen(context.Background(), "tcp", "localhost:0")
	if err != nil {
		t.Fatalf("Listen(localhost:0) = %v", err)
	}
	defer l.Close()
	go netAcceptAll(l)
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	c, err := (&Dialer{Sockets: s}).Dial("tcp", "localhost:"+port)
	if err != nil {
		t.Fatalf("Dial(localhost:%s) = %v", port, err)
	}
	c.Close()
	// "http" is port 80, where nothing listens.
	_, err = (&Dialer{Sockets: s}).Dial("tcp4", "127.0.0.1:http")
	var oe *net.OpError
	if !errors.Is(err, unix.ECONNREFUSED) || !errors.As(err, &oe) || oe.Addr.String() != "127.0.0.1:80" {
		t.Errorf("Dial(127.0.0.1:http) = %v, want a refused connection to 127.0.0.1:80", err)
	}
	if _, err := (&Dialer{Sockets: s}).Dial("tcp", "127.0.0.1:no-such-service"); err == nil {
		t.Errorf("Dial to an unknown service succeeded")
	}
}

func TestNetDialTimeoutBoundsLookup(t *testing.T) {
	leakcheck.Check(t)
	_, b := netPair(t)
	// A nameserver that never answers: the lookup waits for its timeout
	// unless the dial's deadline ends it first.
	err := b.SetResolver(ResolverConfig{
		Nameservers: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.3:53")},
		Timeout:     30 * time.Second,
	})
	if err != nil {
		t.Fatalf("SetResolver = %v", err)
	}
	start := time.Now()
	_, err = (&Dialer{Sockets: b, Timeout: 200 * time.Millisecond}).Dial("tcp", "slow.test:80")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("Dial with a lookup outlasting Timeout = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Dial returned after %v, want about its 200ms Timeout", d)
	}
}

// TestNetPortsAsNetParsesThem: a port in an address is read as package
// net reads it. A number beyond 65535 or below 0 is "invalid port" (going
// through getaddrinfo's service parsing instead, "99999" wrapped to port
// 34463, which was then listened on or dialled), "+80" is 80, and Listen
// with an empty address is the wildcard with a chosen port.
func TestNetPortsAsNetParsesThem(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	lc := &ListenConfig{Sockets: s}
	d := &Dialer{Sockets: s, Timeout: time.Second}
	ctx := context.Background()
	for _, addr := range []string{"127.0.0.1:99999", "127.0.0.1:65536", "[::1]:-1", "127.0.0.1:4294967376"} {
		var ae *net.AddrError
		if l, err := lc.Listen(ctx, "tcp", addr); !errors.As(err, &ae) || ae.Err != "invalid port" {
			t.Errorf("Listen(tcp, %q) = %v, want an AddrError \"invalid port\"", addr, err)
			if err == nil {
				t.Logf("it listened on %v", l.Addr())
				l.Close()
			}
		}
		if c, err := d.Dial("tcp", addr); !errors.As(err, &ae) || ae.Err != "invalid port" {
			t.Errorf("Dial(tcp, %q) = %v, want an AddrError \"invalid port\"", addr, err)
			if err == nil {
				c.Close()
			}
		}
	}
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:+0")
	if err != nil {
		t.Fatalf("Listen(tcp, 127.0.0.1:+0) = %v, want a listener", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	go netAcceptAll(l)
	c, err := d.Dial("tcp", "127.0.0.1:+"+strconv.Itoa(port))
	if err != nil {
		t.Errorf("Dial(tcp, 127.0.0.1:+%d) = %v", port, err)
	} else {
		c.Close()
	}
	l.Close()
	if l, err := lc.Listen(ctx, "tcp", ""); err != nil {
		t.Errorf("Listen(tcp, \"\") = %v; package net listens on the wildcard", err)
	} else {
		if a := l.Addr().(*net.TCPAddr); !a.IP.IsUnspecified() || a.Port == 0 {
			t.Errorf("Listen(tcp, \"\") is on %v, want the wildcard and a chosen port", a)
		}
		l.Close()
	}
}

// TestNetListenOnNamePrefersIPv4: a name with addresses of both families
// is listened on at its first IPv4 address, as net.ListenConfig.Listen
// does (addrs.first(isIPv4)): "localhost:8080" is 127.0.0.1:8080, where a
// client of package net dials. getaddrinfo's order put ::1 first.
func TestNetListenOnNamePrefersIPv4(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	lc := &ListenConfig{Sockets: s}
	for _, nw := range []string{"tcp", "udp"} {
		var addr net.Addr
		if nw == "tcp" {
			l, err := lc.Listen(context.Background(), nw, "localhost:0")
			if err != nil {
				t.Fatalf("Listen(%s, localhost:0) = %v", nw, err)
			}
			addr = l.Addr()
			l.Close()
		} else {
			pc, err := lc.ListenPacket(context.Background(), nw, "localhost:0")
			if err != nil {
				t.Fatalf("ListenPacket(%s, localhost:0) = %v", nw, err)
			}
			addr = pc.LocalAddr()
			pc.Close()
		}
		if ap := netip.MustParseAddrPort(addr.String()); ap.Addr() != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("listening on %s localhost:0 took %v, want 127.0.0.1 as package net", nw, addr)
		}
	}
}
