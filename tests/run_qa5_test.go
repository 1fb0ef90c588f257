package tests

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/roottest"
	"golang.org/x/sys/unix"
)

// The test binary doubles as a hostile command run inside `ustack run`:
// with QA5_HELPER set, it does what that says and exits (runAsHelper).
func init() { runAsHelper("QA5_HELPER", qa5Helper) }

func qa5Helper(mode string, args []string) error {
	switch mode {
	case "spoofsyn": // SRC DST: one TCP SYN with a source nobody owns
		return sendRawSYN(netip.MustParseAddrPort(args[0]), netip.MustParseAddrPort(args[1]))
	case "malformed": // DST: a TCP SYN with a bad checksum, a UDP datagram with a bad length
		dst := netip.MustParseAddr(args[0])
		src := netip.MustParseAddr("10.0.2.100")
		if err := sendRawTCP(netip.AddrPortFrom(src, 40000), netip.AddrPortFrom(dst, 80), 0x02, true); err != nil {
			return err
		}
		return sendRawUDPBadLength(netip.AddrPortFrom(src, 40001), netip.AddrPortFrom(dst, 9))
	case "martian": // DST: an IPv4 header from 127.0.0.1, which gVisor logs as it drops
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		d4 := netip.MustParseAddr(args[0]).As4()
		b := []byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, unix.IPPROTO_UDP, 0, 0, 127, 0, 0, 1}
		b = append(b, d4[:]...)
		return unix.Sendto(fd, b, 0, &unix.SockaddrInet4{Addr: d4})
	case "control": // PATH REQUEST: one control request, the answer on stdout
		c, err := net.Dial("unix", args[0])
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintln(c, args[1])
		line, err := bufio.NewReader(c).ReadString('\n')
		fmt.Printf("answer %s (err %v)\n", strings.TrimSpace(line), err)
		return nil
	}
	return fmt.Errorf("unknown helper mode")
}

// sendRawSYN sends an IPv4 TCP SYN from src to dst through a raw socket,
// as any program that is root in its network namespace can.
func sendRawSYN(src, dst netip.AddrPort) error {
	return sendRawTCP(src, dst, 0x02, false)
}

// sendRawUDPBadLength sends a UDP datagram whose length field claims more
// than the datagram holds.
func sendRawUDPBadLength(src, dst netip.AddrPort) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	b := make([]byte, 20+8+4)
	b[0], b[8], b[9] = 0x45, 64, unix.IPPROTO_UDP
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	copy(b[12:], s4[:])
	copy(b[16:], d4[:])
	binary.BigEndian.PutUint16(b[20:], src.Port())
	binary.BigEndian.PutUint16(b[22:], dst.Port())
	binary.BigEndian.PutUint16(b[24:], 200) // the datagram is 12 bytes
	return unix.Sendto(fd, b, 0, &unix.SockaddrInet4{Addr: d4})
}

// sendRawTCP sends an IPv4 TCP segment with flags from src to dst through
// a raw socket, its checksum right or, with badSum, wrong.
func sendRawTCP(src, dst netip.AddrPort, flags byte, badSum bool) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	b := make([]byte, 40)
	b[0], b[8], b[9] = 0x45, 64, unix.IPPROTO_TCP
	binary.BigEndian.PutUint16(b[2:], 40)
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	copy(b[12:], s4[:])
	copy(b[16:], d4[:])
	t := b[20:]
	binary.BigEndian.PutUint16(t[0:], src.Port())
	binary.BigEndian.PutUint16(t[2:], dst.Port())
	binary.BigEndian.PutUint32(t[4:], 1000)
	t[12], t[13] = 5<<4, flags // data offset 5
	binary.BigEndian.PutUint16(t[14:], 65535)
	sum := uint32(0)
	add := func(p []byte) {
		for i := 0; i+1 < len(p); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(p[i:]))
		}
	}
	add(s4[:])
	add(d4[:])
	sum += unix.IPPROTO_TCP + 20
	add(t)
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(t[16:], ^uint16(sum))
	if badSum {
		t[16] ^= 0xff
	}
	// The kernel fills in the IP checksum (and keeps our source).
	return unix.Sendto(fd, b, 0, &unix.SockaddrInet4{Addr: d4})
}

// qa5Self returns the test binary's path and the environment that makes
// it run helper mode inside the namespace.
func qa5Self(t *testing.T, mode string) (string, string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return self, "QA5_HELPER=" + mode
}

// TestRunSpoofedSYNExitsPromptly: a command that sends one TCP SYN from
// a source address nobody in the namespace owns, then exits. The relay
// dialled the real destination and waited for the namespace to finish a
// handshake nobody would finish; ustack run took 127 s to exit. It must
// exit at once, and report the connection it gave up on when that
// happened within the run.
func TestRunSpoofedSYNExitsPromptly(t *testing.T) {
	bin := runBinary(t)
	accepted := make(chan struct{}, 4)
	port := runHostListener(t, func(c *net.TCPConn) {
		accepted <- struct{}{}
		go func() { c.Read(make([]byte, 1)); c.Close() }()
	})
	self, env := qa5Self(t, "spoofsyn")
	t.Setenv("QA5_HELPER", strings.TrimPrefix(env, "QA5_HELPER="))
	start := time.Now()
	// The helper sends the SYN; sleep outlives --dial-timeout, so the
	// give-up happens while CMD still runs and is reported.
	res := runUstack(t, bin, "run", "--allow-host-loopback", "--dial-timeout", "500ms", "--",
		"sh", "-c", fmt.Sprintf("%s 10.0.2.77:40000 10.0.2.2:%s && sleep 1.5", self, port))
	os.Unsetenv("QA5_HELPER")
	elapsed := time.Since(start)
	if res.status != 0 {
		t.Fatalf("status %d, stdout %q, stderr %q", res.status, res.stdout, res.stderr)
	}
	select {
	case <-accepted:
	default:
		t.Fatalf("the spoofed SYN's destination was never dialled (stderr %q)", res.stderr)
	}
	if elapsed > 10*time.Second {
		t.Errorf("ustack run took %v to exit after a spoofed SYN; want about the command's 1.5 s", elapsed.Round(time.Millisecond))
	}
	if !strings.Contains(res.stderr, "gave up on 1 connections whose handshake") {
		t.Errorf("stderr %q does not report the handshake given up", res.stderr)
	}
}

// TestRunControlSocketClosedToCommand: the command sees the host's
// filesystem, so it could connect to --api-socket and add a port forward:
// a listening port on the host's network, which its namespace exists to
// deny it (rootless as well: the socket belongs to the user CMD maps to).
// A client inside the namespace is refused; one outside is served.
func TestRunControlSocketClosedToCommand(t *testing.T) {
	bin := runBinary(t)
	sock := t.TempDir() + "/api.sock"
	self, _ := qa5Self(t, "control")
	port := runFreePort(t, "tcp4", "127.0.0.1:0")
	req := fmt.Sprintf(`{"op":"add","forward":"127.0.0.1:%s:80/tcp"}`, port)
	cmd, out := runStart(t, bin, "run", "--api-socket", sock, "--",
		"sh", "-c", fmt.Sprintf("QA5_HELPER=control %s %s '%s'; sleep 30", self, sock, req))
	var inside string
	runEventually(t, "the command's control request", func() error {
		if inside = out.String(); !strings.Contains(inside, "answer") {
			return fmt.Errorf("output so far %q", inside)
		}
		return nil
	})
	if !strings.Contains(inside, `"ok":false`) || !strings.Contains(inside, "not open to processes inside the namespace") {
		t.Errorf("control request from inside the namespace answered %q; want a refusal", inside)
	}
	if ln, err := net.Listen("tcp4", "127.0.0.1:"+port); err != nil {
		t.Errorf("host port %s taken after the command's request: %v", port, err)
	} else {
		ln.Close()
	}
	// The operator outside is still served.
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintln(c, `{"op":"list"}`)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, `{"ok":true`) {
		t.Errorf("list from the host: %q, %v; want ok", line, err)
	}
	c.Close()
	if st := runStop(t, cmd); st != 143 {
		t.Errorf("status %d after SIGTERM, want 143 (output %q)", st, out.String())
	}
}

// TestRunKilledLeavesNoResolvConf: ustack run killed with SIGKILL runs no
// cleanup; the resolv.conf it generated for the command must not stay
// behind in TMPDIR (it did, one file per kill).
func TestRunKilledLeavesNoResolvConf(t *testing.T) {
	bin := runBinary(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	mark := tmp + "/started"
	cmd, out := runStart(t, bin, "run", "--", "sh", "-c", "grep -q 10.0.2.3 /etc/resolv.conf && touch "+mark+"; sleep 30")
	runEventually(t, "command started", func() error {
		_, err := os.Stat(mark)
		return err
	})
	cmd.Process.Kill()
	cmd.Wait()
	os.Remove(mark)
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left in TMPDIR after SIGKILL: %v (output %q)", left, out.String())
	}
}

// TestRunMalformedReported: packets a command's raw socket sends that the
// stack drops as malformed are counted and reported when ustack exits;
// none of them is relayed (a bad UDP length used to open a flow). They
// went unseen: the relay's counters did not move.
func TestRunMalformedReported(t *testing.T) {
	bin := runBinary(t)
	self, _ := qa5Self(t, "malformed")
	res := runUstack(t, bin, "run", "--debug", "--", "sh", "-c", "QA5_HELPER=malformed "+self+" 192.0.2.1 && sleep 0.3")
	if res.status != 0 {
		t.Fatalf("status %d, stderr %q", res.status, res.stderr)
	}
	if !strings.Contains(res.stderr, "dropped 2 malformed packets from the namespace") {
		t.Errorf("stderr %q does not report the 2 malformed packets", res.stderr)
	}
	if !strings.Contains(res.stderr, "UDPFlows:0") || !strings.Contains(res.stderr, "TCPDialFailed:0") {
		t.Errorf("a malformed packet was relayed: %q", res.stderr)
	}
}

// TestRunQuietOnMartians: a packet from a loopback source, which the
// stack drops, made gVisor print "Martian packet dropped ..." on ustack
// run's stderr: the command chose what the operator's terminal showed.
// Without --debug nothing is printed.
func TestRunQuietOnMartians(t *testing.T) {
	bin := runBinary(t)
	self, _ := qa5Self(t, "martian")
	res := runUstack(t, bin, "run", "--", "sh", "-c", "QA5_HELPER=martian "+self+" 10.0.2.2 && sleep 0.2")
	if res.status != 0 || res.stderr != "" {
		t.Errorf("status %d, stderr %q; want 0 and nothing on stderr", res.status, res.stderr)
	}
}

// TestRunControlSocketClosedToCommandRootless: the case that matters
// most. Rootless, the control socket belongs to the very user the
// command maps to, so file permissions cannot keep it out; before the
// fix the command's `add` was answered ok and the host listened.
func TestRunControlSocketClosedToCommandRootless(t *testing.T) {
	bin := runPublicBinary(t)
	roottest.RequireCommand(t, "setpriv", "socat")
	runTunForAll(t)
	// t.TempDir's parent is root's own; the user needs a way in.
	dir, err := os.MkdirTemp("", "qa5-api-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	sock := dir + "/api.sock"
	port := runFreePort(t, "tcp4", "127.0.0.1:0")
	req := fmt.Sprintf(`{"op":"add","forward":"127.0.0.1:%s:80/tcp"}`, port)
	out, err := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		bin, "run", "--api-socket", sock, "--", "sh", "-c",
		fmt.Sprintf("echo '%s' | socat -t 2 - UNIX-CONNECT:%s", req, sock)).CombinedOutput()
	if err != nil {
		t.Fatalf("rootless ustack run: %v, output %q", err, out)
	}
	if !strings.Contains(string(out), "not open to processes inside the namespace") {
		t.Errorf("the command's add through the control socket answered %q; want a refusal", out)
	}
}

// TestRunAPISocketReusedAfterKill: ustack run killed with SIGKILL leaves
// its control socket file (nothing unlinks it); the next run on the same
// path used to fail with "bind: address already in use".
func TestRunAPISocketReusedAfterKill(t *testing.T) {
	bin := runBinary(t)
	sock := t.TempDir() + "/api.sock"
	cmd, _ := runStart(t, bin, "run", "--api-socket", sock, "--", "sleep", "30")
	runEventually(t, "control socket up", func() error {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err
	})
	cmd.Process.Kill()
	cmd.Wait()
	res := runUstack(t, bin, "run", "--api-socket", sock, "--", "true")
	if res.status != 0 {
		t.Errorf("ustack run on the control socket path a killed run left: status %d, stderr %q", res.status, res.stderr)
	}
}
