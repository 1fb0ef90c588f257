//go:build linux

package sockapi

// Benchmarks for issue 3. Each one runs the host kernel (Kernel) and the
// userspace stack (New over a loopback-only stack) side by side: the two
// take turns inside one loop, so both see the same load on this shared
// machine, and the benchmark reports each side's figure and their ratio.
//
//	go test ./sockapi -run '^$' -bench 'ConnectAcceptClose|PingPong|Bulk|Gonet|IdleConnMemory|EpollWait|Poll$' -benchtime=1s
//
// ns/op is the time of one kernel operation plus one ustack operation.

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ustack/ustack/stack"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

// benchSide is one implementation's share of a benchmark loop.
type benchSide struct {
	name  string
	op    func() error
	total time.Duration
}

// interleave runs every side's op b.N times, alternating, and times each.
func interleave(b *testing.B, sides ...*benchSide) {
	b.Helper()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, s := range sides {
			t0 := time.Now()
			if err := s.op(); err != nil {
				b.Fatalf("%s: %v", s.name, err)
			}
			s.total += time.Since(t0)
		}
	}
	b.StopTimer()
}

// reportRates reports each side's operations per second under unit and
// the rate of the second side relative to the first.
func reportRates(b *testing.B, unit string, base, other *benchSide) {
	rate := func(s *benchSide) float64 { return float64(b.N) / s.total.Seconds() }
	b.ReportMetric(rate(base), base.name+"-"+unit)
	b.ReportMetric(rate(other), other.name+"-"+unit)
	b.ReportMetric(rate(other)/rate(base), other.name+"/"+base.name)
}

// reportLatency reports each side's time per operation and the ratio of
// the second to the first.
func reportLatency(b *testing.B, base, other *benchSide) {
	ns := func(s *benchSide) float64 { return float64(s.total.Nanoseconds()) / float64(b.N) }
	b.ReportMetric(ns(base), base.name+"-ns/op")
	b.ReportMetric(ns(other), other.name+"-ns/op")
	b.ReportMetric(ns(other)/ns(base), other.name+"/"+base.name)
}

// benchEnvs returns the kernel and a fresh userspace environment, and the
// userspace stack.
func benchEnvs(b *testing.B) (kernel, ustack *pollEnv, st *stack.Stack) {
	b.Helper()
	st, err := stack.New(stack.Config{})
	if err != nil {
		b.Fatalf("stack.New: %v", err)
	}
	s := New(st)
	b.Cleanup(func() {
		s.CloseAll()
		st.Close()
	})
	kernel = newBenchEnv(b, Kernel())
	ustack = newBenchEnv(b, s)
	return kernel, ustack, st
}

func newBenchEnv(b *testing.B, api pollAPI) *pollEnv {
	e := &pollEnv{t: b, api: api, fds: map[int]bool{}}
	b.Cleanup(func() {
		for fd := range e.fds {
			e.api.Close(fd)
		}
	})
	return e
}

// noDelay sets TCP_NODELAY, so that small writes go out at once.
func (e *pollEnv) noDelay(fds ...int) {
	type setter interface {
		SetsockoptInt(fd, level, opt, value int) error
	}
	for _, fd := range fds {
		e.check("TCP_NODELAY", e.api.(setter).SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1))
	}
}

func BenchmarkConnectAcceptClose(b *testing.B) {
	k, u, _ := benchEnvs(b)
	sides := []*benchSide{connectSide("kernel", k), connectSide("ustack", u)}
	interleave(b, sides...)
	reportRates(b, "conns/s", sides[0], sides[1])
}

// connectSide opens a connection to a listener, accepts it and closes
// both ends.
func connectSide(name string, e *pollEnv) *benchSide {
	ln, sa := e.listen()
	return &benchSide{name: name, op: func() error {
		c, err := e.api.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err != nil {
			return err
		}
		defer e.api.Close(c)
		if err := e.api.Connect(c, sa); err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		a, _, err := e.api.Accept(ln)
		if err != nil {
			return fmt.Errorf("accept: %w", err)
		}
		return e.api.Close(a)
	}}
}

func BenchmarkPingPong(b *testing.B) {
	k, u, _ := benchEnvs(b)
	sides := []*benchSide{pingPongSide("kernel", k), pingPongSide("ustack", u)}
	interleave(b, sides...)
	reportLatency(b, sides[0], sides[1])
}

// pingPongSide sends one byte each way over an established connection;
// one goroutine makes all four calls, so the time is the stack's own.
func pingPongSide(name string, e *pollEnv) *benchSide {
	c, s := e.pair()
	e.noDelay(c, s)
	return &benchSide{name: name, op: func() error {
		return pingPong(e.api.Write, e.api.Read, c, s)
	}}
}

func pingPong(write, read func(int, []byte) (int, error), c, s int) error {
	var buf [1]byte
	for _, hop := range [][2]int{{c, s}, {s, c}} {
		if n, err := write(hop[0], buf[:]); n != 1 || err != nil {
			return fmt.Errorf("write = %d, %v", n, err)
		}
		if n, err := read(hop[1], buf[:]); n != 1 || err != nil {
			return fmt.Errorf("read = %d, %v", n, err)
		}
	}
	return nil
}

// bulkChunk is what one bulk operation moves.
const bulkChunk = 256 << 10

func BenchmarkBulk(b *testing.B) {
	k, u, _ := benchEnvs(b)
	sides := []*benchSide{bulkSide(b, "kernel", k), bulkSide(b, "ustack", u)}
	interleave(b, sides...)
	reportRates(b, "MB/s", scaled(sides[0]), scaled(sides[1]))
}

// scaled turns a side's operation rate into MB/s for reportRates.
func scaled(s *benchSide) *benchSide {
	return &benchSide{name: s.name, total: s.total * 1e6 / bulkChunk}
}

// bulkSide writes bulkChunk bytes per operation over an established
// connection and waits until a reader goroutine has read them all.
func bulkSide(b *testing.B, name string, e *pollEnv) *benchSide {
	c, s := e.pair()
	return newBulkSide(b, name, func(p []byte) (int, error) { return e.api.Write(c, p) },
		func(p []byte) (int, error) { return e.api.Read(s, p) },
		func() {
			e.api.Close(c)
			delete(e.fds, c)
		})
}

// newBulkSide runs a reader goroutine on read until closeWriter makes it
// see EOF; each operation writes one chunk and waits for the reader.
func newBulkSide(b *testing.B, name string, write, read func([]byte) (int, error), closeWriter func()) *benchSide {
	chunks := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 64<<10)
		got := 0
		for {
			n, err := read(buf)
			if n <= 0 || err != nil {
				return
			}
			for got += n; got >= bulkChunk; got -= bulkChunk {
				chunks <- struct{}{}
			}
		}
	}()
	b.Cleanup(func() {
		closeWriter()
		wg.Wait()
	})
	chunk := make([]byte, bulkChunk)
	return &benchSide{name: name, op: func() error {
		for p := chunk; len(p) > 0; {
			n, err := write(p)
			if err != nil {
				return err
			}
			p = p[n:]
		}
		<-chunks
		return nil
	}}
}

// BenchmarkGonet measures sockapi's overhead over gVisor's own gonet
// adapter on the same stack: the same bulk transfer and ping-pong through
// both.
func BenchmarkGonet(b *testing.B) {
	b.Run("bulk", func(b *testing.B) {
		_, u, st := benchEnvs(b)
		g := gonetPair(b, st)
		sides := []*benchSide{
			newBulkSide(b, "gonet", g[0].Write, g[1].Read, func() { g[0].Close() }),
			bulkSide(b, "sockapi", u),
		}
		interleave(b, sides...)
		reportRates(b, "MB/s", scaled(sides[0]), scaled(sides[1]))
	})
	b.Run("connect", func(b *testing.B) {
		_, u, st := benchEnvs(b)
		sides := []*benchSide{gonetConnectSide(b, st), connectSide("sockapi", u)}
		interleave(b, sides...)
		reportRates(b, "conns/s", sides[0], sides[1])
	})
	b.Run("pingpong", func(b *testing.B) {
		_, u, st := benchEnvs(b)
		g := gonetPair(b, st)
		conns := map[int]*gonet.TCPConn{0: g[0], 1: g[1]}
		sides := []*benchSide{
			{name: "gonet", op: func() error {
				return pingPong(func(i int, p []byte) (int, error) { return conns[i].Write(p) },
					func(i int, p []byte) (int, error) { return conns[i].Read(p) }, 0, 1)
			}},
			pingPongSide("sockapi", u),
		}
		interleave(b, sides...)
		reportLatency(b, sides[0], sides[1])
	})
}

// gonetConnectSide is connectSide through gonet on st.
func gonetConnectSide(b *testing.B, st *stack.Stack) *benchSide {
	addr := tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4([4]byte{127, 0, 0, 1})}
	ln, err := gonet.ListenTCP(st.GVisor(), addr, ipv4.ProtocolNumber)
	if err != nil {
		b.Fatalf("gonet.ListenTCP: %v", err)
	}
	b.Cleanup(func() { ln.Close() })
	addr.Port = uint16(ln.Addr().(*net.TCPAddr).Port)
	return &benchSide{name: "gonet", op: func() error {
		c, err := gonet.DialTCP(st.GVisor(), addr, ipv4.ProtocolNumber)
		if err != nil {
			return err
		}
		defer c.Close()
		s, err := ln.Accept()
		if err != nil {
			return err
		}
		return s.Close()
	}}
}

// gonetPair returns a connected gonet client and server on st, closed
// when the benchmark ends.
func gonetPair(b *testing.B, st *stack.Stack) [2]*gonet.TCPConn {
	b.Helper()
	addr := tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4([4]byte{127, 0, 0, 1})}
	ln, err := gonet.ListenTCP(st.GVisor(), addr, ipv4.ProtocolNumber)
	if err != nil {
		b.Fatalf("gonet.ListenTCP: %v", err)
	}
	defer ln.Close()
	addr.Port = uint16(ln.Addr().(*net.TCPAddr).Port)
	c, err := gonet.DialTCP(st.GVisor(), addr, ipv4.ProtocolNumber)
	if err != nil {
		b.Fatalf("gonet.DialTCP: %v", err)
	}
	s, err := ln.Accept()
	if err != nil {
		b.Fatalf("gonet Accept: %v", err)
	}
	b.Cleanup(func() {
		c.Close()
		s.Close()
	})
	return [2]*gonet.TCPConn{c, s.(*gonet.TCPConn)}
}

// idleConns is how many idle established connections the memory
// benchmark holds open.
const idleConns = 10000

// BenchmarkIdleConnMemory holds idleConns established, idle connections
// (both ends in the measured implementation) and reports the memory each
// costs. ustack: growth of the Go heap and goroutine stacks
// (runtime.MemStats HeapAlloc+StackInuse after a GC). Kernel: growth of
// the kernel's slab caches (/proc/meminfo Slab), where sockets, inodes,
// files and dentries live; it is machine-wide, so other processes add
// noise. The kernel side holds as many connections as RLIMIT_NOFILE
// allows (two descriptors each), up to idleConns. The work is done once,
// whatever b.N.
func BenchmarkIdleConnMemory(b *testing.B) {
	k, u, _ := benchEnvs(b)
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		b.Fatal(err)
	}
	nk := min(idleConns, (int(rl.Cur)-256)/2)
	kb := measureConns(b, k, nk, slabBytes)
	ub := measureConns(b, u, idleConns, goHeapBytes)
	b.ReportMetric(float64(nk), "kernel-conns")
	b.ReportMetric(kb, "kernel-B/conn")
	b.ReportMetric(float64(idleConns), "ustack-conns")
	b.ReportMetric(ub, "ustack-B/conn")
	b.ReportMetric(ub/kb, "ustack/kernel")
}

// measureConns opens n connections on e and returns the growth of
// measure per connection; the connections stay open until the benchmark
// ends.
func measureConns(b *testing.B, e *pollEnv, n int, measure func(testing.TB) int64) float64 {
	b.Helper()
	ln, sa := e.listen()
	before := measure(b)
	for i := 0; i < n; i++ {
		c := e.socket(unix.SOCK_STREAM)
		e.check("connect", e.api.Connect(c, sa))
		s, _, err := e.api.Accept(ln)
		e.check("accept", err)
		e.fds[s] = true
	}
	time.Sleep(100 * time.Millisecond) // let delayed ACKs settle
	return float64(measure(b)-before) / float64(n)
}

// goHeapBytes is the live Go heap plus goroutine stacks, after a GC.
func goHeapBytes(testing.TB) int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc + m.StackInuse)
}

// slabBytes is the kernel's slab memory, from /proc/meminfo.
func slabBytes(tb testing.TB) int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Slab:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatal("no Slab line in /proc/meminfo")
	return 0
}

// epollSockets is how many descriptors BenchmarkEpollWait registers.
const epollSockets = 10000

// BenchmarkEpollWait registers epollSockets UDP sockets with one epoll
// instance; each operation makes one of them readable, waits for its
// event and reads the datagram. With a ready list the cost does not grow
// with the registered sockets.
func BenchmarkEpollWait(b *testing.B) {
	k, u, _ := benchEnvs(b)
	sides := []*benchSide{epollSide(b, "kernel", k), epollSide(b, "ustack", u)}
	interleave(b, sides...)
	reportLatency(b, sides[0], sides[1])
}

func epollSide(b *testing.B, name string, e *pollEnv) *benchSide {
	ep, err := e.api.EpollCreate1(0)
	e.check("epoll_create1", err)
	e.fds[ep] = true
	fds := make([]int, epollSockets)
	addrs := make([]unix.Sockaddr, epollSockets)
	for i := range fds {
		fds[i] = e.socket(unix.SOCK_DGRAM)
		e.check("bind", e.api.Bind(fds[i], loop4(0)))
		addrs[i], err = e.api.Getsockname(fds[i])
		e.check("getsockname", err)
		e.check("epoll_ctl", e.api.EpollCtl(ep, unix.EPOLL_CTL_ADD, fds[i], &unix.EpollEvent{Events: unix.EPOLLIN, Pad: int32(i)}))
	}
	tx := e.socket(unix.SOCK_DGRAM)
	evs := make([]unix.EpollEvent, 8)
	buf := make([]byte, 16)
	next := 0
	return &benchSide{name: name, op: func() error {
		i := next
		next = (next + 7919) % epollSockets
		if err := e.api.Sendto(tx, buf[:1], 0, addrs[i]); err != nil {
			return err
		}
		n, err := e.api.EpollWait(ep, evs, -1)
		if n != 1 || err != nil || evs[0].Pad != int32(i) {
			return fmt.Errorf("epoll_wait = %d, %v, %+v; want socket %d", n, err, evs[:max(n, 0)], i)
		}
		_, err = e.api.Read(fds[i], buf)
		return err
	}}
}

// pollSockets is how many descriptors BenchmarkPoll passes to each call.
const pollSockets = 100

// BenchmarkPoll polls pollSockets idle UDP sockets for POLLIN without
// waiting: the cost of one poll(2) scan.
func BenchmarkPoll(b *testing.B) {
	k, u, _ := benchEnvs(b)
	sides := []*benchSide{pollSide("kernel", k), pollSide("ustack", u)}
	interleave(b, sides...)
	reportLatency(b, sides[0], sides[1])
}

func pollSide(name string, e *pollEnv) *benchSide {
	pfds := make([]unix.PollFd, pollSockets)
	for i := range pfds {
		pfds[i] = unix.PollFd{Fd: int32(e.socket(unix.SOCK_DGRAM)), Events: unix.POLLIN}
	}
	return &benchSide{name: name, op: func() error {
		if n, err := e.api.Poll(pfds, 0); n != 0 || err != nil {
			return fmt.Errorf("poll = %d, %v; want 0 (idle)", n, err)
		}
		return nil
	}}
}
