//go:build linux

package sockapi

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
)

// netSetErrShape is how a setter's error on a closed conn names its
// addresses: "L" for the local one, "R" for the remote one, "-" for none.
func netSetErrShape(c net.Conn, err error) string {
	var oe *net.OpError
	if !errors.As(err, &oe) {
		return "not a *net.OpError: " + errors.Unwrap(err).Error()
	}
	name := func(a net.Addr) string {
		switch {
		case a == nil:
			return "-"
		case a.String() == c.LocalAddr().String():
			return "L"
		case c.RemoteAddr() != nil && a.String() == c.RemoteAddr().String():
			return "R"
		}
		return a.String()
	}
	return oe.Op + " source=" + name(oe.Source) + " addr=" + name(oe.Addr) + ": " + oe.Err.Error()
}

// The net package names a conn's addresses in a setter's error as the
// setter's kind says: the deadline and buffer setters every conn has
// give only the local address (net.go), the TCP option setters local and
// remote (tcpsock.go). The adapters gave local and remote for all.
func TestNetSetterErrorsAsNet(t *testing.T) {
	leakcheck.Check(t)
	s := netLoopback(t)
	setters := map[string]func(net.Conn) error{
		"SetDeadline":      func(c net.Conn) error { return c.SetDeadline(time.Now()) },
		"SetReadDeadline":  func(c net.Conn) error { return c.SetReadDeadline(time.Now()) },
		"SetWriteDeadline": func(c net.Conn) error { return c.SetWriteDeadline(time.Now()) },
		"SetReadBuffer":    func(c net.Conn) error { return c.(interface{ SetReadBuffer(int) error }).SetReadBuffer(1 << 16) },
		"SetWriteBuffer":   func(c net.Conn) error { return c.(interface{ SetWriteBuffer(int) error }).SetWriteBuffer(1 << 16) },
	}
	tcpSetters := map[string]func(net.Conn) error{
		"SetNoDelay":   func(c net.Conn) error { return c.(interface{ SetNoDelay(bool) error }).SetNoDelay(true) },
		"SetLinger":    func(c net.Conn) error { return c.(interface{ SetLinger(int) error }).SetLinger(0) },
		"SetKeepAlive": func(c net.Conn) error { return c.(interface{ SetKeepAlive(bool) error }).SetKeepAlive(true) },
	}
	for _, network := range []string{"tcp", "udp"} {
		var ln net.Listener
		var kln net.Listener
		var kpc net.PacketConn
		var upc net.PacketConn
		if network == "tcp" {
			ln, _ = (&ListenConfig{Sockets: s}).Listen(context.Background(), "tcp", "127.0.0.1:0")
			kln, _ = net.Listen("tcp", "127.0.0.1:0")
			defer ln.Close()
			defer kln.Close()
		} else {
			upc, _ = (&ListenConfig{Sockets: s}).ListenPacket(context.Background(), "udp", "127.0.0.1:0")
			kpc, _ = net.ListenPacket("udp", "127.0.0.1:0")
			defer upc.Close()
			defer kpc.Close()
		}
		all := map[string]func(net.Conn) error{}
		for k, v := range setters {
			all[k] = v
		}
		if network == "tcp" {
			for k, v := range tcpSetters {
				all[k] = v
			}
		}
		for name, set := range all {
			t.Run(network+"/"+name, func(t *testing.T) {
				var ours, kernel net.Conn
				var err error
				if network == "tcp" {
					ours, err = (&Dialer{Sockets: s}).Dial("tcp", ln.Addr().String())
					if err == nil {
						kernel, err = net.Dial("tcp", kln.Addr().String())
					}
				} else {
					ours, err = (&Dialer{Sockets: s}).Dial("udp", upc.LocalAddr().String())
					if err == nil {
						kernel, err = net.Dial("udp", kpc.LocalAddr().String())
					}
				}
				if err != nil {
					t.Fatal(err)
				}
				ours.Close()
				kernel.Close()
				got, want := netSetErrShape(ours, set(ours)), netSetErrShape(kernel, set(kernel))
				if got != want {
					t.Errorf("%s on a closed %s conn: error %q, package net's %q", name, network, got, want)
				}
				if !strings.Contains(got, "use of closed") {
					t.Errorf("%s on a closed conn: %q, want net.ErrClosed", name, got)
				}
			})
		}
	}
}
