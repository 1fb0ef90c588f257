//go:build linux

package sockapi

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"golang.org/x/sys/unix"
)

func TestNetPacketRoundTrip(t *testing.T) {
	tests := []struct {
		name, network, serverAddr, clientAddr string
		pair                                  bool
	}{
		{"loopback4", "udp", "127.0.0.1:0", "127.0.0.1:0", false},
		{"loopback6", "udp6", "[::1]:0", "[::1]:0", false},
		{"pair4", "udp4", "10.0.0.1:0", "10.0.0.2:0", true},
		{"pair6", "udp", "[fd00::1]:0", "[fd00::2]:0", true},
		{"pair-dualstack", "udp", ":0", "10.0.0.2:0", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakcheck.Check(t)
			a := netLoopback(t)
			b := a
			if tt.pair {
				a, b = netPair(t)
			}
			ctx := context.Background()
			server, err := (&ListenConfig{Sockets: a}).ListenPacket(ctx, tt.network, tt.serverAddr)
			if err != nil {
				t.Fatalf("ListenPacket(%s) = %v", tt.serverAddr, err)
			}
			defer server.Close()
			client, err := (&ListenConfig{Sockets: b}).ListenPacket(ctx, tt.network, tt.clientAddr)
			if err != nil {
				t.Fatalf("ListenPacket(%s) = %v", tt.clientAddr, err)
			}
			defer client.Close()
			to := server.LocalAddr().(*net.UDPAddr)
			if to.IP.IsUnspecified() {
				to = &net.UDPAddr{IP: net.ParseIP("10.0.0.1"), Port: to.Port}
			}
			netPacketEcho(t, client, server, to)
		})
	}
}

// netPacketEcho sends a datagram from client to server at to, checks its
// sender, and sends it back.
func netPacketEcho(t *testing.T, client, server net.PacketConn, to net.Addr) {
	t.Helper()
	client.SetDeadline(time.Now().Add(5 * time.Second))
	server.SetDeadline(time.Now().Add(5 * time.Second))
	if n, err := client.WriteTo([]byte("ping"), to); n != 4 || err != nil {
		t.Fatalf("WriteTo(%v) = %d, %v; want 4, nil", to, n, err)
	}
	buf := make([]byte, 100)
	n, from, err := server.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("ReadFrom = %q, %v, %v; want ping", buf[:n], from, err)
	}
	ua, ok := from.(*net.UDPAddr)
	if !ok || ua.Port != client.LocalAddr().(*net.UDPAddr).Port {
		t.Errorf("ReadFrom sender = %v, want the client's port %v", from, client.LocalAddr())
	}
	if _, err := server.WriteTo(buf[:n], from); err != nil {
		t.Fatalf("WriteTo(sender %v) = %v", from, err)
	}
	n, from, err = client.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Errorf("reply ReadFrom = %q, %v, %v; want ping", buf[:n], from, err)
	}
}

func TestNetPacketConnected(t *testing.T) {
	leakcheck.Check(t)
	a, b := netPair(t)
	server, err := (&ListenConfig{Sockets: a}).ListenPacket(context.Background(), "udp", "10.0.0.1:0")
	if err != nil {
		t.Fatalf("ListenPacket = %v", err)
	}
	defer server.Close()
	c, err := (&Dialer{Sockets: b}).Dial("udp", server.LocalAddr().String())
	if err != nil {
		t.Fatalf("Dial(udp) = %v", err)
	}
	defer c.Close()
	uc := c.(*UDPConn)
	if uc.RemoteAddr().String() != server.LocalAddr().String() {
		t.Errorf("RemoteAddr = %v, want %v", uc.RemoteAddr(), server.LocalAddr())
	}
	// A zero-length datagram is a datagram.
	for _, msg := range []string{"hello", ""} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatalf("Write(%q) = %v", msg, err)
		}
		buf := make([]byte, 10)
		server.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := server.ReadFrom(buf)
		if err != nil || string(buf[:n]) != msg {
			t.Fatalf("ReadFrom = %q, %v; want %q", buf[:n], err, msg)
		}
		if _, err := server.WriteTo(buf[:n], from); err != nil {
			t.Fatalf("WriteTo = %v", err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err = c.Read(buf)
		if err != nil || string(buf[:n]) != msg {
			t.Errorf("Read of the reply = %q, %v; want %q, nil", buf[:n], err, msg)
		}
	}
	if _, err := uc.WriteTo([]byte("x"), server.LocalAddr()); !errors.Is(err, net.ErrWriteToConnected) {
		t.Errorf("WriteTo on a connected UDPConn = %v, want net.ErrWriteToConnected", err)
	}
	// Write needs a connected peer, as send(2) on an unconnected socket.
	if _, err := server.(*UDPConn).Write([]byte("x")); !errors.Is(err, unix.EDESTADDRREQ) {
		t.Errorf("Write on an unconnected UDPConn = %v, want EDESTADDRREQ", err)
	}
	if _, err := server.WriteTo([]byte("x"), &net.TCPAddr{}); !errors.Is(err, unix.EINVAL) {
		t.Errorf("WriteTo a *net.TCPAddr = %v, want EINVAL", err)
	}
}

func TestNetPacketDeadline(t *testing.T) {
	leakcheck.Check(t)
	s := netLoopback(t)
	pc, err := (&ListenConfig{Sockets: s}).ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("ListenPacket = %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := pc.ReadFrom(make([]byte, 10))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	pc.SetReadDeadline(time.Now())
	netWantTimeout(t, "ReadFrom", netWaitErr(t, "ReadFrom", done))
	pc.SetReadDeadline(time.Time{})
	go func() {
		_, _, err := pc.ReadFrom(make([]byte, 10))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	pc.Close()
	if err := netWaitErr(t, "ReadFrom", done); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadFrom blocked across Close = %v, want net.ErrClosed", err)
	}
	if _, err := pc.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteTo after Close = %v, want net.ErrClosed", err)
	}
}

func TestNetPacketRefused(t *testing.T) {
	leakcheck.Check(t)
	s := netLoopback(t)
	// Nothing listens on the port: the ICMP port unreachable comes back
	// to the connected socket as ECONNREFUSED, as on Linux.
	c, err := (&Dialer{Sockets: s}).Dial("udp", "127.0.0.1:9")
	if err != nil {
		t.Fatalf("Dial(udp) = %v", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("anyone?")); err != nil {
		t.Fatalf("Write = %v", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 10))
	var oe *net.OpError
	if !errors.Is(err, unix.ECONNREFUSED) || !errors.As(err, &oe) || oe.Op != "read" {
		t.Errorf("Read after an ICMP port unreachable = %v, want read: ECONNREFUSED", err)
	}
}

// TestNetBadAddressesRefused: a *net.UDPAddr or *net.TCPAddr whose port
// does not fit or whose IP has neither 4 nor 16 bytes is refused as
// package net refuses it (sendto/bind: invalid argument; "non-IPv4
// address"), never wrapped into another port or taken as the wildcard.
func TestNetBadAddressesRefused(t *testing.T) {
	leakcheck.Check(t)
	s := newTestSockets(t)
	lc := &ListenConfig{Sockets: s}
	pc, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, port := range []int{70000, 65536, -1} {
		to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
		if _, err := pc.WriteTo([]byte("x"), to); !errors.Is(err, unix.EINVAL) {
			t.Errorf("WriteTo(%v) = %v, want EINVAL as package net", to, err)
		}
		d := &Dialer{Sockets: s, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}}
		if c, err := d.Dial("tcp", pc.LocalAddr().String()); !errors.Is(err, unix.EINVAL) {
			t.Errorf("Dial from local port %d = %v, want EINVAL as package net", port, err)
			if err == nil {
				c.Close()
			}
		}
	}
	// A nil *net.TCPAddr as LocalAddr is none, as in net.Dialer.
	if c, err := (&Dialer{Sockets: s, LocalAddr: (*net.TCPAddr)(nil)}).Dial("tcp", pc.LocalAddr().String()); !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("Dial with a nil *net.TCPAddr LocalAddr = %v, want ECONNREFUSED (nothing listens)", err)
		if err == nil {
			c.Close()
		}
	}
	var ae *net.AddrError
	if _, err := pc.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IP{1, 2, 3}, Port: 9}); !errors.As(err, &ae) {
		t.Errorf("WriteTo(a 3-byte IP) = %v, want a *net.AddrError as package net", err)
	}
}
