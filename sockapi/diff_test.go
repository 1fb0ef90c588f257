//go:build linux

package sockapi

// Differential tests: every scenario runs against the host kernel
// (Kernel) and against the userspace stack (New over a loopback-only
// stack.New(stack.Config{})), and the two transcripts must be identical.
// The kernel run is also what validates a scenario: it must show the Linux
// behaviour its name promises (go test -run TestDiff -v -args -transcripts
// prints them).

import (
	"flag"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"golang.org/x/sys/unix"
)

var (
	showTranscripts = flag.Bool("transcripts", false, "log every differential scenario's transcripts")
	onlyScenarios   = flag.String("scenarios", "", "run only the differential scenarios whose names match this regexp")
)

// scenario is one differential test: run makes calls through r, which
// records them.
type scenario struct {
	name string
	run  func(r *rec)
	ping bool // uses ICMP echo sockets, which the kernel may refuse (see pingAllowed)
}

// impl is one implementation under comparison. open returns a fresh API
// and a function that releases it.
type impl struct {
	name string
	open func(t testing.TB) (API, func())
}

var kernelImpl = impl{name: "kernel", open: func(testing.TB) (API, func()) { return Kernel(), func() {} }}

// userspaceImpl is set by diff_userspace_test.go, which builds once
// *Sockets satisfies API; without it only the kernel side runs.
var userspaceImpl *impl

// knownDifferences are behaviours where ustack knowingly differs from
// Linux, each with its reason; docs/kernel.md lists them for the README.
// Their scenarios still run on the kernel but are not compared.
var knownDifferences = map[string]string{
	"socket/raw-icmp": "no raw sockets: the stack has no raw endpoints, so SOCK_RAW is EPERM even for root",
	"fcntl/dupfd":     "descriptors are never duplicated: F_DUPFD and F_DUPFD_CLOEXEC are EINVAL",
	"stream/urgent-data": "TCP urgent data is not supported: send(MSG_OOB) fails with EOPNOTSUPP, " +
		"the errno Linux gives for flags a socket does not support, instead of sending an urgent byte",
	"loopback/source-for-other-127-address": "gVisor picks the destination itself as the source of a " +
		"connection or datagram to a local address (stack.findLocalRouteRLocked), so 127.0.0.2 is reached " +
		"from 127.0.0.2, where Linux uses the loopback route's preferred source 127.0.0.1",
	"udp/broadcast-needs-so-broadcast": "environment, not ustack: the host's route to 255.255.255.255 " +
		"(its default route) reaches the SO_BROADCAST check, which refuses with EACCES; the test stack is " +
		"loopback-only, has no such route and answers ENETUNREACH, as Linux does in a loopback-only namespace",
	"icmp/bind-same-identifier": "gVisor registers a ping socket's echo identifier in its transport demuxer " +
		"with no sharing flags (icmp endpoint registerWithStack, ports.Flags{}), so a second ping socket " +
		"binding the same address and identifier is EADDRINUSE; Linux 6.18 lets it bind",
}

// knownUserspaceFailures are scenarios that still fail on the userspace
// implementation because of bugs not yet fixed there. They are not
// accepted differences: each is a bug to fix, and the entry goes once it
// passes (the test logs when one does).
var knownUserspaceFailures = map[string]string{
	"epoll/et-udp-second-datagram-unread": "gVisor's UDP endpoint notifies its wait queue only when a " +
		"datagram arrives on an empty receive queue (udp endpoint HandlePacket, wasEmpty; the ICMP " +
		"endpoint likewise), so an edge-triggered epoll entry hears nothing of a second datagram while " +
		"the first is unread; Linux's sock_def_readable wakes for every datagram. Not fixable from " +
		"sockapi, which learns of arrivals only through that queue",
}

func allScenarios() []scenario {
	var all []scenario
	for _, g := range [][]scenario{
		socketScenarios(), bindScenarios(), listenScenarios(), connectScenarios(),
		streamScenarios(), optionScenarios(), udpScenarios(), icmpScenarios(),
		ipv6Scenarios(), pollScenarios(), epollScenarios(), fcntlScenarios(),
		badfScenarios(), resolverScenarios(), edgeScenarios(), inProgressScenarios(), moreReadinessScenarios(), dataReadinessScenarios(), lowatScenarios(), dataPathScenarios(), moreDataPathScenarios(), corkAndSpaceScenarios(), lateScenarios(), argScenarios(), dgramScenarios(), embedScenarios(),
	} {
		all = append(all, g...)
	}
	return all
}

func TestDiffScenarioNamesUnique(t *testing.T) {
	leakcheck.Check(t)
	seen := map[string]bool{}
	for _, scn := range allScenarios() {
		if seen[scn.name] {
			t.Errorf("scenario %q is defined twice", scn.name)
		}
		seen[scn.name] = true
	}
	for name := range knownDifferences {
		if !seen[name] {
			t.Errorf("knownDifferences names %q, which is no scenario", name)
		}
	}
	for name := range knownUserspaceFailures {
		if !seen[name] {
			t.Errorf("knownUserspaceFailures names %q, which is no scenario", name)
		}
	}
	t.Logf("%d scenarios", len(seen))
}

func TestDiff(t *testing.T) {
	// pingAllowed comes before the leak check's baseline: the lock it holds
	// stays open until its cleanup, which runs after the check, and its
	// first file access may start the runtime's poller (two descriptors
	// that stay for the life of the process).
	pingOK, pingWhy := pingAllowed(t)
	leakcheck.Check(t)
	kernelV6 := hasIPv6Loopback(Kernel())
	only, err := regexp.Compile(*onlyScenarios)
	if err != nil {
		t.Fatalf("-scenarios: %v", err)
	}
	for _, scn := range allScenarios() {
		if !only.MatchString(scn.name) {
			continue
		}
		t.Run(scn.name, func(t *testing.T) {
			if scn.ping && !pingOK {
				t.Skip(pingWhy)
			}
			want := runOn(t, kernelImpl, scn)
			if !kernelV6 && mentionsV6(want) {
				t.Skip("the host kernel has no IPv6 loopback (::1), which this scenario uses")
			}
			if *showTranscripts {
				t.Logf("kernel:\n%s", strings.Join(want, "\n"))
			}
			if userspaceImpl == nil {
				return
			}
			if why, ok := knownDifferences[scn.name]; ok {
				t.Skipf("ustack knowingly differs from Linux: %s", why)
			}
			got := runOn(t, *userspaceImpl, scn)
			if *showTranscripts {
				t.Logf("ustack:\n%s", strings.Join(got, "\n"))
			}
			same := equal(want, got)
			why, known := knownUserspaceFailures[scn.name]
			switch {
			case !same && known:
				t.Logf("known userspace failure (%s):\n%s", why, sideBySide(want, got))
			case !same:
				t.Errorf("transcripts differ:\n%s", sideBySide(want, got))
			case known:
				t.Logf("passes now: remove %q from knownUserspaceFailures", scn.name)
			}
		})
	}
}

// hasIPv6Loopback reports whether api can bind ::1: containers often run
// with IPv6 disabled, and then the kernel side of every IPv6 scenario
// fails for a reason that is not the one it tests.
func hasIPv6Loopback(api API) bool {
	fd, err := api.Socket(unix.AF_INET6, unix.SOCK_DGRAM, 0)
	if err != nil {
		return false
	}
	defer api.Close(fd)
	return api.Bind(fd, v6.lo(0)) == nil
}

// mentionsV6 reports whether a transcript uses an IPv6 socket or address.
func mentionsV6(lines []string) bool {
	for _, l := range lines {
		if strings.Contains(l, "AF_INET6") || strings.Contains(l, "[") {
			return true
		}
	}
	return false
}

// runOn runs scn against a fresh instance of im, bounded by a watchdog,
// and returns the transcript.
func runOn(t *testing.T, im impl, scn scenario) []string {
	t.Helper()
	api, release := im.open(t)
	defer release()
	r := newRec(t, api)
	done := make(chan any, 1)
	go func() {
		defer func() { done <- recover() }()
		scn.run(r)
	}()
	select {
	case p := <-done:
		if p != nil {
			t.Errorf("%s: scenario panicked: %v", im.name, p)
			r.logf("PANIC: %v", p)
		}
	case <-time.After(10 * time.Second):
		// Wake the blocked call (on Linux only shutdown does), so that
		// its goroutine and descriptors do not outlive the test.
		r.shutdownAll()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		r.closeAll()
		t.Fatalf("%s: scenario hung for 10s after:\n%s", im.name, strings.Join(r.transcript(), "\n"))
	}
	r.closeAll()
	return r.transcript()
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// sideBySide prints the kernel transcript beside the userspace one,
// marking the lines that differ.
func sideBySide(kernel, user []string) string {
	w := len("kernel")
	for _, l := range kernel {
		w = max(w, len(l))
	}
	w = min(w, 90)
	var b strings.Builder
	fmt.Fprintf(&b, "   %-*s | %s\n", w, "kernel", "ustack")
	for i := 0; i < max(len(kernel), len(user)); i++ {
		var k, u string
		if i < len(kernel) {
			k = kernel[i]
		}
		if i < len(user) {
			u = user[i]
		}
		mark := "  "
		if k != u || i >= len(kernel) || i >= len(user) {
			mark = "!!"
		}
		fmt.Fprintf(&b, "%s %-*s | %s\n", mark, w, k, u)
	}
	return b.String()
}

// fam is an address family as scenarios use it.
type fam struct {
	name   string
	domain int
	lo     func(port int) unix.Sockaddr // the loopback address
	any    func(port int) unix.Sockaddr // the wildcard address
}

var (
	v4 = fam{"v4", unix.AF_INET,
		func(p int) unix.Sockaddr { return &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: p} },
		func(p int) unix.Sockaddr { return &unix.SockaddrInet4{Port: p} }}
	v6 = fam{"v6", unix.AF_INET6,
		func(p int) unix.Sockaddr { return &unix.SockaddrInet6{Addr: [16]byte{15: 1}, Port: p} },
		func(p int) unix.Sockaddr { return &unix.SockaddrInet6{Port: p} }}
	families = []fam{v4, v6}
)

func sa4(a, b, c, d byte, port int) unix.Sockaddr {
	return &unix.SockaddrInet4{Addr: [4]byte{a, b, c, d}, Port: port}
}

// mapped4 is ::ffff:127.0.0.1, the v4-mapped loopback address.
func mapped4(port int) unix.Sockaddr {
	return &unix.SockaddrInet6{Addr: [16]byte{10: 0xff, 11: 0xff, 12: 127, 15: 1}, Port: port}
}

func saPort(sa unix.Sockaddr) int {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return a.Port
	case *unix.SockaddrInet6:
		return a.Port
	}
	return 0
}

// unusedPort finds, unlogged, a loopback port that nothing of typ is
// bound to on this API: it binds port 0 and closes the socket again.
func (r *rec) unusedPort(f fam, typ int) int {
	fd, err := r.api.Socket(f.domain, typ, 0)
	if err != nil {
		r.t.Errorf("unusedPort: socket: %v", err)
		return 0
	}
	defer r.api.Close(fd)
	if err := r.api.Bind(fd, f.lo(0)); err != nil {
		r.t.Errorf("unusedPort: bind: %v", err)
		return 0
	}
	sa, err := r.api.Getsockname(fd)
	if err != nil {
		r.t.Errorf("unusedPort: getsockname: %v", err)
		return 0
	}
	return saPort(sa)
}

// unusedPortBoth finds, unlogged, a port of typ that is free on both
// ::1 and 127.0.0.1. A port the kernel picks for ::1 can be held on
// 127.0.0.1 by another process on the host (the kernel checks only the
// address it binds), which made kernel transcripts fail with EADDRINUSE
// now and then; on the userspace stack nothing else holds ports.
func (r *rec) unusedPortBoth(typ int) int {
	for try := 0; try < 20; try++ {
		port := r.unusedPort(v6, typ)
		if port == 0 {
			return 0
		}
		fd, err := r.api.Socket(unix.AF_INET, typ, 0)
		if err != nil {
			r.t.Errorf("unusedPortBoth: socket: %v", err)
			return 0
		}
		err = r.api.Bind(fd, v4.lo(port))
		r.api.Close(fd)
		if err == nil {
			return port
		}
	}
	r.t.Errorf("unusedPortBoth: no port free on both loopbacks in 20 tries")
	return 0
}

// listener opens a TCP listener on f's loopback address with an
// ephemeral port and returns it and its address.
func (r *rec) listener(f fam) (int, unix.Sockaddr) {
	ln := r.Socket(f.domain, unix.SOCK_STREAM, 0)
	r.Bind(ln, f.lo(0))
	r.Listen(ln, 16)
	return ln, r.Getsockname(ln)
}

// fullListener opens a listener with backlog 0 and fills its accept
// queue: Linux queues backlog+1 connections (sk_acceptq_is_full), so one
// connection fills it and the SYN of the next is dropped. The first
// connect is non-blocking so that a stack which queues none shows it as a
// failed wait instead of hanging.
func (r *rec) fullListener() (int, unix.Sockaddr) {
	ln := r.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	r.Bind(ln, v4.lo(0))
	r.Listen(ln, 0)
	addr := r.Getsockname(ln)
	a := r.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	r.Connect(a, addr)
	r.waitFor(a, unix.POLLOUT)
	r.waitFor(ln, unix.POLLIN)
	return ln, addr
}

// pair opens a listener and a connected client and accepted socket.
func (r *rec) pair(f fam) (ln, c, s int) {
	ln, addr := r.listener(f)
	c = r.Socket(f.domain, unix.SOCK_STREAM, 0)
	r.Connect(c, addr)
	s = r.Accept(ln)
	return ln, c, s
}

// udp opens a UDP socket bound to f's loopback address.
func (r *rec) udp(f fam) (int, unix.Sockaddr) {
	fd := r.Socket(f.domain, unix.SOCK_DGRAM, 0)
	r.Bind(fd, f.lo(0))
	return fd, r.Getsockname(fd)
}

// readAll reads fd until EOF or an error, unlogged, and logs the total
// and a checksum, since how the bytes were split is not specified.
func (r *rec) readAll(fd int) []byte {
	var all []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := r.api.Read(fd, buf)
		if n > 0 {
			all = append(all, buf[:n]...)
		}
		if err != nil || n == 0 {
			r.logf("readAll(%s) = %s %s", r.fd(fd), data(all), errs(err))
			return all
		}
	}
}

// both returns one scenario per family, named prefix/v4 and prefix/v6.
func both(prefix string, f func(r *rec, f fam)) []scenario {
	var out []scenario
	for _, fm := range families {
		fm := fm
		out = append(out, scenario{name: prefix + "/" + fm.name, run: func(r *rec) { f(r, fm) }})
	}
	return out
}

func sc(name string, run func(r *rec)) scenario { return scenario{name: name, run: run} }
