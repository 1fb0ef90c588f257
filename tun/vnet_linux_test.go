package tun

import (
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
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

// bulkSize is what each direction carries in the root tests.
const bulkSize = 64 << 20

// sendRandom writes n pseudo-random bytes (seeded by seed) to w, closes
// the write side, and returns their SHA-256.
func sendRandom(w io.Writer, n int64, seed uint64) ([sha256.Size]byte, error) {
	var seedb [32]byte
	seedb[0] = byte(seed)
	h := sha256.New()
	_, err := io.CopyN(w, io.TeeReader(rand.NewChaCha8(seedb), h), n)
	if cw, ok := w.(interface{ CloseWrite() error }); ok && err == nil {
		err = cw.CloseWrite()
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum, err
}

// hashAll reads r to EOF and returns the byte count and SHA-256.
func hashAll(r io.Reader) (int64, [sha256.Size]byte, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return n, sum, err
}

type hashResult struct {
	n   int64
	sum [sha256.Size]byte
	err error
}

func gvisorAddr(a netip.AddrPort) (tcpip.FullAddress, tcpip.NetworkProtocolNumber) {
	proto := ipv4.ProtocolNumber
	if a.Addr().Is6() {
		proto = ipv6.ProtocolNumber
	}
	return tcpip.FullAddress{Addr: tcpip.AddrFromSlice(a.Addr().AsSlice()), Port: a.Port()}, proto
}

// acceptAndHash accepts one connection on l in a goroutine of its own and
// sends on the returned channel how many bytes it read to EOF and their
// SHA-256.
func acceptAndHash(l net.Listener) <-chan hashResult {
	got := make(chan hashResult, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- hashResult{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Minute))
		var r hashResult
		r.n, r.sum, r.err = hashAll(c)
		got <- r
	}()
	return got
}

// bulkKernelToStack sends n bytes from a kernel socket in ns to a listener
// of the stack at addr and checks they arrive intact.
func bulkKernelToStack(t *testing.T, ns *roottest.NS, s *stack.Stack, addr netip.AddrPort, n int64) {
	t.Helper()
	fa, proto := gvisorAddr(addr)
	l, err := gonet.ListenTCP(s.GVisor(), fa, proto)
	if err != nil {
		t.Fatalf("ListenTCP(%v) = %v", addr, err)
	}
	defer l.Close()
	got := acceptAndHash(l)
	c := dialIn(t, ns, addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	want, err := sendRandom(c, n, uint64(addr.Port()))
	if err != nil {
		t.Fatalf("kernel -> stack %v: send: %v", addr, err)
	}
	r := <-got
	if r.err != nil || r.n != n || r.sum != want {
		t.Errorf("kernel -> stack %v: received %d bytes (err %v), sha256 %x; want %d bytes, %x", addr, r.n, r.err, r.sum, n, want)
	}
}

// bulkStackToKernel sends n bytes from the stack to a kernel listener in
// ns at addr and checks they arrive intact.
func bulkStackToKernel(t *testing.T, ns *roottest.NS, s *stack.Stack, addr netip.AddrPort, n int64) {
	t.Helper()
	var l net.Listener
	if err := netns.Do(ns.Path, func() (err error) {
		l, err = net.Listen("tcp", addr.String())
		return err
	}); err != nil {
		t.Fatalf("listen %v in namespace: %v", addr, err)
	}
	defer l.Close()
	got := acceptAndHash(l)
	fa, proto := gvisorAddr(addr)
	c, err := gonet.DialTCP(s.GVisor(), fa, proto)
	if err != nil {
		t.Fatalf("stack DialTCP(%v) = %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	want, err := sendRandom(c, n, uint64(addr.Port()))
	if err != nil {
		t.Fatalf("stack -> kernel %v: send: %v", addr, err)
	}
	r := <-got
	if r.err != nil || r.n != n || r.sum != want {
		t.Errorf("stack -> kernel %v: received %d bytes (err %v), sha256 %x; want %d bytes, %x", addr, r.n, r.err, r.sum, n, want)
	}
}

// TestBulkTCP moves 64 MiB each way over IPv4 and IPv6 through each
// driver at MTU 1500 and 65520, comparing SHA-256 at both ends.
func TestBulkTCP(t *testing.T) {
	leakcheck.Check(t)
	for _, drv := range []Driver{DriverVnet, DriverWater} {
		for _, mtu := range []int{1500, 65520} {
			t.Run(fmt.Sprintf("%s/mtu%d", drv, mtu), func(t *testing.T) {
				ns, dev, s := openPair(t, Config{Driver: drv, MTU: mtu})
				for _, a := range []netip.Addr{stackV4.Addr(), stackV6.Addr()} {
					bulkKernelToStack(t, ns, s, netip.AddrPortFrom(a, 5001), bulkSize)
				}
				for _, a := range []netip.Addr{hostV4.Addr(), hostV6.Addr()} {
					bulkStackToKernel(t, ns, s, netip.AddrPortFrom(a, 5002), bulkSize)
				}
				if ve, ok := dev.Endpoint().(*VnetEndpoint); ok {
					if m, c := ve.Malformed.Load(), ve.BadChecksum.Load(); m != 0 || c != 0 {
						t.Errorf("vnet endpoint dropped %d malformed and %d bad-checksum packets from the kernel, want 0", m, c)
					}
				}
			})
		}
	}
}

// TestVnetOffloadsActive checks that segmentation really is offloaded both
// ways at MTU 1500: the stack receives segments larger than the MTU (the
// kernel's TSO reached it unsplit), and the kernel's device counts fewer,
// larger packets written by the stack than the MTU allows (GSO on send).
func TestVnetOffloadsActive(t *testing.T) {
	leakcheck.Check(t)
	ns, dev, s := openPair(t, Config{Driver: DriverVnet, MTU: 1500})
	if _, ok := dev.Endpoint().(*VnetEndpoint); !ok {
		t.Fatalf("Endpoint() is %T, want *VnetEndpoint", dev.Endpoint())
	}
	bulkKernelToStack(t, ns, s, netip.AddrPortFrom(stackV4.Addr(), 5003), 8<<20)
	nic := s.GVisor().NICInfo()[2].Stats
	if pkts, byts := nic.Rx.Packets.Value(), nic.Rx.Bytes.Value(); pkts == 0 || byts/pkts <= 1500 {
		t.Errorf("stack NIC received %d bytes in %d packets, want an average above the 1500 MTU", byts, pkts)
	}
	bulkStackToKernel(t, ns, s, netip.AddrPortFrom(hostV4.Addr(), 5004), 8<<20)
	var st *netlink.LinkStatistics
	if err := netns.Do(ns.Path, func() error {
		l, err := netlink.LinkByName(dev.Name())
		if err == nil {
			st = l.Attrs().Statistics
		}
		return err
	}); err != nil {
		t.Fatalf("LinkByName(%s) in namespace: %v", dev.Name(), err)
	}
	if st.RxPackets == 0 || st.RxBytes/st.RxPackets <= 1500 {
		t.Errorf("kernel device received %d bytes in %d packets, want an average above the 1500 MTU", st.RxBytes, st.RxPackets)
	}
	if st := s.GVisor().Stats().IP.MalformedPacketsReceived.Value(); st != 0 {
		t.Errorf("stack counted %d malformed IP packets, want 0", st)
	}
}
