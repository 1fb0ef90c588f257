//go:build linux

package sockapi

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/stack"
	"golang.org/x/sys/unix"
)

// FuzzCalls decodes random bytes into a sequence of socket calls on the
// userspace implementation and checks that it never panics, never
// deadlocks (a watchdog bounds every sequence) and leaves no goroutine
// and no descriptor behind once Sockets.CloseAll and Stack.Close have run.
//
// The program's own calls never block for long: every socket it makes is
// non-blocking and stays so (F_SETFL always keeps O_NONBLOCK, SetNonblock
// is only ever turned on), receive calls add MSG_DONTWAIT, SO_LINGER is
// only ever zero, and poll, select and epoll_wait wait a few milliseconds
// at most. Blocking is exercised apart: some steps start a goroutine
// blocked in Recvfrom or Accept on a blocking socket of its own, which a
// later step may feed, or close under it; Close must wake it with EBADF,
// and CloseAll must wake whatever is still blocked at the end.
//
//	go test ./sockapi -run '^$' -fuzz FuzzCalls -fuzztime 60s
func FuzzCalls(f *testing.F) {
	for _, seed := range fuzzSeeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, prog []byte) {
		leakcheck.Check(t)
		st, err := stack.New(stack.Config{})
		if err != nil {
			t.Fatalf("stack.New: %v", err)
		}
		s := New(st)
		z := newFuzzer(s, prog)
		done := make(chan any, 1)
		go func() {
			defer func() { done <- recover() }()
			z.run()
		}()
		select {
		case p := <-done:
			if p != nil {
				t.Fatalf("panic: %v\nprogram %x", p, prog)
			}
		case <-time.After(10 * time.Second):
			buf := make([]byte, 1<<20)
			t.Fatalf("deadlock: program %x still running after 10s\n%s", prog, buf[:runtime.Stack(buf, true)])
		}
		if err := s.CloseAll(); err != nil {
			t.Logf("CloseAll: %v", err)
		}
		z.waitBlocked(t, prog)
		if n := openDescriptors(s); n != 0 {
			t.Errorf("%d descriptors still open after CloseAll", n)
		}
		st.Close()
	})
}

// openDescriptors counts the descriptors open in s's table.
func openDescriptors(s *Sockets) int {
	s.fds.mu.Lock()
	defer s.fds.mu.Unlock()
	n := 0
	for _, e := range s.fds.entries {
		if e != nil {
			n++
		}
	}
	return n
}

// fuzzer turns bytes into calls. Each call consumes an opcode byte and
// its arguments' bytes; running out of bytes reads zeros and ends the
// program.
type fuzzer struct {
	s     *Sockets
	prog  []byte
	fds   []int           // descriptors handed out so far (some closed)
	addrs []unix.Sockaddr // addresses seen: bound, peers, fixed ones
	buf   []byte

	// blockers are open blocking sockets, each with a goroutine blocked
	// in a call on it; only blocked-call steps touch them.
	blockers []int
	blocked  sync.WaitGroup
	badWake  chan string // calls that returned what they must not
}

func newFuzzer(s *Sockets, prog []byte) *fuzzer {
	return &fuzzer{s: s, prog: prog, buf: make([]byte, 4096), badWake: make(chan string, 64),
		addrs: []unix.Sockaddr{v4.lo(0), v6.lo(0), v4.any(0), v6.any(0), mapped4(0),
			sa4(10, 1, 2, 3, 80), v4.lo(9), &unix.SockaddrUnix{Name: "x"}}}
}

func (z *fuzzer) byte() byte {
	if len(z.prog) == 0 {
		return 0
	}
	b := z.prog[0]
	z.prog = z.prog[1:]
	return b
}

func (z *fuzzer) pick(n int) int { return int(z.byte()) % n }

// fd picks a descriptor handed out before, or now and then a number
// that never was one; never a blocker's, whose blocking the program's own
// calls must not share.
func (z *fuzzer) fd() int {
	b := int(z.byte())
	fd := 0
	if len(z.fds) == 0 || b >= 250 {
		fd = []int{-1, 0, 3, 100, 1 << 20, 7, 2}[b%7]
	} else {
		fd = z.fds[b%len(z.fds)]
	}
	if slices.Contains(z.blockers, fd) {
		return -1
	}
	return fd
}

func (z *fuzzer) addr() unix.Sockaddr { return z.addrs[z.pick(len(z.addrs))] }

func (z *fuzzer) size() int { return int(z.byte()) * 16 }

func (z *fuzzer) note(fd int, err error) {
	if err == nil {
		z.fds = append(z.fds, fd)
	}
}

func (z *fuzzer) noteAddr(sa unix.Sockaddr, err error) {
	if err == nil && sa != nil && len(z.addrs) < 64 {
		z.addrs = append(z.addrs, sa)
	}
}

var (
	fuzzLevels = []int{unix.SOL_SOCKET, unix.IPPROTO_TCP, unix.IPPROTO_IP, unix.IPPROTO_IPV6, unix.IPPROTO_UDP, 9999}
	fuzzOpts   = []int{unix.SO_REUSEADDR, unix.SO_REUSEPORT, unix.SO_KEEPALIVE, unix.SO_RCVBUF, unix.SO_SNDBUF,
		unix.SO_TYPE, unix.SO_ERROR, unix.SO_BROADCAST, unix.SO_LINGER, unix.SO_ACCEPTCONN, unix.TCP_NODELAY,
		unix.TCP_KEEPIDLE, unix.TCP_KEEPINTVL, unix.TCP_KEEPCNT, unix.TCP_MAXSEG, unix.TCP_USER_TIMEOUT,
		unix.IP_TTL, unix.IP_TOS, unix.IPV6_V6ONLY, unix.IPV6_UNICAST_HOPS, unix.SO_RCVTIMEO, 9999}
	fuzzValues = []int{0, 1, -1, 2, 64, 255, 256, 1 << 16, 1 << 30, -1 << 31}
	fuzzMsg    = []int{0, unix.MSG_PEEK, unix.MSG_TRUNC, unix.MSG_WAITALL, unix.MSG_OOB, unix.MSG_MORE, 0x40000000}
)

func (z *fuzzer) msgFlags() int {
	return fuzzMsg[z.pick(len(fuzzMsg))] | fuzzMsg[z.pick(len(fuzzMsg))] | unix.MSG_DONTWAIT
}

func (z *fuzzer) run() {
	for len(z.prog) > 0 {
		z.step()
	}
}

// step makes one call; results are ignored, only the implementation's
// survival and cleanup are checked.
func (z *fuzzer) step() {
	s := z.s
	switch z.pick(28) {
	case 0:
		dom := []int{unix.AF_INET, unix.AF_INET6, unix.AF_UNIX, 12345}[z.pick(4)]
		typ := []int{unix.SOCK_STREAM, unix.SOCK_DGRAM, unix.SOCK_RAW, 99}[z.pick(4)]
		proto := []int{0, unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6}[z.pick(5)]
		z.note(s.Socket(dom, typ|unix.SOCK_NONBLOCK, proto))
	case 1:
		s.Bind(z.fd(), z.addr())
	case 2:
		s.Listen(z.fd(), int(int8(z.byte())))
	case 3:
		fd, sa, err := s.Accept4(z.fd(), unix.SOCK_NONBLOCK|[]int{0, unix.SOCK_CLOEXEC, 1}[z.pick(3)])
		z.note(fd, err)
		z.noteAddr(sa, err)
	case 4:
		s.Connect(z.fd(), z.addr())
	case 5:
		s.Write(z.fd(), z.buf[:z.size()])
	case 6:
		s.Send(z.fd(), z.buf[:z.size()], z.msgFlags())
	case 7:
		s.Recv(z.fd(), z.buf[:z.size()], z.msgFlags())
	case 8:
		s.Sendto(z.fd(), z.buf[:z.size()], z.msgFlags(), z.addr())
	case 9:
		_, sa, err := s.Recvfrom(z.fd(), z.buf[:z.size()], z.msgFlags())
		z.noteAddr(sa, err)
	case 10:
		s.Shutdown(z.fd(), z.pick(4))
	case 11:
		s.Close(z.fd())
	case 12:
		z.noteAddr(s.Getsockname(z.fd()))
	case 13:
		z.noteAddr(s.Getpeername(z.fd()))
	case 14:
		s.SetsockoptInt(z.fd(), fuzzLevels[z.pick(len(fuzzLevels))], fuzzOpts[z.pick(len(fuzzOpts))], fuzzValues[z.pick(len(fuzzValues))])
	case 15:
		s.GetsockoptInt(z.fd(), fuzzLevels[z.pick(len(fuzzLevels))], fuzzOpts[z.pick(len(fuzzOpts))])
	case 16:
		s.SetsockoptLinger(z.fd(), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: int32(z.pick(2))})
	case 17:
		tv := unix.Timeval{Usec: int64(z.byte()) * 100}
		s.SetsockoptTimeval(z.fd(), unix.SOL_SOCKET, []int{unix.SO_RCVTIMEO, unix.SO_SNDTIMEO, 9999}[z.pick(3)], &tv)
	case 18:
		cmd := []int{unix.F_GETFL, unix.F_SETFL, unix.F_GETFD, unix.F_SETFD, 9999}[z.pick(5)]
		s.Fcntl(z.fd(), cmd, int(z.byte())|unix.O_NONBLOCK)
	case 19:
		s.SetNonblock(z.fd(), true)
	case 20:
		pfds := make([]unix.PollFd, z.pick(4))
		for i := range pfds {
			pfds[i] = unix.PollFd{Fd: int32(z.fd()), Events: int16(z.byte()) | int16(z.byte())<<8}
		}
		s.Poll(pfds, z.pick(4))
	case 21:
		var r, w unix.FdSet
		for i := z.pick(4); i > 0; i-- {
			if fd := z.fd(); fd >= 0 && fd < 1024 {
				r.Set(fd)
				w.Set(fd)
			}
		}
		tv := unix.Timeval{Usec: int64(z.pick(4)) * 1000}
		s.Select(z.pick(66)-1, &r, &w, nil, &tv)
	case 22:
		z.note(s.EpollCreate1([]int{0, unix.EPOLL_CLOEXEC, 1}[z.pick(3)]))
	case 23:
		ev := unix.EpollEvent{Events: uint32(z.byte()) | uint32(z.byte())<<24, Fd: 1}
		s.EpollCtl(z.fd(), z.pick(4), z.fd(), &ev)
	case 24:
		evs := make([]unix.EpollEvent, z.pick(5))
		s.EpollWait(z.fd(), evs, z.pick(4))
	case 25:
		s.Read(z.fd(), z.buf[:z.size()])
	case 26:
		z.startBlocked(z.pick(3))
	case 27:
		if len(z.blockers) > 0 {
			i := z.pick(len(z.blockers))
			s.Close(z.blockers[i])
			z.blockers = slices.Delete(z.blockers, i, i+1)
		}
	}
}

// startBlocked leaves a goroutine blocked in a call on a blocking socket
// of its own (a blocker), one of three kinds: Recvfrom on a UDP socket or
// Accept on a listener, whose address the program learns (its sends and
// connects may wake them), or Read on a TCP connection whose other end
// joins the program's descriptors (its writes, shutdowns and closes may
// wake it).
func (z *fuzzer) startBlocked(kind int) {
	switch kind {
	case 0:
		if fd, ok := z.blocker(unix.SOCK_DGRAM, true); ok {
			z.noteAddr(z.s.Getsockname(fd))
			z.waitIn("recvfrom", fd, func() error { _, _, err := z.s.Recvfrom(fd, make([]byte, 64), 0); return err })
		}
	case 1:
		if fd, ok := z.blocker(unix.SOCK_STREAM, true); ok && z.s.Listen(fd, 4) == nil {
			z.noteAddr(z.s.Getsockname(fd))
			z.waitIn("accept", fd, func() error {
				// Non-blocking, so that the program's calls, which may
				// stumble on its number, never block on it. Closed here,
				// not left to CloseAll: an Accept past its wait when
				// CloseAll runs installs its descriptor after it, as
				// accept(2) racing close_range(2) would.
				nfd, _, err := z.s.Accept4(fd, unix.SOCK_NONBLOCK)
				if err == nil {
					z.s.Close(nfd)
				}
				return err
			})
		}
	case 2:
		if fd, ok := z.connectedBlocker(); ok {
			z.waitIn("read", fd, func() error {
				_, err := z.s.Read(fd, make([]byte, 64))
				if err == unix.ECONNRESET { // the program reset the other end
					err = nil
				}
				return err
			})
		}
	}
}

// blocker opens a blocking socket of typ as a blocker, bound to loopback
// if bind is set.
func (z *fuzzer) blocker(typ int, bind bool) (int, bool) {
	fd, err := z.s.Socket(unix.AF_INET, typ, 0)
	if err != nil {
		return -1, false
	}
	z.blockers = append(z.blockers, fd)
	// The number may have been the program's before; it is not now.
	z.fds = slices.DeleteFunc(z.fds, func(n int) bool { return n == fd })
	return fd, !bind || z.s.Bind(fd, v4.lo(0)) == nil
}

// connectedBlocker connects a blocking blocker to a non-blocking socket it
// hands to the program, waiting at most a second for each step.
func (z *fuzzer) connectedBlocker() (int, bool) {
	ln, err := z.s.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return -1, false
	}
	defer z.s.Close(ln)
	if z.s.Bind(ln, v4.lo(0)) != nil || z.s.Listen(ln, 1) != nil {
		return -1, false
	}
	addr, err := z.s.Getsockname(ln)
	if err != nil {
		return -1, false
	}
	c, ok := z.blocker(unix.SOCK_STREAM, false)
	if !ok || z.s.SetNonblock(c, true) != nil {
		return -1, false
	}
	if err := z.s.Connect(c, addr); err != nil && err != unix.EINPROGRESS {
		return -1, false
	}
	z.s.Poll([]unix.PollFd{{Fd: int32(ln), Events: unix.POLLIN}}, 1000)
	srv, _, err := z.s.Accept4(ln, unix.SOCK_NONBLOCK)
	if err != nil || z.s.SetNonblock(c, false) != nil {
		return -1, false
	}
	z.fds = append(z.fds, srv)
	return c, true
}

// waitIn runs call, a blocking call on fd, in a goroutine that the end of
// the program waits for; call must end with data (nil) or, once fd is
// closed, EBADF.
//
// waitIn returns only once the call is under way: waiting on fd's socket,
// or finished. Until the call has looked its descriptor up, the number
// names whatever socket holds it when the lookup happens; had the program
// closed fd by then and a new socket taken the number (lowest free first),
// the call would act on that socket, on Linux as here (close(2): a call
// another thread has not yet entered is not one "in progress"). That is
// the calling program's race, not the stack's, and would make the check
// above report the new socket's errno (recvfrom on a listener: ENOTCONN).
// What the fuzzer means by a blocked call is one already blocked when the
// program closes its descriptor, so it waits for that.
func (z *fuzzer) waitIn(name string, fd int, call func() error) {
	// fd can be closed already: a blocked accept closes the descriptor it
	// accepted, which may be a number the program had closed and the new
	// blocker took. The call then returns EBADF, and there is no wait.
	_, sk, lookupErr := z.s.sock(fd)
	done := make(chan struct{})
	z.blocked.Add(1)
	go func() {
		defer z.blocked.Done()
		defer close(done)
		if err := call(); err != nil && err != unix.EBADF {
			z.badWake <- name + ":" + errs(err)
		}
	}()
	// Only the call registers on a blocker's queue (the program's calls
	// never take a blocker's number), and block() registers after the
	// lookup, so a registered waiter means the call is waiting on fd.
	if lookupErr != nil {
		return
	}
	tick := time.NewTicker(20 * time.Microsecond)
	defer tick.Stop()
	for sk.wq.Events() == 0 {
		select {
		case <-done:
			return
		case <-tick.C:
		}
	}
}

// waitBlocked checks, after CloseAll, that every blocked call has woken.
func (z *fuzzer) waitBlocked(t *testing.T, prog []byte) {
	woke := make(chan struct{})
	go func() {
		z.blocked.Wait()
		close(woke)
	}()
	select {
	case <-woke:
	case <-time.After(10 * time.Second):
		buf := make([]byte, 1<<20)
		t.Fatalf("CloseAll left calls blocked for 10s: program %x\n%s", prog, buf[:runtime.Stack(buf, true)])
	}
	close(z.badWake)
	for sig := range z.badWake {
		call, errno, _ := strings.Cut(sig, ":")
		msg := fmt.Sprintf("a blocked %s woken by Close returned %s, want data or EBADF", call, errno)
		if why, ok := knownFuzzFailures[call]; ok {
			t.Logf("known userspace failure (%s): %s", why, msg)
			continue
		}
		t.Errorf("%s: program %x", msg, prog)
	}
}

// knownFuzzFailures are wrong results FuzzCalls still finds in the
// userspace implementation, keyed by the blocked call, with their cause.
// Like knownUserspaceFailures they are bugs to fix, not accepted
// behaviour.
var knownFuzzFailures = map[string]string{}

// fuzzSeeds are programs written out by hand (see prog) so that the
// fuzzer starts from sequences that reach deep states: a TCP connection
// with data both ways and a reset, UDP traffic, epoll over sockets.
var fuzzSeeds = [][]byte{
	// TCP: listener, client connect, accept, data, shutdown, linger-0 close.
	prog("socket v4 stream", "bind fd0 lo4", "listen fd0 8", "getsockname fd0",
		"socket v4 stream", "connect fd1 addr8", "poll fd1", "accept fd0",
		"write fd1 32", "poll fd2", "recv fd2 64 peek", "read fd2 64",
		"shutdown fd1 wr", "read fd2 64", "linger fd2", "close fd2", "recv fd1 16 0", "close fd0"),
	// UDP both families, connected UDP to a closed port.
	prog("socket v4 dgram", "bind fd0 lo4", "getsockname fd0", "socket v4 dgram",
		"sendto fd1 16 addr8", "recvfrom fd0 8 trunc", "connect fd1 port9", "send fd1 8",
		"poll fd1", "recv fd1 8 0", "socket v6 dgram", "sendto fd2 16 addr8", "close fd1"),
	// epoll over a listener and a socket, then close under it.
	prog("epoll", "socket v4 stream", "bind fd1 lo4", "listen fd1 1", "getsockname fd1",
		"epollctl fd0 add fd1", "socket v4 stream", "connect fd2 addr8", "epollwait fd0",
		"accept fd1", "epollctl fd0 add fd3", "close fd1", "epollwait fd0", "close fd0"),
	// Options and misuse on every kind of descriptor.
	prog("socket v6 stream", "setopt fd0", "getopt fd0", "fcntl fd0", "select fd0",
		"socket v4 icmp", "sendto fd1 16 lo4", "recvfrom fd1 8 trunc", "shutdown fd1 rdwr",
		"close fd1", "close fd1", "read fd1 4"),
	// Blocked calls: a UDP receiver fed by a send, one closed under its
	// Recvfrom, a listener left blocked in Accept for CloseAll.
	prog("block udp", "socket v4 dgram", "sendto fd0 16 addr8", "block udp", "unblock 1",
		"block tcp", "socket v4 stream", "connect fd1 addr10"),
	// A Read blocked on a connection: fed, then its other end closed.
	prog("block conn", "write fd0 32", "block conn", "close fd1", "unblock 0"),
}

// prog encodes readable steps into the fuzzer's bytes; it knows only the
// handful of forms the seeds use.
func prog(steps ...string) []byte {
	var out []byte
	fdArg := func(s string) byte {
		var n int
		fmt.Sscanf(s, "fd%d", &n)
		return byte(n)
	}
	for _, st := range steps {
		w := strings.Fields(st)
		switch w[0] {
		case "socket":
			dom := map[string]byte{"v4": 0, "v6": 1}[w[1]]
			typ, proto := map[string]byte{"stream": 0, "dgram": 1, "icmp": 1}[w[2]], byte(0)
			if w[2] == "icmp" {
				proto = 3
			}
			out = append(out, 0, dom, typ, proto)
		case "bind":
			out = append(out, 1, fdArg(w[1]), 0)
		case "listen":
			out = append(out, 2, fdArg(w[1]), 8)
		case "accept":
			out = append(out, 3, fdArg(w[1]), 0)
		case "connect":
			out = append(out, 4, fdArg(w[1]), map[string]byte{"addr8": 8, "addr10": 10, "port9": 6}[w[2]])
		case "write":
			out = append(out, 5, fdArg(w[1]), 2)
		case "send":
			out = append(out, 6, fdArg(w[1]), 1, 0, 0)
		case "recv":
			out = append(out, 7, fdArg(w[1]), 4, map[string]byte{"peek": 1, "0": 0}[w[3]], 0)
		case "sendto":
			out = append(out, 8, fdArg(w[1]), 1, 0, 0, map[string]byte{"addr8": 8, "lo4": 0}[w[3]])
		case "recvfrom":
			out = append(out, 9, fdArg(w[1]), 1, 2, 0)
		case "shutdown":
			out = append(out, 10, fdArg(w[1]), map[string]byte{"rd": 0, "wr": 1, "rdwr": 2}[w[2]])
		case "close":
			out = append(out, 11, fdArg(w[1]))
		case "getsockname":
			out = append(out, 12, fdArg(w[1]))
		case "setopt":
			out = append(out, 14, fdArg(w[1]), 1, 10, 1)
		case "getopt":
			out = append(out, 15, fdArg(w[1]), 1, 10)
		case "linger":
			out = append(out, 16, fdArg(w[1]), 1)
		case "fcntl":
			out = append(out, 18, 0, fdArg(w[1]), 0)
		case "poll":
			out = append(out, 20, 1, fdArg(w[1]), 0xff, 0x20, 2)
		case "select":
			out = append(out, 21, 1, fdArg(w[1]), 1, 20)
		case "epoll":
			out = append(out, 22, 0)
		case "epollctl":
			out = append(out, 23, 0xff, 0x20, fdArg(w[1]), 1, fdArg(w[3]))
		case "epollwait":
			out = append(out, 24, fdArg(w[1]), 4, 3)
		case "read":
			out = append(out, 25, fdArg(w[1]), 1)
		case "block":
			out = append(out, 26, map[string]byte{"udp": 0, "tcp": 1, "conn": 2}[w[1]])
		case "unblock":
			var n byte
			fmt.Sscan(w[1], &n)
			out = append(out, 27, n)
		default:
			panic("prog: unknown step " + st)
		}
	}
	return out
}
