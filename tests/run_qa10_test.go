package tests

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/internal/roottest"
	"golang.org/x/sys/unix"
)

// The test binary doubles as a program run inside `ustack run`: with
// QA10_HELPER set, it does what that says and exits (init runs before
// TestMain, so no test runs in that process).
func init() {
	mode := os.Getenv("QA10_HELPER")
	if mode == "" {
		return
	}
	if err := qa10Helper(mode, os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "helper %s: %v\n", mode, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func qa10Helper(mode string, args []string) error {
	switch mode {
	case "reuse": // DST N: N connections from one local port, each read to EOF
		n, err := strconv.Atoi(args[1])
		if err != nil {
			return err
		}
		return reuseTuple(netip.MustParseAddrPort(args[0]), n)
	case "errors": // DST...: what TCP connect and a connected UDP socket get from each
		return reportErrors(args)
	case "readtwice": // DST: connect, read, say so, then report how the next read ends
		c, err := net.Dial("tcp", args[0])
		if err != nil {
			return err
		}
		defer c.Close()
		b := make([]byte, 100)
		n, err := c.Read(b)
		fmt.Printf("got %q %v\n", b[:n], err)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Read(b)
		switch {
		case errors.Is(err, io.EOF):
			fmt.Println("then EOF")
		default:
			fmt.Printf("then %s\n", errnoName(err))
		}
		return nil
	case "listen": // ADDR: accept and hold connections until killed
		ln, err := net.Listen("tcp", args[0])
		if err != nil {
			return err
		}
		fmt.Println("listening")
		var held []net.Conn
		for {
			c, err := ln.Accept()
			if err != nil {
				return err
			}
			held = append(held, c)
		}
	case "holdthen": // DST: hold one connection to DST, then report a second
		c, err := net.Dial("tcp", args[0])
		if err != nil {
			return err
		}
		defer c.Close()
		fmt.Printf("second tcp=%s\n", tcpOutcome(netip.MustParseAddrPort(args[0])))
		return nil
	case "ttl1": // DST...: what a datagram and a SYN sent with TTL 1 get
		for _, d := range args {
			ap := netip.MustParseAddrPort(d)
			fmt.Printf("%s udp=%s tcp=%s\n", d, udpTTL1(ap), tcpTTL1(ap))
		}
		return nil
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// reuseTuple connects to dst n times from local port 40123 (SO_REUSEADDR,
// as a client that picks its own port sets it), reads each connection to
// EOF and closes it, and fails when one took over half a second. A
// connect refused with EADDRNOTAVAIL (the last connection still waits
// for its final ACK) is tried again.
func reuseTuple(dst netip.AddrPort, n int) error {
	for i := 0; i < n; i++ {
		start := time.Now()
		got, err := dialFromPort(dst, 40123)
		if err != nil {
			return fmt.Errorf("connection %d: %v", i, err)
		}
		if got != "hi" {
			return fmt.Errorf("connection %d: read %q, want \"hi\"", i, got)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			return fmt.Errorf("connection %d from the port of the one before took %v; want it served at once", i, d.Round(time.Millisecond))
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// dialFromPort connects to dst from local port src and reads to EOF.
func dialFromPort(dst netip.AddrPort, src int) (string, error) {
	var family int
	var sa, local unix.Sockaddr
	if dst.Addr().Is4() {
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: int(dst.Port()), Addr: dst.Addr().As4()}
		local = &unix.SockaddrInet4{Port: src}
	} else {
		family, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: int(dst.Port()), Addr: dst.Addr().As16()}
		local = &unix.SockaddrInet6{Port: src}
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return "", err
		}
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5})
		if err := unix.Bind(fd, local); err != nil {
			unix.Close(fd)
			return "", fmt.Errorf("bind port %d: %w", src, err)
		}
		err = unix.Connect(fd, sa)
		if errors.Is(err, unix.EADDRNOTAVAIL) && time.Now().Before(deadline) {
			unix.Close(fd)
			time.Sleep(2 * time.Millisecond)
			continue
		}
		if err != nil {
			unix.Close(fd)
			return "", fmt.Errorf("connect from port %d: %w", src, err)
		}
		f := os.NewFile(uintptr(fd), "conn")
		b, err := io.ReadAll(f)
		f.Close()
		return string(b), err
	}
}

// qa10Run runs `ustack run ARGS -- CMD` (through prog: the ustack binary,
// or a program that runs it, args then starting with it) with the test
// binary as CMD in helper mode, and fails the test unless it exits 0.
func qa10Run(t *testing.T, prog string, args []string, mode string, helperArgs ...string) runResult {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("QA10_HELPER", mode)
	res := runUstack(t, prog, append(append(append([]string{}, args...), self), helperArgs...)...)
	os.Unsetenv("QA10_HELPER")
	if res.status != 0 {
		t.Fatalf("%s %s %s %s: status %d\nstdout: %s\nstderr: %s", prog, strings.Join(args, " "), mode, strings.Join(helperArgs, " "), res.status, res.stdout, res.stderr)
	}
	return res
}

// TestRunReusedTupleServedAtOnce: a command that connects again from the
// same address and port right after a connection the server closed first
// (an HTTP/1.0 server; a client with a fixed or narrow port range) must be
// served at once, as a Linux server in TIME_WAIT serves a SYN with a
// higher sequence number (RFC 1122 4.2.2.13). The relay's side of such a
// connection had closed first and sat in TIME_WAIT for a second, and
// gVisor hands a SYN that reopens a TIME_WAIT connection only to a
// listening endpoint, which the relay has none of (its forwarder takes
// connections to any address and port): each reconnection waited for the
// command's SYN retransmission, one second.
func TestRunReusedTupleServedAtOnce(t *testing.T) {
	leakcheck.Check(t)
	bin := runBinary(t)
	for _, tc := range []struct{ network, listen, gw string }{
		{"tcp4", "127.0.0.1:0", "10.0.2.2"},
		{"tcp6", "[::1]:0", "fd00::2"},
	} {
		t.Run(tc.network, func(t *testing.T) {
			ln, err := net.Listen(tc.network, tc.listen)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					c.Write([]byte("hi"))
					c.Close()
				}
			}()
			t.Cleanup(func() { ln.Close(); <-done })
			port := ln.Addr().(*net.TCPAddr).Port
			qa10Run(t, bin, []string{"run", "--allow-host-loopback", "--"}, "reuse", net.JoinHostPort(tc.gw, strconv.Itoa(port)), "5")
		})
	}
}

// qa10NoResolvConf is a shell script that runs "$@" in a mount namespace
// of its own (unshare -m) whose /etc is the host's without resolv.conf:
// a tmpfs of symlinks to the host's /etc, bind-mounted at $1 first. With
// $2 = dangling, resolv.conf is a symlink to a missing file, as
// systemd-resolved's stub is where resolved does not run. The host's
// mounts are never touched: everything is in the new mount namespace.
const qa10NoResolvConf = `set -e
orig=$1 how=$2; shift 2
mount --make-rprivate /
mount --rbind /etc "$orig"
mount -t tmpfs qa10-etc /etc
for f in "$orig"/* "$orig"/.[!.]*; do
	n=${f##*/}
	if [ "$n" != resolv.conf ] && { [ -e "$f" ] || [ -L "$f" ]; }; then ln -s "$f" "/etc/$n"; fi
done
if [ "$how" = dangling ]; then ln -s ../run/qa10-missing/stub-resolv.conf /etc/resolv.conf; fi
exec "$@"
`

// qa10WithoutResolvConf returns the argv prefix that runs a command
// where /etc/resolv.conf is missing (how = "missing") or a dangling
// symlink (how = "dangling").
func qa10WithoutResolvConf(t *testing.T, how string) []string {
	t.Helper()
	roottest.RequireCommand(t, "unshare", "mount")
	return []string{"unshare", "-m", "sh", "-c", qa10NoResolvConf, "sh", t.TempDir(), how}
}

// TestRunWithoutResolvConf: on a host with no /etc/resolv.conf, or one
// that is a symlink to a missing file (systemd-resolved's stub where
// resolved is not running, common in containers), `ustack run` failed
// before CMD ran: "bind-mount ... over /etc/resolv.conf: no such file or
// directory", status 126. Nothing needs the file to run CMD (unshare -n,
// slirp4netns and pasta do not look at it): CMD now runs, and ustack
// warns that its resolver does not know the DNS forwarder.
func TestRunWithoutResolvConf(t *testing.T) {
	leakcheck.Check(t)
	bin := runBinary(t)
	for _, how := range []string{"missing", "dangling"} {
		t.Run(how, func(t *testing.T) {
			argv := append(qa10WithoutResolvConf(t, how), bin, "run", "--", "sh", "-c", "test ! -e /etc/resolv.conf && echo ran")
			res := runUstack(t, argv[0], argv[1:]...)
			if res.status != 0 || res.stdout != "ran\n" {
				t.Fatalf("ustack run with /etc/resolv.conf %s: status %d, stdout %q, stderr %q; want 0 and CMD run", how, res.status, res.stdout, res.stderr)
			}
			if !strings.Contains(res.stderr, "warning: /etc/resolv.conf is missing") {
				t.Errorf("stderr %q does not warn about the missing /etc/resolv.conf", res.stderr)
			}
		})
	}
}

// reportErrors prints, for each destination, what a TCP connect and a
// connected UDP socket with IP_RECVERR (as ping, traceroute and
// resolvers set it) get within a second and a half: "DST tcp=X udp=Y",
// X and Y an errno name, "ok" (connected; a datagram answered) or
// "timeout". Destinations are tried at once, each on its own.
func reportErrors(dsts []string) error {
	lines := make([]string, len(dsts))
	done := make(chan struct{})
	for i, d := range dsts {
		go func() {
			ap := netip.MustParseAddrPort(d)
			lines[i] = fmt.Sprintf("%s tcp=%s udp=%s", d, tcpOutcome(ap), udpOutcome(ap))
			done <- struct{}{}
		}()
	}
	for range dsts {
		<-done
	}
	fmt.Println(strings.Join(lines, "\n"))
	return nil
}

func sockaddrOf(ap netip.AddrPort) (int, unix.Sockaddr) {
	if ap.Addr().Is4() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return unix.AF_INET6, &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

// errnoName names err for the report.
func errnoName(err error) string {
	var en unix.Errno
	if errors.As(err, &en) {
		return unix.ErrnoName(en)
	}
	return err.Error()
}

func tcpOutcome(ap netip.AddrPort) string {
	family, sa := sockaddrOf(ap)
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return errnoName(err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, sa); err != unix.EINPROGRESS {
		if err == nil {
			return "ok"
		}
		return errnoName(err)
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	if n, _ := unix.Poll(pfd, 1500); n == 0 {
		return "timeout"
	}
	if soerr, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); soerr != 0 {
		return errnoName(unix.Errno(soerr))
	}
	return "ok"
}

func udpOutcome(ap netip.AddrPort) string {
	family, sa := sockaddrOf(ap)
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return errnoName(err)
	}
	defer unix.Close(fd)
	if family == unix.AF_INET {
		unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVERR, 1)
	} else {
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1)
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1)
	if err := unix.Connect(fd, sa); err != nil {
		return errnoName(err)
	}
	if _, err := unix.Write(fd, []byte("x")); err != nil {
		return errnoName(err)
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if n, _ := unix.Poll(pfd, 1500); n == 0 {
		return "timeout"
	}
	if _, err := unix.Read(fd, make([]byte, 64)); err != nil {
		return errnoName(err)
	}
	return "ok"
}

// TestRunRouteErrorsAsBehindARouter: CMD sits behind ustack as behind a
// router, so a destination the host cannot reach must fail for CMD as it
// would behind a Linux router with the host's routes (measured with a
// forwarding namespace holding the same routes: ip_error and
// ip6_pkt_discard). A blackhole route drops in silence (CMD's connect
// times out); a prohibit route answers "administratively prohibited"
// (EHOSTUNREACH on IPv4, EACCES on IPv6); no route answers "network
// unreachable". UDP too, as a connected socket with IP_RECVERR sees it.
// ustack answered the blackhole and prohibit routes with a reset
// (ECONNREFUSED, as if the host were there with the port closed) and
// every UDP failure with port unreachable (ECONNREFUSED too).
func TestRunRouteErrorsAsBehindARouter(t *testing.T) {
	leakcheck.Check(t)
	bin := runBinary(t)
	ns := qa10RoutedNS(t)
	want := map[string]string{
		"198.51.100.1:80":     "tcp=timeout udp=timeout",
		"198.51.100.65:80":    "tcp=EHOSTUNREACH udp=EHOSTUNREACH",
		"203.0.113.1:80":      "tcp=ENETUNREACH udp=ENETUNREACH",
		"[2001:db8:13::1]:80": "tcp=timeout udp=timeout",
		"[2001:db8:14::1]:80": "tcp=EACCES udp=EACCES",
		"[2001:db8:16::1]:80": "tcp=ENETUNREACH udp=ENETUNREACH",
	}
	var dsts []string
	for d := range want {
		dsts = append(dsts, d)
	}
	res := qa10Run(t, "ip", []string{"netns", "exec", ns.Name, bin, "run", "--"}, "errors", dsts...)
	got := map[string]string{}
	for _, line := range strings.Split(res.stdout, "\n") {
		if d, outcome, ok := strings.Cut(line, " "); ok {
			got[d] = outcome
		}
	}
	for d, w := range want {
		if got[d] != w {
			t.Errorf("%s: %q; want %q, as behind a Linux router", d, got[d], w)
		}
	}
}

// qa10RoutedNS makes a namespace for ustack to run in whose routes
// refuse some destinations: blackhole 198.51.100.0/26 and
// 2001:db8:13::/64, prohibit 198.51.100.64/26 and 2001:db8:14::/64, and
// no route to anything else outside.
func qa10RoutedNS(t *testing.T) *roottest.NS {
	t.Helper()
	ns := roottest.Netns(t)
	for _, r := range [][]string{
		{"route", "add", "blackhole", "198.51.100.0/26"},
		{"route", "add", "prohibit", "198.51.100.64/26"},
		{"-6", "route", "add", "blackhole", "2001:db8:13::/64"},
		{"-6", "route", "add", "prohibit", "2001:db8:14::/64"},
	} {
		ns.Run(append([]string{"ip"}, r...)...)
	}
	return ns
}

// TestRunPingRouteErrorsAsBehindARouter: a ping the host cannot send
// (its routes refuse the destination) got no answer at all from ustack;
// behind a Linux router with the host's routes ping prints the router's
// unreachable message, and now does so from the gateway. A blackhole
// route stays silent, as there. Only an error the host really got is
// passed on; a reply is still never made up.
func TestRunPingRouteErrorsAsBehindARouter(t *testing.T) {
	leakcheck.Check(t)
	bin := runBinary(t)
	roottest.RequireCommand(t, "ping")
	ns := qa10RoutedNS(t)
	want := map[string]string{
		"198.51.100.1":   "",
		"198.51.100.65":  "From 10.0.2.2 icmp_seq=1 Packet filtered",
		"203.0.113.1":    "From 10.0.2.2 icmp_seq=1 Destination Net Unreachable",
		"2001:db8:13::1": "",
		"2001:db8:14::1": "From fd00::2 icmp_seq=1 Destination unreachable: Administratively prohibited",
		"2001:db8:16::1": "From fd00::2 icmp_seq=1 Destination unreachable: No route",
	}
	var script strings.Builder
	for d := range want {
		fmt.Fprintf(&script, "ping -n -c 1 -W 1 %s | grep -E '^From|bytes from' | sed 's/^/%s: /' &\n", d, d)
	}
	script.WriteString("wait\n")
	res := runUstack(t, "ip", "netns", "exec", ns.Name, bin, "run", "--", "sh", "-c", script.String())
	got := map[string]string{}
	for _, line := range strings.Split(res.stdout, "\n") {
		if d, msg, ok := strings.Cut(line, ": "); ok {
			got[d] = msg
		}
	}
	for d, w := range want {
		if got[d] != w {
			t.Errorf("ping %s: %q; want %q, as behind a Linux router\nstdout: %s\nstderr: %s", d, got[d], w, res.stdout, res.stderr)
		}
	}
}

// setTTL1 makes fd send with TTL (IPv6: hop limit) 1 and queue ICMP
// errors (IP_RECVERR), as traceroute does.
func setTTL1(fd int, v6 bool) {
	if v6 {
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, 1)
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1)
	} else {
		unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TTL, 1)
		unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVERR, 1)
	}
}

// udpTTL1 sends one datagram to ap with TTL 1 and reports the ICMP error
// that came back: "ERRNO/TYPE/CODE/FROM", or "timeout".
func udpTTL1(ap netip.AddrPort) string {
	family, sa := sockaddrOf(ap)
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return errnoName(err)
	}
	defer unix.Close(fd)
	setTTL1(fd, family == unix.AF_INET6)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1)
	if err := unix.Connect(fd, sa); err != nil {
		return errnoName(err)
	}
	unix.Write(fd, []byte("x"))
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if n, _ := unix.Poll(pfd, 1500); n == 0 {
		return "timeout"
	}
	oob := make([]byte, 512)
	_, oobn, _, _, err := unix.Recvmsg(fd, make([]byte, 64), oob, unix.MSG_ERRQUEUE)
	if err != nil {
		return errnoName(err)
	}
	msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
	for _, m := range msgs {
		// struct sock_extended_err, then the offender's sockaddr.
		d := m.Data
		if len(d) < 16+8 {
			continue
		}
		ee := unix.Errno(uint32(d[0]) | uint32(d[1])<<8 | uint32(d[2])<<16 | uint32(d[3])<<24)
		from := ""
		if family == unix.AF_INET {
			from = netip.AddrFrom4([4]byte(d[16+4 : 16+8])).String()
		} else if len(d) >= 16+24 {
			from = netip.AddrFrom16([16]byte(d[16+8 : 16+24])).String()
		}
		return fmt.Sprintf("%s/%d/%d/%s", unix.ErrnoName(ee), d[5], d[6], from)
	}
	return "no error queued"
}

// tcpTTL1 connects to ap with TTL 1 and reports how the connect ended.
func tcpTTL1(ap netip.AddrPort) string {
	family, sa := sockaddrOf(ap)
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return errnoName(err)
	}
	defer unix.Close(fd)
	setTTL1(fd, family == unix.AF_INET6)
	if err := unix.Connect(fd, sa); err != unix.EINPROGRESS {
		return errnoName(err)
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	if n, _ := unix.Poll(pfd, 1500); n == 0 {
		return "timeout"
	}
	if soerr, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); soerr != 0 {
		return errnoName(unix.Errno(soerr))
	}
	return "ok"
}

// TestRunTTLSpentAtGateway: a packet CMD sends with TTL 1 (traceroute's
// first probe; ping -t 1) to a destination outside was relayed, so
// traceroute found the destination itself one hop away. The gateway is a
// router hop: like a Linux router (measured: a forwarding namespace) it
// now answers ICMP time exceeded, from its own address, and relays
// nothing; a SYN with TTL 1 fails with EHOSTUNREACH as behind that
// router. Packets to the gateway's own addresses are still taken.
func TestRunTTLSpentAtGateway(t *testing.T) {
	leakcheck.Check(t)
	bin := runBinary(t)
	// In a namespace of the test's with no route out, so that nothing a
	// regression relays leaves the machine.
	ns := roottest.Netns(t)
	res := qa10Run(t, "ip", []string{"netns", "exec", ns.Name, bin, "run", "--"}, "ttl1", "198.51.100.1:33434", "[2001:db8::1]:33434", "10.0.2.2:33434")
	want := []string{
		"198.51.100.1:33434 udp=EHOSTUNREACH/11/0/10.0.2.2 tcp=EHOSTUNREACH",
		"[2001:db8::1]:33434 udp=EHOSTUNREACH/3/0/fd00::2 tcp=EHOSTUNREACH",
		// The gateway itself, not a hop further: its own refusal (no
		// --allow-host-loopback), port unreachable and a reset.
		"10.0.2.2:33434 udp=ECONNREFUSED/3/3/10.0.2.2 tcp=ECONNREFUSED",
	}
	if got := strings.Split(strings.TrimSpace(res.stdout), "\n"); !slices.Equal(got, want) {
		t.Errorf("TTL 1 from inside:\n got %q\nwant %q", got, want)
	}
}

// TestRunHostConnectionBrokenIsReset: when the relay's host connection
// breaks (aborted here with ss -K, as by a firewall or conntrack flush;
// likewise timed out or unreachable), CMD's connection was closed with a
// FIN: its read returned EOF as if the server had finished, and a
// transfer cut short read as complete. CMD now gets a reset
// (ECONNRESET), the nearest a relay can say "the connection broke".
func TestRunHostConnectionBrokenIsReset(t *testing.T) {
	leakcheck.Check(t)
	bin := runBinary(t)
	roottest.RequireCommand(t, "ss")
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serverSaw := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			serverSaw <- err
			return
		}
		defer c.Close()
		c.Write([]byte("partial"))
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err = c.Read(make([]byte, 1))
		serverSaw <- err
	}()
	t.Cleanup(func() { ln.Close() })
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("QA10_HELPER", "readtwice")
	cmd, out := runStart(t, bin, "run", "--allow-host-loopback", "--", self, "10.0.2.2:"+port)
	os.Unsetenv("QA10_HELPER")
	runEventually(t, "CMD reads the first bytes", func() error {
		if !strings.Contains(out.String(), "got \"partial\"") {
			return fmt.Errorf("output so far %q", out.String())
		}
		return nil
	})
	// Abort the relay's host socket (its destination is the server).
	if b, err := exec.Command("ss", "-K", "dst", "127.0.0.1", "dport", "=", port).CombinedOutput(); err != nil {
		t.Fatalf("ss -K: %v: %s", err, b)
	}
	if err := <-serverSaw; !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the server's read after ss -K: %v; want ECONNRESET (the host socket was not aborted: no SOCK_DESTROY in this kernel?)", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("ustack run did not end; output %q", out.String())
	}
	if !strings.Contains(out.String(), "then ECONNRESET") {
		t.Errorf("CMD's read after its relayed connection broke: output %q; want ECONNRESET, not EOF", out.String())
	}
}

// TestRunSubnetBroadcastNotRelayed: a datagram CMD broadcasts on its
// subnet (10.0.2.255, SO_BROADCAST: service discovery, DHCP-like
// probes) was relayed as if 10.0.2.255 were a unicast address out on the
// host's network (dialled there; in this namespace with no route out it
// came back network unreachable), and one with TTL 1 was answered with
// time exceeded. A router takes its subnet's broadcast as its own and
// forwards nothing, and no ICMP error ever answers a broadcast (RFC 1122
// 3.2.2). TCP to it never leaves CMD's kernel.
func TestRunSubnetBroadcastNotRelayed(t *testing.T) {
	leakcheck.Check(t)
	bin := runBinary(t)
	ns := roottest.Netns(t)
	res := qa10Run(t, "ip", []string{"netns", "exec", ns.Name, bin, "run", "--debug", "--"}, "errors", "10.0.2.255:9")
	if got, want := strings.TrimSpace(res.stdout), "10.0.2.255:9 tcp=ENETUNREACH udp=timeout"; got != want {
		t.Errorf("to the subnet broadcast: %q; want %q", got, want)
	}
	res = qa10Run(t, "ip", []string{"netns", "exec", ns.Name, bin, "run", "--debug", "--"}, "ttl1", "10.0.2.255:9")
	if got, want := strings.TrimSpace(res.stdout), "10.0.2.255:9 udp=timeout tcp=ENETUNREACH"; got != want {
		t.Errorf("to the subnet broadcast with TTL 1: %q; want %q", got, want)
	}
	if strings.Contains(res.stderr, "10.0.2.255") {
		t.Errorf("ustack logged a flow to the broadcast address: %s", res.stderr)
	}
}

// TestRunIPv4OnlyHostIPv6Unreachable: on a host without IPv6 (disabled,
// or no address of that family: the host's sockets say EADDRNOTAVAIL),
// CMD's IPv6 connections were refused (a reset, ECONNREFUSED, as if a
// server were there with its port closed) and its datagrams answered
// with port unreachable. A router without IPv6 connectivity answers "no
// route" (ENETUNREACH), which is what CMD now gets; its programs move
// to IPv4 either way.
func TestRunIPv4OnlyHostIPv6Unreachable(t *testing.T) {
	leakcheck.Check(t)
	bin := runBinary(t)
	ns := roottest.Netns(t)
	ns.Run("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	res := qa10Run(t, "ip", []string{"netns", "exec", ns.Name, bin, "run", "--"}, "errors", "[2001:db8::1]:80")
	if got, want := strings.TrimSpace(res.stdout), "[2001:db8::1]:80 tcp=ENETUNREACH udp=ENETUNREACH"; got != want {
		t.Errorf("IPv6 from inside on a host without IPv6: %q; want %q", got, want)
	}
}

// TestRunHostOutOfPortsStillRefused: EADDRNOTAVAIL from the host also
// means it ran out of ephemeral ports (one port here, held by a first
// connection); that is not "no route", and CMD's connection is still
// reset as before, not answered network unreachable.
func TestRunHostOutOfPortsStillRefused(t *testing.T) {
	leakcheck.Check(t)
	bin := runBinary(t)
	ns := roottest.Netns(t)
	ns.Run("sysctl", "-qw", "net.ipv4.ip_local_port_range=40000 40000")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	srv := ns.Command(context.Background(), "env", "QA10_HELPER=listen", self, "127.0.0.1:17380")
	out := &runOutput{}
	srv.Stdout, srv.Stderr = out, out
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	runEventually(t, "the server in the namespace listens", func() error {
		if !strings.Contains(out.String(), "listening") {
			return fmt.Errorf("output so far %q", out.String())
		}
		return nil
	})
	res := qa10Run(t, "ip", []string{"netns", "exec", ns.Name, bin, "run", "--allow-host-loopback", "--"}, "holdthen", "10.0.2.2:17380")
	if got, want := strings.TrimSpace(res.stdout), "second tcp=ECONNREFUSED"; got != want {
		t.Errorf("a connection the host has no port left for: %q; want %q", got, want)
	}
}
