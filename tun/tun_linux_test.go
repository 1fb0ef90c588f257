package tun

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/internal/roottest"
	"github.com/ustack/ustack/netns"
	"github.com/ustack/ustack/stack"
	"github.com/vishvananda/netlink"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
)

var (
	hostV4  = netip.MustParsePrefix("10.99.0.1/24")
	hostV6  = netip.MustParsePrefix("fd00:99::1/64")
	stackV4 = netip.MustParsePrefix("10.99.0.2/24")
	stackV6 = netip.MustParsePrefix("fd00:99::2/64")
)

// openPair opens a TUN in a fresh namespace and a stack on its endpoint.
func openPair(t *testing.T, cfg Config) (*roottest.NS, *Device, *stack.Stack) {
	t.Helper()
	ns := roottest.Netns(t)
	cfg.NetNS = ns.Path
	cfg.Addrs = []netip.Prefix{hostV4, hostV6}
	dev, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open(%+v) = %v", cfg, err)
	}
	t.Cleanup(func() { dev.Close() })
	s, err := stack.New(stack.Config{NICs: []stack.NICConfig{{
		Endpoint: dev.Endpoint(), Addrs: []netip.Prefix{stackV4, stackV6},
	}}})
	if err != nil {
		t.Fatalf("stack.New = %v", err)
	}
	t.Cleanup(s.Close)
	return ns, dev, s
}

// echoServer serves TCP echo on the stack at addr until the test ends.
func echoServer(t *testing.T, s *stack.Stack, addr netip.AddrPort) {
	t.Helper()
	proto := ipv4.ProtocolNumber
	if addr.Addr().Is6() {
		proto = ipv6.ProtocolNumber
	}
	l, err := gonet.ListenTCP(s.GVisor(), tcpip.FullAddress{Addr: tcpip.AddrFromSlice(addr.Addr().AsSlice()), Port: addr.Port()}, proto)
	if err != nil {
		t.Fatalf("ListenTCP(%v) = %v", addr, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
}

// dialIn dials addr from inside the namespace with the kernel's TCP.
func dialIn(t *testing.T, ns *roottest.NS, addr netip.AddrPort) net.Conn {
	t.Helper()
	var c net.Conn
	err := netns.Do(ns.Path, func() (err error) {
		c, err = net.DialTimeout("tcp", addr.String(), 5*time.Second)
		return err
	})
	if err != nil {
		t.Fatalf("dial %v in namespace: %v", addr, err)
	}
	return c
}

func TestKernelToStackEcho(t *testing.T) {
	leakcheck.Check(t)
	for _, tc := range []struct {
		drv Driver
		mtu int
	}{{DriverWater, 1500}, {DriverWater, 65520}, {DriverVnet, 1500}, {DriverVnet, 65520}} {
		t.Run(string(tc.drv)+"/mtu"+strconv.Itoa(tc.mtu), func(t *testing.T) {
			ns, _, s := openPair(t, Config{Driver: tc.drv, MTU: tc.mtu})
			for _, a := range []netip.AddrPort{
				netip.AddrPortFrom(stackV4.Addr(), 7), netip.AddrPortFrom(stackV6.Addr(), 7),
			} {
				echoServer(t, s, a)
				c := dialIn(t, ns, a)
				want := bytes.Repeat([]byte("0123456789abcdef"), 1<<14)
				go func() { c.Write(want); c.(*net.TCPConn).CloseWrite() }()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				got, err := io.ReadAll(c)
				c.Close()
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("echo via %v: got %d bytes, err %v; want %d bytes", a, len(got), err, len(want))
				}
			}
		})
	}
}

func TestOpenConfiguresKernelSide(t *testing.T) {
	leakcheck.Check(t)
	ns := roottest.Netns(t)
	dev, err := Open(Config{
		Name: "ustk0", NetNS: ns.Path, MTU: 9000, Driver: DriverWater,
		Addrs:  []netip.Prefix{hostV4, hostV6},
		Routes: []Route{{Dest: netip.MustParsePrefix("192.0.2.0/24"), Gateway: stackV4.Addr()}},
	})
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	out := ns.Run("ip", "-o", "addr", "show", "dev", "ustk0")
	for _, want := range []string{"10.99.0.1/24", "fd00:99::1/64"} {
		if !bytes.Contains([]byte(out), []byte(want)) {
			t.Errorf("ip addr show ustk0 = %q, want it to contain %s", out, want)
		}
	}
	if out := ns.Run("ip", "link", "show", "ustk0"); !bytes.Contains([]byte(out), []byte("mtu 9000")) || !bytes.Contains([]byte(out), []byte("UP")) {
		t.Errorf("ip link show ustk0 = %q, want mtu 9000 and UP", out)
	}
	if out := ns.Run("ip", "route", "show", "192.0.2.0/24"); !bytes.Contains([]byte(out), []byte("via 10.99.0.2")) {
		t.Errorf("ip route show 192.0.2.0/24 = %q, want via 10.99.0.2", out)
	}
	// A second device of the same name is refused with ErrExists.
	if d2, err := Open(Config{Name: "ustk0", NetNS: ns.Path, Driver: DriverWater}); !errors.Is(err, ErrExists) {
		if d2 != nil {
			d2.Close()
		}
		t.Errorf("Open(same name) = %v, want ErrExists", err)
	}
	if err := dev.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	// Close removed the device.
	err = netns.Do(ns.Path, func() error {
		_, err := netlink.LinkByName("ustk0")
		return err
	})
	if err == nil {
		t.Errorf("after Close, ustk0 still exists")
	}
}

func TestOpenBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"mtu low", Config{MTU: 10}, "MTU 10 out of range"},
		{"mtu high", Config{MTU: 70000}, "MTU 70000 out of range"},
		{"v6 small mtu", Config{MTU: 1000, Addrs: []netip.Prefix{hostV6}}, "needs MTU >= 1280"},
		{"long name", Config{Name: "abcdefghijklmnopq"}, "longer than 15"},
		{"driver", Config{Driver: "dpdk"}, `unknown driver "dpdk"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Open(tc.cfg)
			if err == nil {
				d.Close()
				t.Fatalf("Open(%+v) = nil error, want %q", tc.cfg, tc.want)
			}
			if !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Errorf("Open(%+v) = %v, want %q", tc.cfg, err, tc.want)
			}
		})
	}
}
