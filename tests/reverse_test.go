package tests

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/internal/roottest"
	"github.com/ustack/ustack/stack"
	"github.com/ustack/ustack/tun"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
)

// openStack opens a TUN device in a fresh namespace, as `ustack serve`
// does, and a userspace stack on it, in this process. Both are closed, in
// STYLE.md #7's order, when the test ends.
func openStack(t *testing.T, driver tun.Driver, mtu int) (*roottest.NS, *stack.Stack) {
	t.Helper()
	ns := roottest.Netns(t)
	dev, err := tun.Open(tun.Config{NetNS: ns.Path, MTU: mtu, Driver: driver, Addrs: []netip.Prefix{hostV4, hostV6}})
	if err != nil {
		t.Fatalf("tun.Open(%s, MTU %d) = %v", driver, mtu, err)
	}
	t.Cleanup(func() {
		if err := dev.Close(); err != nil {
			t.Errorf("Device.Close = %v", err)
		}
		err := netnsDo(ns, func() error {
			_, err := net.InterfaceByName(dev.Name())
			return err
		})
		if err == nil {
			t.Errorf("device %s still in %s after Device.Close", dev.Name(), ns.Name)
		}
	})
	st, err := stack.New(stack.Config{NICs: []stack.NICConfig{{
		Name: dev.Name(), Endpoint: dev.Endpoint(), Addrs: []netip.Prefix{stackV4, stackV6},
	}}})
	if err != nil {
		t.Fatalf("stack.New = %v", err)
	}
	t.Cleanup(st.Close)
	return ns, st
}

func fullAddr(a netip.AddrPort) (tcpip.FullAddress, tcpip.NetworkProtocolNumber) {
	proto := ipv6.ProtocolNumber
	if a.Addr().Is4() {
		proto = ipv4.ProtocolNumber
	}
	return tcpip.FullAddress{Addr: tcpip.AddrFromSlice(a.Addr().AsSlice()), Port: a.Port()}, proto
}

// dialFromStack connects from the userspace stack to addr.
func dialFromStack(t *testing.T, st *stack.Stack, addr netip.AddrPort) *gonet.TCPConn {
	t.Helper()
	fa, proto := fullAddr(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := gonet.DialContextTCP(ctx, st.GVisor(), fa, proto)
	if err != nil {
		t.Fatalf("dial %v from the stack: %v", addr, err)
	}
	return c
}

// TestStackDialsKernel is the reverse direction: the userspace stack
// connects out to a kernel listener in the namespace and the data must
// come back intact.
func TestStackDialsKernel(t *testing.T) {
	forEachLink(t, func(t *testing.T, driver tun.Driver, mtu int) {
		leakcheck.Check(t)
		ns, st := openStack(t, driver, mtu)
		for _, tc := range []struct {
			listen netip.AddrPort
			size   int64
		}{
			{addrPort(hostV4, 5001), 16 << 20},
			{addrPort(hostV6, 5001), 4 << 20},
		} {
			kernelEchoServer(t, listenIn(t, ns, tc.listen))
			c := dialFromStack(t, st, tc.listen)
			if got := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr(); got != stackV4.Addr() && got != stackV6.Addr() {
				t.Errorf("connection to %v from local address %v, want one of the stack's", tc.listen, got)
			}
			checkEcho(t, c, tc.size, time.Minute)
		}
	})
}

// TestStackUDPToKernel sends datagrams from the userspace stack to a kernel
// UDP socket in the namespace and back.
func TestStackUDPToKernel(t *testing.T) {
	forEachLink(t, func(t *testing.T, driver tun.Driver, mtu int) {
		leakcheck.Check(t)
		ns, st := openStack(t, driver, mtu)
		for _, a := range []netip.AddrPort{addrPort(hostV4, 5002), addrPort(hostV6, 5002)} {
			var k net.PacketConn
			err := netnsDo(ns, func() (err error) {
				k, err = net.ListenPacket("udp", a.String())
				return err
			})
			if err != nil {
				t.Fatalf("listen udp %v in namespace: %v", a, err)
			}
			done := make(chan struct{})
			go func() { // kernel-side UDP echo
				defer close(done)
				buf := make([]byte, 65536)
				for {
					n, from, err := k.ReadFrom(buf)
					if err != nil {
						return
					}
					k.WriteTo(buf[:n], from)
				}
			}()
			fa, proto := fullAddr(a)
			c, err := gonet.DialUDP(st.GVisor(), nil, &fa, proto)
			if err != nil {
				t.Fatalf("DialUDP(%v) from the stack = %v", a, err)
			}
			checkUDPEcho(t, c, 1, 1200, 8000, 65000)
			c.Close()
			k.Close()
			<-done
		}
	})
}
