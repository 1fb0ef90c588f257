package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"golang.org/x/sys/unix"
)

// inheritable returns the descriptor of f with close-on-exec cleared, as a
// descriptor an engine passed through exec would be.
func inheritable(t *testing.T, f *os.File) int {
	t.Helper()
	fd := int(f.Fd())
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
		t.Fatal(err)
	}
	return fd
}

// enginePipe returns an inheritable pipe, closed when the test ends.
func enginePipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	inheritable(t, r)
	inheritable(t, w)
	return r, w
}

func TestRunEngineFDFlags(t *testing.T) {
	leakcheck.Check(t)
	r, w := enginePipe(t)
	rfd, wfd := fmt.Sprint(r.Fd()), fmt.Sprint(w.Fd())
	own, err := os.Open(os.DevNull) // close-on-exec: ustack's own
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	path, err := unix.Open(os.DevNull, unix.O_PATH, 0) // inheritable: no O_CLOEXEC
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(path)
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0) // read-write, inheritable
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sp[0])
	defer unix.Close(sp[1])
	both := fmt.Sprint(sp[0])
	closed := fmt.Sprint(path + 100) // nothing open there
	checkUsageErrors(t, []usageCase{
		{[]string{"--ready-fd", "x"}, `--ready-fd "x": not a descriptor number`},
		{[]string{"--ready-fd", ""}, `--ready-fd "": not a descriptor number`},
		{[]string{"--ready-fd", "-1"}, "--ready-fd -1: not a descriptor number"},
		{[]string{"--ready-fd", "1"}, "--ready-fd 1: a standard stream"},
		{[]string{"--exit-fd", "0"}, "--exit-fd 0: a standard stream"},
		{[]string{"--ready-fd", closed}, "--ready-fd " + closed + ": not an open descriptor"},
		{[]string{"--exit-fd", closed}, "--exit-fd " + closed + ": not an open descriptor"},
		{[]string{"--ready-fd", fmt.Sprint(own.Fd())}, "not an open descriptor ustack inherited"},
		{[]string{"--ready-fd", rfd}, "--ready-fd " + rfd + ": not open for writing"},
		{[]string{"--exit-fd", wfd}, "--exit-fd " + wfd + ": not open for reading"},
		{[]string{"--exit-fd", fmt.Sprint(path)}, "O_PATH"},
		{[]string{"--ready-fd", wfd, "--exit-fd", wfd}, "not open for reading"},
		{[]string{"--ready-fd", both, "--exit-fd", both}, "--ready-fd and --exit-fd are both " + both},
	}, "--", "true")
	// Refused before anything runs: nothing was written or closed.
	rd := int(r.Fd()) // Fd makes it blocking; then make it not
	if err := unix.SetNonblock(rd, true); err != nil {
		t.Fatal(err)
	}
	if n, err := unix.Read(rd, make([]byte, 8)); err != unix.EAGAIN {
		t.Errorf("read of the ready pipe after refused runs = %d, %v; want EAGAIN (nothing written, still open)", n, err)
	}
}

func TestRunEngineFDFlagsParse(t *testing.T) {
	leakcheck.Check(t)
	r, w := enginePipe(t)
	o, err := parseRunFlags([]string{"--ready-fd", fmt.Sprint(w.Fd()), "--exit-fd", fmt.Sprint(r.Fd()), "--", "true"}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.fds.ready != int(w.Fd()) || o.fds.exit != int(r.Fd()) {
		t.Errorf("fds = %+v, want ready %d, exit %d", o.fds, w.Fd(), r.Fd())
	}
	o, err = parseRunFlags([]string{"--", "true"}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.fds != (engineFDs{}) {
		t.Errorf("parseRunFlags without the flags: fds = %+v; want none", o.fds)
	}
}

// readyPipe returns a pipe's read end and a bare descriptor for its write
// end, the only one left open: --ready-fd as ustack inherits it.
func readyPipe(t *testing.T) (*os.File, int) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	fd, err := unix.Dup(int(w.Fd()))
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	return r, fd
}

// TestRunEngineSignalReady: "1", then the descriptor is closed (the
// reader sees end of file), once; close-on-exec was set by own.
func TestRunEngineSignalReady(t *testing.T) {
	leakcheck.Check(t)
	r, fd := readyPipe(t)
	defer r.Close()
	e := engineFDs{ready: fd}
	e.own()
	if fl, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); fl&unix.FD_CLOEXEC == 0 {
		t.Errorf("own left --ready-fd %d inheritable by CMD", fd)
	}
	if err := e.signalReady(); err != nil {
		t.Fatal(err)
	}
	if err := e.signalReady(); err != nil || e.ready != 0 {
		t.Errorf("second signalReady = %v (ready %d), want a no-op", err, e.ready)
	}
	r.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got, err := io.ReadAll(r); string(got) != "1" || err != nil {
		t.Errorf("ready pipe read %q, %v; want \"1\" then end of file", got, err)
	}
}

// TestRunEngineSignalReadyClosedReader: the engine gave up reading; ustack
// says so and carries on (no SIGPIPE death).
func TestRunEngineSignalReadyClosedReader(t *testing.T) {
	leakcheck.Check(t)
	r, fd := readyPipe(t)
	r.Close()
	e := engineFDs{ready: fd}
	if err := e.signalReady(); !errors.Is(err, unix.EPIPE) || !strings.Contains(err.Error(), "--ready-fd") {
		t.Errorf("signalReady to a pipe nobody reads = %v, want an EPIPE error naming --ready-fd", err)
	}
}

func TestRunEngineExitWatch(t *testing.T) {
	leakcheck.Check(t)
	for _, tc := range []struct {
		name  string
		write string // written before the close
		close bool
	}{
		{"close", "", true},
		{"data then close", "stop? no, only EOF counts", true},
		{"still open", "data", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			fd, _ := unix.Dup(int(r.Fd()))
			r.Close()
			ew, err := watchExit(fd)
			if err != nil {
				t.Fatal(err)
			}
			defer ew.close()
			if tc.write != "" {
				w.Write([]byte(tc.write))
			}
			if tc.close {
				w.Close()
			}
			// Firing is waited for generously (a loaded CI machine may
			// take a while to schedule the watch); not firing can only be
			// sampled, briefly.
			wait := 300 * time.Millisecond
			if tc.close {
				wait = 10 * time.Second
			}
			select {
			case <-ew.EOF():
				if !tc.close {
					t.Errorf("exit watch fired with the write end still open")
				}
			case <-time.After(wait):
				if tc.close {
					t.Errorf("exit watch did not fire within %v of the write end closing", wait)
				}
			}
			ew.close()
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
				t.Errorf("--exit-fd %d still open after close: %v", fd, err)
			}
		})
	}
	ew, err := watchExit(0)
	if err != nil {
		t.Fatal(err)
	}
	ew.close()
	select {
	case <-ew.EOF():
		t.Errorf("exit watch without --exit-fd fired")
	default:
	}
}

func TestRunEngineCIDRFlags(t *testing.T) {
	leakcheck.Check(t)
	checkUsageErrors(t, []usageCase{
		{[]string{"--cidr", "10.0.3.0"}, `--cidr "10.0.3.0": not a CIDR prefix`},
		{[]string{"--cidr", "fd00::/64"}, `--cidr "fd00::/64": not an IPv4 prefix (IPv6 goes in --cidr6)`},
		{[]string{"--cidr6", "10.0.3.0/24"}, `--cidr6 "10.0.3.0/24": not an IPv6 prefix (IPv4 goes in --cidr)`},
		{[]string{"--cidr", "10.0.3.100/24"}, `--cidr "10.0.3.100/24": host bits set: the network is 10.0.3.0/24`},
		{[]string{"--cidr", "10.0.3.0/26"}, `--cidr "10.0.3.0/26": /26 is too small`},
		{[]string{"--cidr6", "fd00::/120"}, `--cidr6 "fd00::/120": /120 is too small`},
		{[]string{"--cidr", "127.0.0.0/8"}, `--cidr "127.0.0.0/8": overlaps the loopback range`},
		{[]string{"--cidr", "224.1.0.0/16"}, `--cidr "224.1.0.0/16": overlaps the multicast range`},
		{[]string{"--cidr6", "fe80::/64"}, `--cidr6 "fe80::/64": overlaps the link-local range`},
		{[]string{"--cidr6", "::ffff:10.0.2.0/120"}, `--cidr6 "::ffff:10.0.2.0/120": an IPv4-mapped`},
	}, "--", "true")
}

func TestRunEngineCIDRParse(t *testing.T) {
	leakcheck.Check(t)
	o, err := parseRunFlags([]string{"--cidr", "10.0.3.0/24", "--cidr6", "fd00:1::/64", "--", "true"}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	nw := o.network
	if nw.Guest4().String() != "10.0.3.100" || nw.Gateway4().String() != "10.0.3.2" || nw.DNS6().String() != "fd00:1::3" {
		t.Errorf("--cidr 10.0.3.0/24 --cidr6 fd00:1::/64: network %+v gives %v %v %v", nw, nw.Guest4(), nw.Gateway4(), nw.DNS6())
	}
	if rc := resolvConf("/nonexistent", nw); !strings.Contains(rc, "nameserver 10.0.3.3\nnameserver fd00:1::3\n") {
		t.Errorf("resolvConf with --cidr = %q, want the network's DNS addresses", rc)
	}
	// Shared and public ranges are accepted, as slirp4netns accepts them.
	o, err = parseRunFlags([]string{"--cidr", "100.64.0.0/24", "--cidr6", "2001:db8::/64", "--", "true"}, io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("--cidr 100.64.0.0/24 --cidr6 2001:db8::/64: %v, want accepted", err)
	}
	if nw := o.network; nw.Guest4().String() != "100.64.0.100" || nw.Guest6().String() != "2001:db8::100" {
		t.Errorf("--cidr 100.64.0.0/24 --cidr6 2001:db8::/64: guests %v %v", nw.Guest4(), nw.Guest6())
	}
	o, err = parseRunFlags([]string{"--", "true"}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.network.Guest4().String() != "10.0.2.100" || o.network.Guest6().String() != "fd00::100" {
		t.Errorf("defaults: %+v; want 10.0.2.100 and fd00::100", o.network)
	}
}

func TestRunEngineOutboundFlags(t *testing.T) {
	leakcheck.Check(t)
	checkUsageErrors(t, []usageCase{
		{[]string{"--outbound-addr", "eth0"}, `--outbound-addr "eth0": not an IP address`},
		{[]string{"--outbound-addr", "fd00::1"}, `--outbound-addr "fd00::1": not an IPv4 address`},
		{[]string{"--outbound-addr6", "192.0.2.1"}, `--outbound-addr6 "192.0.2.1": not an IPv6 address`},
		{[]string{"--outbound-addr6", "::ffff:192.0.2.1"}, `--outbound-addr6 "::ffff:192.0.2.1": not an IPv6 address`},
		{[]string{"--outbound-addr", "127.0.0.1"}, `--outbound-addr "127.0.0.1": not a unicast address that reaches other hosts`},
		{[]string{"--outbound-addr", "0.0.0.0"}, `--outbound-addr "0.0.0.0": not a unicast address`},
		{[]string{"--outbound-addr6", "ff02::1"}, `--outbound-addr6 "ff02::1": not a unicast address`},
		{[]string{"--outbound-addr6", "fe80::1%lo"}, `--outbound-addr6 "fe80::1%lo": a zone is not supported`},
		// TEST-NET-3: no host here has it.
		{[]string{"--outbound-addr", "203.0.113.77"}, `--outbound-addr "203.0.113.77": not an address of this host`},
	}, "--", "true")
}

// TestRunEngineReadyClosedOnFailure: when setting up fails, ustack closes
// --ready-fd itself without writing, so the engine reads end of file at
// once (not only when the process exits).
func TestRunEngineReadyClosedOnFailure(t *testing.T) {
	leakcheck.Check(t)
	r, fd := readyPipe(t)
	defer r.Close()
	// An attach target that vanished after the flags were checked.
	o := &runOptions{attachPath: t.TempDir() + "/gone", fds: engineFDs{ready: fd}}
	var out bytes.Buffer
	if got := runWithEngineFDs(o, &out); got != exitFailure {
		t.Errorf("runWithEngineFDs(missing namespace) = %d, want %d; output %q", got, exitFailure, out.String())
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
		unix.Close(fd)
		t.Errorf("--ready-fd %d still open after a failed run: %v", fd, err)
	}
	r.SetReadDeadline(time.Now().Add(5 * time.Second))
	if got, err := io.ReadAll(r); len(got) != 0 || err != nil {
		t.Errorf("ready pipe after a failed run read %q, %v; want end of file and nothing", got, err)
	}
}

// TestRunEngineOutboundBindError: only a missing address (EADDRNOTAVAIL)
// is the user's mistake (exit 2); another failure of the bind check is
// the host's (exit 1), and both name the flag.
func TestRunEngineOutboundBindError(t *testing.T) {
	leakcheck.Check(t)
	for _, tc := range []struct {
		errno    unix.Errno
		status   int
		contains string
	}{
		{unix.EADDRNOTAVAIL, exitUsage, `--outbound-addr "192.0.2.1": not an address of this host (binding a socket to it: bind: cannot assign requested address)`},
		{unix.EMFILE, exitFailure, `--outbound-addr "192.0.2.1": checking the address: listen udp 192.0.2.1:0: bind: too many open files`},
		{unix.ENOBUFS, exitFailure, "no buffer space"},
	} {
		// As net.ListenPacket reports a failed bind.
		lerr := &net.OpError{Op: "listen", Net: "udp", Addr: &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1)}, Err: os.NewSyscallError("bind", tc.errno)}
		err := bindCheckError("--outbound-addr", "192.0.2.1", lerr)
		if got := flagErrStatus(err); got != tc.status || !strings.Contains(err.Error(), tc.contains) {
			t.Errorf("bindCheckError(%v) = %q, status %d; want status %d and %q", tc.errno, err, got, tc.status, tc.contains)
		}
	}
	if got := flagErrStatus(errors.New("--mtu 1: want 1280..65520")); got != exitUsage {
		t.Errorf("flagErrStatus(a plain flag error) = %d, want %d", got, exitUsage)
	}
}
