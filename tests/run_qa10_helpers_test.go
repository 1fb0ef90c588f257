package tests

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/roottest"
	"golang.org/x/sys/unix"
)

// The test binary doubles as a program run inside `ustack run`: with
// QA10_HELPER set, it does what that says and exits (runAsHelper).
func init() { runAsHelper("QA10_HELPER", qa10Helper) }

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
		fmt.Printf("second tcp=%s\n", tcpOutcome(netip.MustParseAddrPort(args[0]), nil))
		return nil
	case "ttl1": // DST...: what a datagram and a SYN sent with TTL 1 get
		for _, d := range args {
			ap := netip.MustParseAddrPort(d)
			fmt.Printf("%s udp=%s tcp=%s\n", d, udpTTL1(ap), tcpOutcome(ap, setTTL1))
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
		if d := time.Since(start); d > 900*time.Millisecond { // beats the 1 s SYN retransmission
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
			lines[i] = fmt.Sprintf("%s tcp=%s udp=%s", d, tcpOutcome(ap, nil), udpOutcome(ap))
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

// tcpOutcome connects to ap and reports how the connect ended: "ok", an
// errno name, or "timeout" after 1.5 s. setup, if not nil, sets socket
// options first.
func tcpOutcome(ap netip.AddrPort, setup func(fd int, v6 bool)) string {
	family, sa := sockaddrOf(ap)
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return errnoName(err)
	}
	defer unix.Close(fd)
	if setup != nil {
		setup(fd, family == unix.AF_INET6)
	}
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
