package tests

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/internal/roottest"
	"github.com/ustack/ustack/netns"
	"golang.org/x/sys/unix"
)

// The flags a container engine drives `ustack run` with (docs/engine.md):
// --ready-fd, --exit-fd, --cidr/--cidr6.

// enginePipes are the pipes a container engine hands ustack: ustack gets
// the ready pipe's write end as descriptor 3 and the exit pipe's read end
// as descriptor 4; the test keeps the other ends.
type enginePipes struct {
	ready     *os.File // read end: "1" and then end of file
	exit      *os.File // write end: closing it asks ustack to exit
	readyW    *os.File // ustack's ends, closed in the test once started
	exitR     *os.File
	readyFD   int // the descriptor numbers ustack gets them at
	exitFD    int
	readyArgs []string
}

func newEnginePipes(t *testing.T) *enginePipes {
	t.Helper()
	return newEnginePipesAt(t, 3, 4)
}

// newEnginePipesAt is newEnginePipes with ustack's ends at the descriptor
// numbers readyFD and exitFD (3 or more; the numbers between are closed).
func newEnginePipesAt(t *testing.T, readyFD, exitFD int) *enginePipes {
	t.Helper()
	p := &enginePipes{readyFD: readyFD, exitFD: exitFD,
		readyArgs: []string{"--ready-fd", fmt.Sprint(readyFD), "--exit-fd", fmt.Sprint(exitFD)}}
	var err error
	if p.ready, p.readyW, err = os.Pipe(); err != nil {
		t.Fatal(err)
	}
	if p.exitR, p.exit, err = os.Pipe(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, f := range []*os.File{p.ready, p.readyW, p.exit, p.exitR} {
			f.Close()
		}
	})
	return p
}

// start runs name args with ustack's ends of the pipes at their
// descriptor numbers (through any wrapper such as setpriv, which keeps
// them), then
// closes them here, as an engine does after its fork. The cleanup kills
// what is still running.
func (p *enginePipes) start(t *testing.T, name string, args ...string) (*exec.Cmd, *runOutput) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.ExtraFiles = make([]*os.File, max(p.readyFD, p.exitFD)-2) // ExtraFiles[i] is descriptor 3+i
	cmd.ExtraFiles[p.readyFD-3], cmd.ExtraFiles[p.exitFD-3] = p.readyW, p.exitR
	out := runStartCmd(t, cmd)
	p.readyW.Close()
	p.exitR.Close()
	return cmd, out
}

// waitReady reads the ready pipe to end of file: it must hold exactly
// "1", and end of file means that no process (ustack, a copy of it, CMD)
// holds the write end any more.
func (p *enginePipes) waitReady(t *testing.T, out *runOutput) {
	t.Helper()
	p.ready.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(p.ready)
	if err != nil || string(got) != "1" {
		t.Fatalf("ready pipe: read %q, %v; want \"1\" and end of file (ustack output %q)", got, err, out)
	}
}

// exitNow closes the exit pipe and waits for ustack to exit; it must
// exit 0 within 10 seconds.
func (p *enginePipes) exitNow(t *testing.T, cmd *exec.Cmd, out *runOutput) {
	t.Helper()
	p.exit.Close()
	if !runWaitWithin(cmd, 10*time.Second) {
		t.Fatalf("ustack did not exit within 10s of --exit-fd's end of file; output %q", out)
	}
	if st := runStatus(cmd.ProcessState); st != 0 {
		t.Errorf("ustack exited %d at --exit-fd's end of file, want 0; output %q", st, out)
	}
}

// engineNS makes a named namespace (removed at cleanup) with a TCP server
// already listening inside on port 80 that answers "inside", as a
// container's would before its network exists.
func engineNS(t *testing.T) (name, path string) {
	t.Helper()
	roottest.RequireCommand(t, "ip", "socat", "ss")
	name = "engine-" + runRandomName()
	path, err := netns.CreateNamed(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netns.DeleteNamed(name) })
	srv := exec.Command("ip", "netns", "exec", name, "socat", "TCP-LISTEN:80,reuseaddr,fork", "SYSTEM:echo inside")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	runEventually(t, "server inside listening", func() error {
		got, err := exec.Command("ip", "netns", "exec", name, "ss", "-Htln", "sport = :80").CombinedOutput()
		if err != nil || !strings.Contains(string(got), ":80") {
			return fmt.Errorf("not yet: %s %v", got, err)
		}
		return nil
	})
	return name, path
}

// noTap checks that the device ustack made in the namespace is gone.
func noTap(t *testing.T, name, dev string) {
	t.Helper()
	if got, _ := exec.Command("ip", "-n", name, "link", "show", dev).CombinedOutput(); !strings.Contains(string(got), "does not exist") {
		t.Errorf("%s still in namespace %s after ustack exited: %s", dev, name, got)
	}
}

// TestRunEngineReadyFDAttach: with --netns, "1" arrives only once the
// forward listens, the namespace's network carries it to the server
// inside, and the control socket accepts: each is used at once after
// reading it, without retrying. Closing --exit-fd then ends ustack with 0
// and removes its device.
func TestRunEngineReadyFDAttach(t *testing.T) {
	leakcheck.Check(t)
	bin := runBinary(t)
	name, path := engineNS(t)
	port := runFreePort(t, "tcp4", "127.0.0.1:0")
	sock := filepath.Join(t.TempDir(), "api.sock")
	p := newEnginePipes(t)
	cmd, out := p.start(t, bin, append([]string{"run", "--netns", path, "--api-socket", sock,
		"-p", "127.0.0.1:" + port + ":80"}, p.readyArgs...)...)
	p.waitReady(t, out)
	if err := runDialExpect(&net.Dialer{}, "tcp4", "127.0.0.1:"+port, "inside"); err != nil {
		t.Errorf("forward right after ready: %v (ustack output %q)", err, out)
	}
	if c, err := net.Dial("unix", sock); err != nil {
		t.Errorf("control socket right after ready: %v", err)
	} else {
		c.Close()
	}
	p.exitNow(t, cmd, out)
	noTap(t, name, "tap0")
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("control socket %s left behind: %v", sock, err)
	}
}

// TestRunEngineReadyFDCreate: with CMD, "1" arrives once the forward
// listens (a client connecting right after is not refused) and before
// CMD runs; closing --exit-fd kills CMD, leaves nothing in its namespace and
// ends ustack with 0.
func TestRunEngineReadyFDCreate(t *testing.T) {
	leakcheck.Check(t)
	bin := runBinary(t)
	roottest.RequireCommand(t, "socat")
	port := runFreePort(t, "tcp4", "127.0.0.1:0")
	p := newEnginePipes(t)
	cmd, out := p.start(t, bin, append(append([]string{"run", "-p", "127.0.0.1:" + port + ":8080"}, p.readyArgs...),
		"--", "sh", "-c", "readlink /proc/self/ns/net; exec socat TCP-LISTEN:8080,reuseaddr,fork 'SYSTEM:echo inside'")...)
	p.waitReady(t, out)
	// The forward listens: the host's kernel completes the handshake.
	// CMD's server may not listen yet, and then the relay resets the
	// connection, which may come before connect returns; but nothing
	// listening at all would be ECONNREFUSED.
	if c, err := net.Dial("tcp4", "127.0.0.1:"+port); err == nil {
		c.Close()
	} else if errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("forward right after ready: %v (ustack output %q)", err, out)
	}
	// CMD starts only after ready, so its server may take a moment.
	runEventually(t, "through the forward to CMD's server", func() error {
		return runDialExpect(&net.Dialer{}, "tcp4", "127.0.0.1:"+port, "inside")
	})
	ns := strings.TrimSpace(strings.SplitN(out.String(), "\n", 2)[0])
	if !strings.HasPrefix(ns, "net:[") {
		t.Fatalf("CMD's namespace: %q", out)
	}
	p.exitNow(t, cmd, out)
	noProcessIn(t, ns)
}

// noProcessIn checks that no process is left in the network namespace ns
// ("net:[N]", as readlink /proc/PID/ns/net gives it).
func noProcessIn(t *testing.T, ns string) {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if l, err := os.Readlink("/proc/" + e.Name() + "/ns/net"); err == nil && l == ns {
			cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			t.Errorf("process %s (%q) still in the run's namespace %s", e.Name(), cmdline, ns)
		}
	}
}

// TestRunEngineReadyFDRootlessCreate: uid 65534 runs CMD (ustack
// re-executes itself in a new user namespace, netns.RunInUserNS) with
// --ready-fd 10 and --exit-fd 7, numbers out of order with closed ones
// between, as an engine's fork may leave them: the copy gets both at the
// same numbers, CMD inherits neither, "1" is followed by end of file (no
// process keeps the write end), the forward reaches CMD's server, and
// closing --exit-fd ends ustack with 0 and leaves no process behind.
func TestRunEngineReadyFDRootlessCreate(t *testing.T) {
	leakcheck.Check(t)
	bin := runPublicBinary(t)
	roottest.RequireCommand(t, "setpriv", "socat")
	runTunForAll(t)
	port := runFreePort(t, "tcp4", "127.0.0.1:0")
	p := newEnginePipesAt(t, 10, 7)
	cmd, out := p.start(t, "setpriv", append(append([]string{"--reuid=65534", "--regid=65534", "--clear-groups",
		bin, "run", "-p", "127.0.0.1:" + port + ":8080"}, p.readyArgs...),
		"--", "sh", "-c", "readlink /proc/self/ns/net; echo fds $(ls /proc/$$/fd); exec socat TCP-LISTEN:8080,reuseaddr,fork 'SYSTEM:echo inside'")...)
	p.waitReady(t, out)
	runEventually(t, "through the forward to CMD's server", func() error {
		return runDialExpect(&net.Dialer{}, "tcp4", "127.0.0.1:"+port, "inside")
	})
	lines := strings.SplitN(out.String(), "\n", 3)
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "net:[") || !strings.HasPrefix(lines[1], "fds ") {
		t.Fatalf("CMD's output: %q", out)
	}
	for _, fd := range strings.Fields(lines[1])[1:] {
		if fd == "7" || fd == "10" {
			t.Errorf("CMD inherited descriptor %s (its descriptors: %s)", fd, lines[1])
		}
	}
	p.exitNow(t, cmd, out)
	noProcessIn(t, lines[0])
}

// TestRunEngineReadyFDFailure: when setting up fails (a -p port already
// taken on the host), nothing is written to --ready-fd; the engine reads
// end of file, and ustack exits 1.
func TestRunEngineReadyFDFailure(t *testing.T) {
	leakcheck.Check(t)
	bin := runBinary(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := newEnginePipes(t)
	cmd, out := p.start(t, bin, append(append([]string{"run", "-p", ln.Addr().String() + ":80"}, p.readyArgs...),
		"--", "sleep", "30")...)
	p.ready.SetReadDeadline(time.Now().Add(20 * time.Second))
	if got, err := io.ReadAll(p.ready); len(got) != 0 || err != nil {
		t.Errorf("ready pipe of a failed run: read %q, %v; want nothing and end of file (ustack output %q)", got, err, out)
	}
	if !runWaitWithin(cmd, 10*time.Second) {
		t.Fatalf("ustack still running 10s after its ready pipe closed; output %q", out)
	}
	if st := runStatus(cmd.ProcessState); st != 1 || !strings.Contains(out.String(), "-p "+ln.Addr().String()+":80") {
		t.Errorf("ustack with a taken -p port: status %d, output %q; want 1 naming the forward", st, out)
	}
}

// TestRunEngineReadyFDRootless: uid 65534 attaches (through the copy of
// ustack in the namespace owner's user namespace, by nsenter) with
// --ready-fd and --exit-fd, as rootless podman runs slirp4netns: the
// descriptors reach the copy, "1" comes once the forward carries
// connections (and no copy keeps the pipe open), and closing --exit-fd
// ends both.
func TestRunEngineReadyFDRootless(t *testing.T) {
	leakcheck.Check(t)
	bin := runPublicBinary(t)
	roottest.RequireCommand(t, "setpriv", "unshare", "nsenter", "socat", "ss", "ip")
	runTunForAll(t)
	holder := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		"unshare", "-rn", "socat", "TCP-LISTEN:80,reuseaddr,fork", "SYSTEM:echo inside")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	pid := fmt.Sprint(holder.Process.Pid) // unshare execs socat in place
	runEventually(t, "server inside its own namespace, listening", func() error {
		got, err := exec.Command("nsenter", "-t", pid, "-n", "ss", "-Htln", "sport = :80").CombinedOutput()
		if err != nil || !strings.Contains(string(got), ":80") {
			return fmt.Errorf("not yet: %s %v", got, err)
		}
		return nil
	})
	port := runFreePort(t, "tcp4", "127.0.0.1:0")
	p := newEnginePipes(t)
	cmd, out := p.start(t, "setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups",
		bin, "run", "--pid", pid, "-p", "127.0.0.1:" + port + ":80"}, p.readyArgs...)...)
	p.waitReady(t, out)
	if err := runDialExpect(&net.Dialer{}, "tcp4", "127.0.0.1:"+port, "inside"); err != nil {
		t.Errorf("forward right after ready: %v (ustack output %q)", err, out)
	}
	p.exitNow(t, cmd, out)
	if got, _ := exec.Command("nsenter", "-t", pid, "-n", "ip", "link", "show", "tap0").CombinedOutput(); !strings.Contains(string(got), "does not exist") {
		t.Errorf("tap0 still in the rootless namespace after ustack exited: %s", got)
	}
}

// TestRunEngineCIDR: --cidr 10.0.3.0/24 and --cidr6 fd00:1::/64 (a QEMU
// user-net guest's own network being 10.0.2.0/24) give CMD 10.0.3.100
// and fd00:1::100, default routes via 10.0.3.2 and fd00:1::2, nameserver
// 10.0.3.3 that resolves, host loopback through both new gateways with
// --allow-host-loopback, and a port forward whose loopback client arrives
// from the new gateway.
func TestRunEngineCIDR(t *testing.T) {
	leakcheck.Check(t)
	bin := runBinary(t)
	roottest.RequireCommand(t, "curl", "ip", "socat")
	hello := func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello from the host\n") }
	port4 := runHTTPServer(t, "tcp4", "127.0.0.1:0", http.HandlerFunc(hello))
	port6 := runHTTPServer(t, "tcp6", "[::1]:0", http.HandlerFunc(hello))
	dns := runDNSServer(t, "engine-cidr.test", [4]byte{192, 0, 2, 78})
	fwd := runFreePort(t, "tcp4", "127.0.0.1:0")
	sock := filepath.Join(t.TempDir(), "api.sock")
	script := fmt.Sprintf(`ip -br addr show tap0; ip route show default; ip -6 route show default; cat /etc/resolv.conf
getent ahostsv4 engine-cidr.test | head -1
curl -sS --max-time 10 http://10.0.3.2:%s/ && curl -sS --max-time 10 -g 'http://[fd00:1::2]:%s/' && echo curl-ok
exec socat TCP-LISTEN:8080,reuseaddr,fork 'SYSTEM:echo peer=$SOCAT_PEERADDR'`, port4, port6)
	cmd, out := runStart(t, bin, "run", "--cidr", "10.0.3.0/24", "--cidr6", "fd00:1::/64", "--allow-host-loopback",
		"--dns-upstream", dns, "-p", "127.0.0.1:"+fwd+":8080", "--api-socket", sock, "--", "sh", "-c", script)
	runEventually(t, "through the forward to CMD's server", func() error {
		return runDialExpect(&net.Dialer{}, "tcp4", "127.0.0.1:"+fwd, "peer=10.0.3.2\n")
	})
	got := out.String()
	for _, want := range []string{
		"10.0.3.100/24", "fd00:1::100/64", "default via 10.0.3.2 dev tap0", "default via fd00:1::2 dev tap0",
		"nameserver 10.0.3.3\nnameserver fd00:1::3\n", "192.0.2.78", "hello from the host\nhello from the host\ncurl-ok\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("CMD's output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "10.0.2.") {
		t.Errorf("CMD's output names the default network 10.0.2.0/24:\n%s", got)
	}
	// The control socket tells an engine the same addresses.
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, `{"op":"info"}`+"\n")
	info, err := bufio.NewReader(c).ReadString('\n')
	want := `{"ok":true,"info":{"guest4":"10.0.3.100","gateway4":"10.0.3.2","dns4":"10.0.3.3","guest6":"fd00:1::100","gateway6":"fd00:1::2","dns6":"fd00:1::3"}}` + "\n"
	if info != want || err != nil {
		t.Errorf("control socket info = %q, %v; want %q", info, err, want)
	}
	c.Close()
	runStop(t, cmd)
}

// TestRunEngineOutboundAddr: ustack runs in a namespace of the test's
// whose "host" has 198.51.100.1 and .2 (and 2001:db8:5::1 and ::2); servers
// there on .1 print their client's address. With --outbound-addr .2 and
// --outbound-addr6 ::2, CMD's TCP (v4, v6) and UDP arrive from .2/::2 and
// a ping is still answered; without them, the host kernel picks .1 (the
// destination's own address), so the flag made the difference.
func TestRunEngineOutboundAddr(t *testing.T) {
	leakcheck.Check(t)
	bin := runBinary(t)
	roottest.RequireCommand(t, "socat", "ping", "ss")
	name := runSilentNS(t,
		[]string{"addr", "add", "198.51.100.1/32", "dev", "lo"}, []string{"addr", "add", "198.51.100.2/32", "dev", "lo"},
		[]string{"-6", "addr", "add", "2001:db8:5::1/128", "dev", "lo"}, []string{"-6", "addr", "add", "2001:db8:5::2/128", "dev", "lo"})
	peer := "SYSTEM:echo peer=$SOCAT_PEERADDR"
	for _, srv := range [][]string{
		{"TCP4-LISTEN:7001,bind=198.51.100.1,reuseaddr,fork", peer},
		{"TCP6-LISTEN:7001,bind=[2001:db8:5::1],reuseaddr,fork", peer},
		// One UDP server per run: a forked socat child still
		// holding the port could take the next run's datagram.
		{"UDP4-RECVFROM:7002,bind=198.51.100.1", peer},
		{"UDP4-RECVFROM:7003,bind=198.51.100.1", peer},
	} {
		cmd := exec.Command("ip", append([]string{"netns", "exec", name, "socat"}, srv...)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}
	runEventually(t, "servers listening", func() error {
		got, _ := exec.Command("ip", "netns", "exec", name, "ss", "-Htuln").CombinedOutput()
		if strings.Count(string(got), ":7001") != 2 || !strings.Contains(string(got), ":7002") || !strings.Contains(string(got), ":7003") {
			return fmt.Errorf("not yet: %s", got)
		}
		return nil
	})
	pings := echoSources(t, filepath.Join(netns.RunDir, name), netip.MustParseAddr("198.51.100.1"))
	run := func(udpPort string, extra ...string) string {
		script := `socat -T5 - TCP4:198.51.100.1:7001 </dev/null; socat -T5 - 'TCP6:[2001:db8:5::1]:7001' </dev/null
echo x | socat -t3 -T5 - UDP4:198.51.100.1:` + udpPort + `; ping -c 1 -W 5 198.51.100.1 >/dev/null && echo ping-ok`
		args := append(append([]string{"netns", "exec", name, bin, "run"}, extra...), "--", "sh", "-c", script)
		res := runUstack(t, "ip", args...)
		if res.status != 0 {
			t.Fatalf("ustack run %q: status %d, stdout %q, stderr %q", extra, res.status, res.stdout, res.stderr)
		}
		return res.stdout
	}
	want := "peer=198.51.100.2\npeer=[2001:0db8:0005:0000:0000:0000:0000:0002]\npeer=198.51.100.2\nping-ok\n"
	if got := run("7002", "--outbound-addr", "198.51.100.2", "--outbound-addr6", "2001:db8:5::2"); got != want {
		t.Errorf("with --outbound-addr: CMD printed %q, want %q", got, want)
	}
	// The ping is answered either way; its request shows the source.
	if got := pings(); len(got) != 1 || got[0] != "198.51.100.2" {
		t.Errorf("with --outbound-addr: echo requests arrived from %v, want [198.51.100.2]", got)
	}
	want = "peer=198.51.100.1\npeer=[2001:0db8:0005:0000:0000:0000:0000:0001]\npeer=198.51.100.1\nping-ok\n"
	if got := run("7003"); got != want {
		t.Errorf("without --outbound-addr: CMD printed %q, want %q", got, want)
	}
	if got := pings(); len(got) != 1 || got[0] != "198.51.100.1" {
		t.Errorf("without --outbound-addr: echo requests arrived from %v, want [198.51.100.1]", got)
	}
	// An address the host (this namespace) does not have is refused
	// before anything starts.
	res := runUstack(t, "ip", "netns", "exec", name, bin, "run", "--outbound-addr", "198.51.100.3", "--", "true")
	if res.status != 2 || !strings.Contains(res.stderr, `--outbound-addr "198.51.100.3": not an address of this host`) {
		t.Errorf("--outbound-addr of another host: status %d, stderr %q; want 2 naming the flag", res.status, res.stderr)
	}
}

// echoSources opens a raw ICMP socket in the network namespace at nsPath
// (it sees a copy of every ICMP packet delivered there) and returns a
// function giving the source addresses of the echo requests to dst
// delivered since its last call.
func echoSources(t *testing.T, nsPath string, dst netip.Addr) func() []string {
	t.Helper()
	var fd int
	err := netns.Do(nsPath, func() (err error) {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return func() []string {
		var srcs []string
		buf := make([]byte, 1<<16)
		for {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil { // EAGAIN: none left
				return srcs
			}
			ihl := int(buf[0]&0x0f) * 4
			if n < ihl+8 || ihl < 20 || buf[ihl] != 8 { // not an echo request
				continue
			}
			if netip.AddrFrom4([4]byte(buf[16:20])) == dst {
				srcs = append(srcs, netip.AddrFrom4([4]byte(buf[12:16])).String())
			}
		}
	}
}
