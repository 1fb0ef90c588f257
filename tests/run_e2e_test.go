package tests

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/roottest"
	"github.com/ustack/ustack/netns"
)

func runHello(t *testing.T) string {
	return runHTTPServer(t, "tcp4", "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from the host\n")
	}))
}

// TestRunHostLoopback: curl inside reaches an HTTP server on host loopback
// through the gateway only with --allow-host-loopback; without it the
// connection is refused (curl exit 7), and that status is ustack's.
func TestRunHostLoopback(t *testing.T) {
	bin := runBinary(t)
	roottest.RequireCommand(t, "curl")
	port := runHello(t)
	url := "http://10.0.2.2:" + port + "/"
	res := runUstack(t, bin, "run", "--allow-host-loopback", "--", "curl", "-sS", "--max-time", "10", url)
	if res.status != 0 || res.stdout != "hello from the host\n" {
		t.Fatalf("curl %s with --allow-host-loopback: status %d, stdout %q, stderr %q", url, res.status, res.stdout, res.stderr)
	}
	res = runUstack(t, bin, "run", "--", "curl", "-sS", "--max-time", "10", url)
	if res.status != 7 || !strings.Contains(res.stderr, "Couldn't connect") {
		t.Fatalf("curl %s without --allow-host-loopback: status %d, stderr %q; want 7 (connection refused)", url, res.status, res.stderr)
	}
}

func TestRunExitStatus(t *testing.T) {
	bin := runBinary(t)
	for _, tc := range []struct {
		argv []string
		want int
	}{
		{[]string{"true"}, 0},
		{[]string{"sh", "-c", "exit 42"}, 42},
		{[]string{"sh", "-c", "kill -TERM $$"}, 128 + 15},
		{[]string{"no-such-command-ustack"}, 127},
	} {
		t.Run(strings.Join(tc.argv, " "), func(t *testing.T) {
			res := runUstack(t, bin, append([]string{"run", "--"}, tc.argv...)...)
			if res.status != tc.want {
				t.Errorf("ustack run -- %q = %d, want %d; stderr %q", tc.argv, res.status, tc.want, res.stderr)
			}
		})
	}
	t.Run("bad flag", func(t *testing.T) {
		res := runUstack(t, bin, "run", "--mtu", "10", "--", "true")
		if res.status != 2 || !strings.Contains(res.stderr, "--mtu") {
			t.Errorf("ustack run --mtu 10 = %d, stderr %q; want 2 naming --mtu", res.status, res.stderr)
		}
	})
}

func TestRunSignalForwarded(t *testing.T) {
	bin := runBinary(t)
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	cmd, out := runStart(t, bin, "run", "--", "sh", "-c", `trap 'exit 9' TERM; touch `+ready+`; while :; do sleep 0.1; done`)
	runEventually(t, "command started", func() error { _, err := os.Stat(ready); return err })
	if got := runStop(t, cmd); got != 9 {
		t.Fatalf("after SIGTERM ustack exited %d, want 9 from the command's trap; output %q", got, out)
	}
}

func TestRunUDP(t *testing.T) {
	bin := runBinary(t)
	roottest.RequireCommand(t, "socat")
	port := runUDPEcho(t, "udp4", "127.0.0.1:0")
	port6 := runUDPEcho(t, "udp6", "[::1]:0")
	res := runUstack(t, bin, "run", "--allow-host-loopback", "--", "sh", "-c",
		"echo udp-v4 | socat -t 1 - UDP4:10.0.2.2:"+port+"; echo udp-v6 | socat -t 1 - UDP6:[fd00::2]:"+port6)
	if res.status != 0 || res.stdout != "udp-v4\nudp-v6\n" {
		t.Fatalf("UDP round trip: status %d, stdout %q, stderr %q", res.status, res.stdout, res.stderr)
	}
	// A closed port answers with ICMP port unreachable, which the relay
	// passes on: socat's read fails with ECONNREFUSED, not a timeout.
	closed := runFreePort(t, "udp4", "127.0.0.1:0")
	res = runUstack(t, bin, "run", "--allow-host-loopback", "--", "sh", "-c",
		"echo x | socat -t 3 - UDP4:10.0.2.2:"+closed)
	if res.status == 0 || !strings.Contains(res.stderr, "Connection refused") {
		t.Fatalf("UDP to a closed host port: status %d, stderr %q; want Connection refused", res.status, res.stderr)
	}
}

// runHostAddr returns a global IPv4 address of the host (not loopback),
// which the namespace reaches as any outside address.
func runHostAddr(t *testing.T) string {
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.String()
			}
		}
	}
	t.Skip("skipping: the host has no global IPv4 address to ping")
	return ""
}

func TestRunPing(t *testing.T) {
	bin := runBinary(t)
	roottest.RequireCommand(t, "ping")
	host := runHostAddr(t)
	res := runUstack(t, bin, "run", "--", "sh", "-c", "ping -c 2 -W 5 10.0.2.2 && ping -c 2 -W 5 "+host)
	if res.status != 0 || strings.Count(res.stdout, "bytes from") != 4 {
		t.Fatalf("ping gateway and %s: status %d, stdout %q, stderr %q", host, res.status, res.stdout, res.stderr)
	}
	// 192.0.2.0/24 is TEST-NET-1: nothing answers, and nothing may be
	// forged in its place.
	res = runUstack(t, bin, "run", "--", "ping", "-c", "1", "-W", "2", "192.0.2.254")
	if res.status == 0 || strings.Contains(res.stdout, "bytes from") {
		t.Fatalf("ping to an address that does not answer: status %d, stdout %q; want no reply", res.status, res.stdout)
	}
}

// runSilentNS creates a network namespace of the test's, to run ustack
// in as its "host": lo up, and 198.18.0.0/24 and 2001:db8:6::/64 routed
// into silence (through a gateway with a made-up MAC address on one end
// of a veth pair whose other end takes no frames for it), plus the
// commands in extra.
func runSilentNS(t *testing.T, extra ...[]string) string {
	t.Helper()
	roottest.RequireCommand(t, "ip")
	name := runRandomName()
	if _, err := netns.CreateNamed(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netns.DeleteNamed(name) })
	cmds := append([][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "silent0", "type", "veth", "peer", "name", "silent1"},
		{"link", "set", "silent0", "up"},
		{"link", "set", "silent1", "up"},
		{"addr", "add", "10.9.9.1/30", "dev", "silent0"},
		{"-6", "addr", "add", "2001:db8:9::1/64", "dev", "silent0", "nodad"},
		{"neigh", "add", "10.9.9.2", "lladdr", "02:00:00:00:00:02", "dev", "silent0", "nud", "permanent"},
		{"-6", "neigh", "add", "2001:db8:9::2", "lladdr", "02:00:00:00:00:02", "dev", "silent0", "nud", "permanent"},
		{"route", "add", "198.18.0.0/24", "via", "10.9.9.2"},
		{"-6", "route", "add", "2001:db8:6::/64", "via", "2001:db8:9::2"},
	}, extra...)
	for _, args := range cmds {
		if out, err := exec.Command("ip", append([]string{"-n", name}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %q: %v: %s", args, err, out)
		}
	}
	return name
}

// TestRunPing6 pings a host-side IPv6 address from inside. ustack runs in
// a namespace of the test's whose own address is 2001:db8:5::1 (this
// machine's global IPv6 address, fd00::2, is the gateway address inside
// the namespace, so it cannot stand for the host): the echo goes out
// through a host ICMPv6 socket and the host kernel's real reply comes
// back. An address that does not answer gets no reply, never a forged one.
func TestRunPing6(t *testing.T) {
	bin := runBinary(t)
	roottest.RequireCommand(t, "ping")
	name := runSilentNS(t, []string{"-6", "addr", "add", "2001:db8:5::1/128", "dev", "lo"})
	// One echo to the gateway, the namespace's first IPv6 packet: its
	// reply must not be lost (TestRunFirstIPv6Answered).
	res := runUstack(t, "ip", "netns", "exec", name, bin, "run", "--", "sh", "-c",
		"ping -6 -c 1 -W 5 fd00::2; ping -6 -c 2 -W 5 2001:db8:5::1")
	if res.status != 0 || strings.Count(res.stdout, "bytes from fd00::2") != 1 || strings.Count(res.stdout, "bytes from 2001:db8:5::1") != 2 {
		t.Fatalf("ping -6 gateway and 2001:db8:5::1: status %d, stdout %q, stderr %q", res.status, res.stdout, res.stderr)
	}
	res = runUstack(t, "ip", "netns", "exec", name, bin, "run", "--", "ping", "-6", "-c", "1", "-W", "2", "2001:db8:6::1")
	if res.status == 0 || strings.Contains(res.stdout, "bytes from") {
		t.Fatalf("ping -6 to an address that does not answer: status %d, stdout %q; want no reply", res.status, res.stdout)
	}
}

// TestRunConnectTimeout: a TCP destination that never answers (SYNs
// routed into silence) is not refused when ustack's dial gives up
// (--dial-timeout 500ms, shorter than the 1 s before the kernel sends its
// SYN again): CMD's connect, with its own longer timeout (3 s), times out
// as it would on the real network. ustack dials again for each SYN CMD
// sends again, and logs each unanswered dial (--debug).
func TestRunConnectTimeout(t *testing.T) {
	bin := runBinary(t)
	roottest.RequireCommand(t, "socat")
	name := runSilentNS(t)
	start := time.Now()
	res := runUstack(t, "ip", "netns", "exec", name, bin, "run", "--debug", "--dial-timeout", "500ms", "--",
		"socat", "-u", "OPEN:/dev/null", "TCP4:198.18.0.1:80,connect-timeout=3")
	elapsed := time.Since(start)
	if res.status == 0 || !strings.Contains(res.stderr, "Connection timed out") || elapsed < 3*time.Second {
		t.Fatalf("connect to a silent destination: status %d after %v, stderr %q; want CMD's own timeout after 3s, not a refusal",
			res.status, elapsed.Round(time.Millisecond), res.stderr)
	}
	if n := strings.Count(res.stderr, "tcp 198.18.0.1:80:"); n < 2 {
		t.Errorf("%d dials logged for a connect that sent its SYN again within 3 s; want one per SYN\nstderr: %s", n, res.stderr)
	}
}

// runDNSServer answers A queries for name with addr (others with an empty
// answer) on host loopback; it returns its address.
func runDNSServer(t *testing.T, name string, addr [4]byte) string {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := runDNSAnswer(buf[:n], name, addr); resp != nil {
				pc.WriteTo(resp, from)
			}
		}
	}()
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

// runDNSAnswer builds the response to one query (RFC 1035 §4.1).
func runDNSAnswer(q []byte, name string, addr [4]byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil
	}
	var labels []string
	i := 12
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if i+1+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	i++ // the root label
	if i+4 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i:])
	end := i + 4
	resp := append([]byte(nil), q[:end]...)
	resp[2] = 0x81 // QR, RD
	resp[3] = 0x80 // RA, NOERROR
	binary.BigEndian.PutUint16(resp[6:], 0)
	binary.BigEndian.PutUint16(resp[8:], 0)
	binary.BigEndian.PutUint16(resp[10:], 0)
	if strings.EqualFold(strings.Join(labels, "."), name) && qtype == 1 {
		binary.BigEndian.PutUint16(resp[6:], 1)
		resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
		resp = append(resp, addr[:]...)
	}
	return resp
}

func TestRunDNS(t *testing.T) {
	bin := runBinary(t)
	srv := runDNSServer(t, "ustack-run.test", [4]byte{192, 0, 2, 77})
	res := runUstack(t, bin, "run", "--dns-upstream", srv, "--", "sh", "-c",
		"cat /etc/resolv.conf; getent ahostsv4 ustack-run.test")
	if res.status != 0 || !strings.Contains(res.stdout, "nameserver 10.0.2.3") || !strings.Contains(res.stdout, "192.0.2.77") {
		t.Fatalf("resolve through the forwarder: status %d, stdout %q, stderr %q", res.status, res.stdout, res.stderr)
	}
	// The host's own resolv.conf is untouched.
	if b, _ := os.ReadFile("/etc/resolv.conf"); strings.Contains(string(b), "10.0.2.3") {
		t.Fatalf("host /etc/resolv.conf was modified: %q", b)
	}
}

// TestRunPortForward: servers inside the namespace, clients on the host,
// TCP and UDP, IPv4 and IPv6.
func TestRunPortForward(t *testing.T) {
	bin := runBinary(t)
	roottest.RequireCommand(t, "socat")
	t4, t6 := runFreePort(t, "tcp4", "127.0.0.1:0"), runFreePort(t, "tcp6", "[::1]:0")
	u4, u6 := runFreePort(t, "udp4", "127.0.0.1:0"), runFreePort(t, "udp6", "[::1]:0")
	script := `socat TCP6-LISTEN:8080,ipv6only=0,reuseaddr,fork SYSTEM:'echo tcp from $SOCAT_PEERADDR' &
socat UDP6-RECVFROM:9090,fork SYSTEM:'echo udp from $SOCAT_PEERADDR' &
wait`
	cmd, out := runStart(t, bin, "run",
		"-p", "127.0.0.1:"+t4+":8080", "-p", "[::1]:"+t6+":8080/tcp",
		"-p", "127.0.0.1:"+u4+":9090/udp", "-p", "[::1]:"+u6+":9090/udp",
		"--", "sh", "-c", script)
	for _, tc := range []struct{ network, addr, want string }{
		// socat prints peers in full IPv6 form; host loopback clients
		// appear as the gateway (10.0.2.2 mapped, fd00::2).
		{"tcp4", "127.0.0.1:" + t4, "tcp from [0000:0000:0000:0000:0000:ffff:0a00:0202]"},
		{"tcp6", "[::1]:" + t6, "tcp from [fd00:0000:0000:0000:0000:0000:0000:0002]"},
		{"udp4", "127.0.0.1:" + u4, "udp from [0000:0000:0000:0000:0000:ffff:0a00:0202]"},
		{"udp6", "[::1]:" + u6, "udp from [fd00:0000:0000:0000:0000:0000:0000:0002]"},
	} {
		runEventually(t, tc.network+" forward "+tc.addr, func() error {
			c, err := net.DialTimeout(tc.network, tc.addr, 2*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			if strings.HasPrefix(tc.network, "udp") {
				c.Write([]byte("hi\n"))
				c.SetDeadline(time.Now().Add(time.Second))
				buf := make([]byte, 200)
				n, err := c.Read(buf)
				if err != nil {
					return err
				}
				return runExpect(string(buf[:n]), tc.want)
			}
			got, err := runReadAll(c)
			if err != nil {
				return err
			}
			return runExpect(got, tc.want)
		})
	}
	if st := runStop(t, cmd); st != 128+15 {
		t.Errorf("ustack exited %d after SIGTERM, want 143 (the shell killed by it); output %q", st, out)
	}
}

// TestRunForwardRealSource: a forwarded connection from a client that is
// not on host loopback arrives inside from the client's real address.
func TestRunForwardRealSource(t *testing.T) {
	bin := runBinary(t)
	roottest.RequireCommand(t, "socat")
	host := net.ParseIP(runHostAddr(t)).To4()
	port := runFreePort(t, "tcp4", host.String()+":0")
	cmd, out := runStart(t, bin, "run", "-p", host.String()+":"+port+":8080", "--",
		"socat", "TCP6-LISTEN:8080,ipv6only=0,reuseaddr,fork", "SYSTEM:echo from $SOCAT_PEERADDR")
	// socat prints the IPv4-mapped peer in full.
	want := fmt.Sprintf("from [0000:0000:0000:0000:0000:ffff:%02x%02x:%02x%02x]", host[0], host[1], host[2], host[3])
	runEventually(t, "connect from "+host.String(), func() error {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: host}, Timeout: 2 * time.Second}
		return runDialExpect(d, "tcp4", net.JoinHostPort(host.String(), port), want)
	})
	if st := runStop(t, cmd); st != 128+15 {
		t.Errorf("ustack exited %d after SIGTERM, want 143 (socat killed by it); output %q", st, out)
	}
}

func runExpect(got, want string) error {
	if !strings.Contains(got, want) {
		return fmt.Errorf("got %q, want %q", got, want)
	}
	return nil
}

// runTunForAll lets unprivileged users open /dev/net/tun for the test:
// they can only when it is 0666, as udev sets it; some containers ship it
// 0600.
func runTunForAll(t *testing.T) {
	t.Helper()
	if fi, err := os.Stat("/dev/net/tun"); err == nil && fi.Mode().Perm() != 0o666 {
		old := fi.Mode().Perm()
		if err := os.Chmod("/dev/net/tun", 0o666); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod("/dev/net/tun", old) })
	}
}

// TestRunRootless runs the binary as uid 65534, which becomes root of a new
// user namespace.
func TestRunRootless(t *testing.T) {
	bin := runPublicBinary(t)
	roottest.RequireCommand(t, "setpriv", "curl")
	runTunForAll(t)
	port := runHello(t)
	ctx := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		bin, "run", "--allow-host-loopback", "--", "sh", "-c", "id -u; curl -sS --max-time 10 http://10.0.2.2:"+port+"/; exit 3")
	out, err := ctx.CombinedOutput()
	ee, _ := err.(*exec.ExitError)
	if ee == nil || ee.ExitCode() != 3 || !strings.HasPrefix(string(out), "0\nhello from the host\n") {
		t.Fatalf("rootless ustack run: %v, output %q; want uid 0 inside, the page, exit 3", err, out)
	}
}

// TestRunAttach gives the network to namespaces made outside ustack, by
// path and by PID, and checks that the device goes when ustack does.
func TestRunAttach(t *testing.T) {
	bin := runBinary(t)
	roottest.RequireCommand(t, "curl", "ip")
	port := runHello(t)
	name := runRandomName()
	path, err := netns.CreateNamed(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netns.DeleteNamed(name) })
	holder := exec.Command("ip", "netns", "exec", name, "sleep", "600")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	for _, target := range [][]string{{"--netns", path}, {"--pid", fmt.Sprint(holder.Process.Pid)}} {
		t.Run(target[0], func(t *testing.T) {
			cmd, out := runStart(t, bin, append([]string{"run", "--allow-host-loopback"}, target...)...)
			runEventually(t, "curl inside the attached namespace", func() error {
				got, err := exec.Command("ip", "netns", "exec", name, "curl", "-sS", "--max-time", "5", "http://10.0.2.2:"+port+"/").CombinedOutput()
				if err != nil {
					return fmt.Errorf("%v: %s", err, got)
				}
				return runExpect(string(got), "hello from the host")
			})
			if st := runStop(t, cmd); st != 0 {
				t.Errorf("attach mode exited %d after SIGTERM, want 0; output %q", st, out)
			}
			if got, _ := exec.Command("ip", "-n", name, "link", "show", "tap0").CombinedOutput(); !strings.Contains(string(got), "does not exist") {
				t.Errorf("tap0 still in the namespace after ustack exited: %s", got)
			}
		})
	}
}

func TestRunAPISocket(t *testing.T) {
	bin := runBinary(t)
	roottest.RequireCommand(t, "socat")
	sock := filepath.Join(t.TempDir(), "api.sock")
	cmd, out := runStart(t, bin, "run", "--api-socket", sock, "--",
		"socat", "TCP-LISTEN:8080,reuseaddr,fork", "SYSTEM:echo inside")
	var c net.Conn
	runEventually(t, "connect to the API socket", func() (err error) { c, err = net.Dial("unix", sock); return err })
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	rd := bufio.NewReader(c)
	call := func(req string) map[string]any {
		t.Helper()
		fmt.Fprintln(c, req)
		line, err := rd.ReadBytes('\n')
		if err != nil {
			t.Fatalf("%s: %v (ustack output %q)", req, err, out)
		}
		var resp map[string]any
		if err := json.Unmarshal(line, &resp); err != nil {
			t.Fatalf("%s: %q: %v", req, line, err)
		}
		return resp
	}
	port := runFreePort(t, "tcp4", "127.0.0.1:0")
	spec := "127.0.0.1:" + port + ":8080/tcp"
	if r := call(`{"op":"add","forward":"` + spec + `"}`); r["ok"] != true {
		t.Fatalf("add: %v", r)
	}
	runEventually(t, "connect through the added forward", func() error {
		return runDialExpect(&net.Dialer{}, "tcp4", "127.0.0.1:"+port, "inside")
	})
	if r := call(`{"op":"list"}`); fmt.Sprint(r["forwards"]) != "["+spec+"]" {
		t.Errorf("list: %v, want [%s]", r, spec)
	}
	r := call(`{"op":"stats"}`)
	if st, ok := r["stats"].(map[string]any); !ok || st["forward_accepted"].(float64) < 1 {
		t.Errorf("stats: %v, want forward_accepted >= 1", r)
	}
	if r := call(`{"op":"remove","forward":"` + spec + `"}`); r["ok"] != true {
		t.Errorf("remove: %v", r)
	}
	if hc, err := net.Dial("tcp4", "127.0.0.1:"+port); err == nil {
		hc.Close()
		t.Errorf("forward still listening after remove")
	}
	c.Close()
	runStop(t, cmd)
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("API socket %s left behind: %v", sock, err)
	}
}

// TestRunConnectionCap: with --max-flows 2 and two connections held open,
// a third is refused, and the hit is reported.
func TestRunConnectionCap(t *testing.T) {
	bin := runBinary(t)
	roottest.RequireCommand(t, "socat", "curl", "ss")
	port := runHostListener(t, func(c *net.TCPConn) {
		go func() { io.Copy(io.Discard, c); c.Close() }() // holds it open
	})
	dst := "10.0.2.2:" + port
	// Wait (up to 10s) until both held connections are established
	// before the third tries.
	script := fmt.Sprintf(`sleep 30 | socat - TCP:%s & sleep 30 | socat - TCP:%s &
for i in $(seq 100); do [ "$(ss -Htn state established dst %s | wc -l)" -ge 2 ] && break; sleep 0.1; done
curl -sS --max-time 5 http://%s/; echo curl=$?; kill %%1 %%2`, dst, dst, dst, dst)
	res := runUstack(t, bin, "run", "--allow-host-loopback", "--max-flows", "2", "--", "sh", "-c", script)
	if !strings.Contains(res.stdout, "curl=7") {
		t.Errorf("third connection at --max-flows 2: stdout %q, stderr %q; want curl refused (7)", res.stdout, res.stderr)
	}
	if !strings.Contains(res.stderr, "refused 1 flows at the --max-flows limit") {
		t.Errorf("stderr %q does not report the limit hit", res.stderr)
	}
}

// TestRunTeardown: what the command left behind (a background process),
// the namespaces, the device and the generated resolv.conf are all gone
// when ustack returns.
func TestRunTeardown(t *testing.T) {
	bin := runBinary(t)
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "ustack-resolv-*"))
	res := runUstack(t, bin, "run", "--", "sh", "-c",
		"sleep 600 </dev/null >/dev/null 2>&1 & echo $!; readlink /proc/self/ns/net /proc/self/ns/mnt")
	lines := strings.Fields(res.stdout)
	if res.status != 0 || len(lines) != 3 {
		t.Fatalf("status %d, stdout %q, stderr %q", res.status, res.stdout, res.stderr)
	}
	// The background sleep ran in the namespace; it must be gone (its PID
	// is ours to look at only if reused by something outside).
	bgPid, netNS, mntNS := lines[0], lines[1], lines[2]
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		for _, ns := range []struct{ file, want string }{{"net", netNS}, {"mnt", mntNS}} {
			if l, err := os.Readlink("/proc/" + e.Name() + "/ns/" + ns.file); err == nil && l == ns.want {
				cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
				t.Errorf("process %s (%q, background pid was %s) still in the run's %s namespace %s", e.Name(), cmdline, bgPid, ns.file, ns.want)
			}
		}
	}
	after, _ := filepath.Glob(filepath.Join(os.TempDir(), "ustack-resolv-*"))
	if len(after) > len(before) {
		t.Errorf("generated resolv.conf left behind: %v (before: %v)", after, before)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), "ustack-resolv") {
		t.Errorf("resolv.conf bind mount visible on the host:\n%s", mounts)
	}
}

// TestRunTransfer64MiB moves 64 MiB each way through the relay and
// compares SHA-256 digests.
func TestRunTransfer64MiB(t *testing.T) {
	bin := runBinary(t)
	roottest.RequireCommand(t, "curl", "sha256sum")
	data := make([]byte, 64<<20)
	for i := range data {
		data[i] = byte(i*7 + i>>13)
	}
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	file := filepath.Join(t.TempDir(), "payload")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	port := runHTTPServer(t, "tcp4", "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			h := sha256.New()
			io.Copy(h, r.Body)
			io.WriteString(w, hex.EncodeToString(h.Sum(nil)))
			return
		}
		w.Write(data)
	}))
	url := "http://10.0.2.2:" + port + "/"
	res := runUstack(t, bin, "run", "--allow-host-loopback", "--", "sh", "-c",
		"curl -sS --max-time 60 "+url+" | sha256sum; echo; curl -sS --max-time 60 --data-binary @"+file+" "+url)
	f := strings.Fields(res.stdout)
	if res.status != 0 || len(f) != 3 {
		t.Fatalf("status %d, stdout %q, stderr %q", res.status, res.stdout, res.stderr)
	}
	if f[0] != want {
		t.Errorf("host→namespace SHA-256 %s, want %s", f[0], want)
	}
	if f[2] != want {
		t.Errorf("namespace→host SHA-256 %s, want %s", f[2], want)
	}
}

// TestRunUnreachable runs ustack itself in a namespace of the test's where
// one prefix is unreachable and nothing else routed, so CMD's connects
// must fail with the same errors the real ones did.
func TestRunUnreachable(t *testing.T) {
	bin := runBinary(t)
	roottest.RequireCommand(t, "socat", "ip")
	name := runRandomName()
	if _, err := netns.CreateNamed(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netns.DeleteNamed(name) })
	for _, args := range [][]string{{"link", "set", "lo", "up"}, {"route", "add", "unreachable", "198.51.100.0/24"}} {
		if out, err := exec.Command("ip", append([]string{"-n", name}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %q: %v: %s", args, err, out)
		}
	}
	res := runUstack(t, "ip", "netns", "exec", name, bin, "run", "--", "sh", "-c",
		"socat -u OPEN:/dev/null TCP4:198.51.100.1:80; socat -u OPEN:/dev/null TCP4:203.0.113.1:80; socat -u OPEN:/dev/null TCP6:[2001:db8::1]:80")
	for _, want := range []string{"198.51.100.1:80, 16): No route to host", "203.0.113.1:80, 16): Network is unreachable", "28): Network is unreachable"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr %q lacks %q", res.stderr, want)
		}
	}
}

func TestRunPcap(t *testing.T) {
	bin := runBinary(t)
	roottest.RequireCommand(t, "ping")
	file := filepath.Join(t.TempDir(), "run.pcap")
	res := runUstack(t, bin, "run", "--pcap", file, "--", "ping", "-c", "2", "-W", "5", "10.0.2.2")
	if res.status != 0 {
		t.Fatalf("status %d, stderr %q", res.status, res.stderr)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// A pcap file header (24 bytes, magic a1b2c3d4 in host order), then
	// per packet a 16-byte record header and the packet: two echo
	// requests and two replies of 84 bytes at least.
	if len(b) < 24+4*(16+84) || binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 {
		t.Fatalf("pcap file of %d bytes starting %x, want a capture of 4 ICMP packets", len(b), b[:min(len(b), 8)])
	}
	if res.stderr != "" {
		t.Errorf("--pcap printed packets to stderr: %q", res.stderr)
	}
}

// TestRunKilled: even when ustack itself is killed with SIGKILL, nothing
// the command started survives (parent-death signal to the PID
// namespace's init, whose exit kills the rest).
func TestRunKilled(t *testing.T) {
	bin := runBinary(t)
	nsFile := filepath.Join(t.TempDir(), "ns")
	cmd, _ := runStart(t, bin, "run", "--", "sh", "-c",
		"sleep 300 </dev/null >/dev/null 2>&1 & readlink /proc/self/ns/net > "+nsFile+".tmp && mv "+nsFile+".tmp "+nsFile+"; wait")
	var ns string
	runEventually(t, "command started", func() error {
		b, err := os.ReadFile(nsFile)
		ns = strings.TrimSpace(string(b))
		return err
	})
	cmd.Process.Kill()
	cmd.Wait()
	runEventually(t, "namespace emptied", func() error {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			if l, err := os.Readlink("/proc/" + e.Name() + "/ns/net"); err == nil && l == ns {
				if stat, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil && !strings.Contains(string(stat), ") Z ") {
					return fmt.Errorf("process %s still in %s", e.Name(), ns)
				}
			}
		}
		return nil
	})
}

// TestRunAttachRootless: uid 65534 gives the network to a namespace of its
// own rootless "container" (`unshare -rn`), as slirp4netns does for
// rootless podman.
func TestRunAttachRootless(t *testing.T) {
	bin := runPublicBinary(t)
	roottest.RequireCommand(t, "setpriv", "unshare", "nsenter", "curl")
	runTunForAll(t)
	port := runHello(t)
	holder := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "unshare", "-rn", "sleep", "600")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	pid := fmt.Sprint(holder.Process.Pid) // unshare execs sleep in place
	runEventually(t, "holder in its own namespace", func() error {
		a, _ := os.Readlink("/proc/" + pid + "/ns/user")
		b, _ := os.Readlink("/proc/self/ns/user")
		if a == b || a == "" {
			return fmt.Errorf("user namespace %q not yet its own", a)
		}
		return nil
	})
	cmd, out := runStart(t, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin, "run", "--pid", pid, "--allow-host-loopback")
	runEventually(t, "curl inside the attached rootless namespace", func() error {
		got, err := exec.Command("nsenter", "-t", pid, "-n", "curl", "-sS", "--max-time", "5", "http://10.0.2.2:"+port+"/").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s (ustack: %s)", err, got, out)
		}
		return runExpect(string(got), "hello from the host")
	})
	if st := runStop(t, cmd); st != 0 {
		t.Errorf("rootless attach exited %d after SIGTERM, want 0; output %q", st, out)
	}
}
