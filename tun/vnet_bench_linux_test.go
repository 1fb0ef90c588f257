package tun

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/roottest"
	"github.com/ustack/ustack/netns"
	"github.com/ustack/ustack/stack"
	"github.com/vishvananda/netlink"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
)

// BenchmarkTUNBulk measures bulk TCP throughput between the kernel and a
// gVisor stack over a TUN device, per driver, MTU and direction ("in" is
// kernel -> stack, "out" is stack -> kernel), and as the reference the
// same transfer between two kernel namespaces joined by a veth pair. Each
// sub-benchmark reports Gbit/s; compare the drivers with veth of the same
// run, since the machine is shared:
//
//	go test ./tun -run '^$' -bench BenchmarkTUNBulk -benchtime 2s
//
// The reference and the drivers of one MTU and direction run back to back,
// so that they see about the same load from the machine's other users.
func BenchmarkTUNBulk(b *testing.B) {
	for _, mtu := range []int{1500, 65520} {
		for _, dir := range []string{"in", "out"} {
			for _, drv := range []string{"veth", string(DriverVnet), string(DriverWater)} {
				b.Run(fmt.Sprintf("%s/mtu%d/%s", drv, mtu, dir), func(b *testing.B) {
					var w io.WriteCloser
					var r io.Reader
					if drv == "veth" {
						w, r = vethConn(b, mtu)
					} else {
						w, r = tunConn(b, Driver(drv), mtu, dir == "in")
					}
					bulk(b, w, r)
				})
			}
		}
	}
}

const benchChunk = 1 << 20

// bulk writes b.N chunks to w while r is drained, and reports the rate at
// which the reader received them.
func bulk(b *testing.B, w io.WriteCloser, r io.Reader) {
	b.SetBytes(benchChunk)
	done := make(chan int64, 1)
	go func() {
		buf := make([]byte, 256<<10)
		var n int64
		for {
			m, err := r.Read(buf)
			n += int64(m)
			if err != nil {
				done <- n
				return
			}
		}
	}()
	chunk := make([]byte, benchChunk)
	for i := range chunk {
		chunk[i] = byte(i)
	}
	// A stall fails the benchmark instead of hanging it.
	for _, c := range []any{w, r} {
		if d, ok := c.(interface{ SetDeadline(time.Time) error }); ok {
			d.SetDeadline(time.Now().Add(2 * time.Minute))
		}
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := w.Write(chunk); err != nil {
			b.Fatalf("write: %v", err)
		}
	}
	w.Close()
	got := <-done
	elapsed := time.Since(start)
	b.StopTimer()
	if want := int64(b.N) * benchChunk; got != want {
		b.Fatalf("reader got %d bytes, want %d", got, want)
	}
	b.ReportMetric(float64(got)*8/elapsed.Seconds()/1e9, "Gbit/s")
}

// tunConn opens a TUN of the driver in a fresh namespace with a stack on
// it, connects the kernel and the stack, and returns the sending and
// receiving ends for the direction asked.
func tunConn(b *testing.B, drv Driver, mtu int, in bool) (io.WriteCloser, io.Reader) {
	ns := roottest.Netns(b)
	dev, err := Open(Config{Driver: drv, MTU: mtu, NetNS: ns.Path, Addrs: []netip.Prefix{hostV4}})
	if err != nil {
		b.Fatalf("Open = %v", err)
	}
	b.Cleanup(func() { dev.Close() })
	s, err := stack.New(stack.Config{NICs: []stack.NICConfig{{Endpoint: dev.Endpoint(), Addrs: []netip.Prefix{stackV4}}}})
	if err != nil {
		b.Fatalf("stack.New = %v", err)
	}
	b.Cleanup(s.Close)
	if in {
		fa, proto := gvisorAddr(netip.AddrPortFrom(stackV4.Addr(), 5001))
		l, err := gonet.ListenTCP(s.GVisor(), fa, proto)
		if err != nil {
			b.Fatalf("ListenTCP = %v", err)
		}
		defer l.Close()
		accepted := make(chan net.Conn, 1)
		go func() { c, _ := l.Accept(); accepted <- c }()
		var kc net.Conn
		if err := netns.Do(ns.Path, func() (err error) {
			kc, err = net.DialTimeout("tcp", netip.AddrPortFrom(stackV4.Addr(), 5001).String(), 10*time.Second)
			return err
		}); err != nil {
			b.Fatalf("dial stack: %v", err)
		}
		sc := <-accepted
		if sc == nil {
			b.Fatalf("accept failed")
		}
		b.Cleanup(func() { kc.Close(); sc.Close() })
		return halfCloser{kc.(*net.TCPConn)}, sc
	}
	kc, sc := kernelListenStackDial(b, ns.Path, s)
	return halfCloser{sc}, kc
}

func kernelListenStackDial(b *testing.B, nsPath string, s *stack.Stack) (net.Conn, *gonet.TCPConn) {
	var l net.Listener
	if err := netns.Do(nsPath, func() (err error) {
		l, err = net.Listen("tcp", netip.AddrPortFrom(hostV4.Addr(), 5002).String())
		return err
	}); err != nil {
		b.Fatalf("listen in namespace: %v", err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() { c, _ := l.Accept(); accepted <- c }()
	fa, proto := gvisorAddr(netip.AddrPortFrom(hostV4.Addr(), 5002))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sc, err := gonet.DialContextTCP(ctx, s.GVisor(), fa, proto)
	if err != nil {
		b.Fatalf("stack DialTCP = %v", err)
	}
	kc := <-accepted
	if kc == nil {
		b.Fatalf("accept failed")
	}
	b.Cleanup(func() { kc.Close(); sc.Close() })
	return kc, sc
}

// vethConn joins two fresh namespaces with a veth pair of the given MTU
// and returns a connected TCP pair across it.
func vethConn(b *testing.B, mtu int) (io.WriteCloser, io.Reader) {
	nsA, nsB := roottest.Netns(b), roottest.Netns(b)
	a, bAddr := netip.MustParsePrefix("10.98.0.1/24"), netip.MustParsePrefix("10.98.0.2/24")
	err := netns.Do(nsA.Path, func() error {
		la := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "bench0", MTU: mtu}, PeerName: "bench1"}
		if err := netlink.LinkAdd(la); err != nil {
			return err
		}
		peer, err := netlink.LinkByName("bench1")
		if err != nil {
			return err
		}
		nsBFile, err := os.Open(nsB.Path)
		if err != nil {
			return err
		}
		defer nsBFile.Close()
		if err := netlink.LinkSetNsFd(peer, int(nsBFile.Fd())); err != nil {
			return err
		}
		return addrUp("bench0", a, mtu)
	})
	if err == nil {
		err = netns.Do(nsB.Path, func() error { return addrUp("bench1", bAddr, mtu) })
	}
	if err != nil {
		b.Fatalf("veth setup: %v", err)
	}
	var l net.Listener
	if err := netns.Do(nsB.Path, func() (err error) {
		l, err = net.Listen("tcp", netip.AddrPortFrom(bAddr.Addr(), 5003).String())
		return err
	}); err != nil {
		b.Fatalf("listen: %v", err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() { c, _ := l.Accept(); accepted <- c }()
	var c net.Conn
	if err := netns.Do(nsA.Path, func() (err error) {
		c, err = net.DialTimeout("tcp", netip.AddrPortFrom(bAddr.Addr(), 5003).String(), 10*time.Second)
		return err
	}); err != nil {
		b.Fatalf("dial: %v", err)
	}
	sc := <-accepted
	if sc == nil {
		b.Fatalf("accept failed")
	}
	b.Cleanup(func() { c.Close(); sc.Close() })
	return halfCloser{c.(*net.TCPConn)}, sc
}

func addrUp(name string, p netip.Prefix, mtu int) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	addr, err := netlink.ParseAddr(p.String())
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(l, addr); err != nil {
		return err
	}
	if err := netlink.LinkSetMTU(l, mtu); err != nil {
		return err
	}
	return netlink.LinkSetUp(l)
}

// halfCloser makes Close a CloseWrite, so the reader sees EOF after the
// last byte while the connection stays open for the cleanup.
type halfCloser struct {
	c interface {
		io.Writer
		CloseWrite() error
	}
}

func (h halfCloser) Write(p []byte) (int, error) { return h.c.Write(p) }
func (h halfCloser) Close() error                { return h.c.CloseWrite() }

func (h halfCloser) SetDeadline(t time.Time) error {
	if d, ok := h.c.(interface{ SetDeadline(time.Time) error }); ok {
		return d.SetDeadline(t)
	}
	return nil
}
