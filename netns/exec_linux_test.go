package netns_test

import (
	"bytes"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/internal/roottest"
	"github.com/ustack/ustack/netns"
)

// TestMain lets this test binary serve as the namespace child that Start
// re-executes.
func TestMain(m *testing.M) {
	if netns.IsChild() {
		netns.ChildMain()
	}
	os.Exit(m.Run())
}

func startCmd(t *testing.T, resolv string, argv ...string) (*netns.Process, *bytes.Buffer) {
	t.Helper()
	var out bytes.Buffer
	p, err := netns.Start(netns.ExecConfig{Argv: argv, Stdout: &out, Stderr: &out, ResolvConf: resolv})
	if err != nil {
		t.Fatalf("Start(%q) = %v", argv, err)
	}
	t.Cleanup(func() { p.Close() })
	return p, &out
}

func TestStartNamespacesAndResolvConf(t *testing.T) {
	roottest.Require(t)
	leakcheck.Check(t)
	resolv := t.TempDir() + "/resolv.conf"
	if err := os.WriteFile(resolv, []byte("nameserver 192.0.2.53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hostBefore, _ := os.ReadFile("/etc/resolv.conf")
	ownNet, _ := os.Readlink("/proc/self/ns/net")
	p, out := startCmd(t, resolv, "sh", "-c", "readlink /proc/self/ns/net; cat /etc/resolv.conf")
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	if st := p.Wait(); st != 0 {
		t.Fatalf("Wait() = %d, want 0; output %q", st, out)
	}
	lines := strings.SplitN(out.String(), "\n", 2)
	if len(lines) != 2 || lines[0] == ownNet || !strings.HasPrefix(lines[0], "net:[") {
		t.Errorf("command's network namespace %q, want a new one (ours is %s)", lines[0], ownNet)
	}
	if len(lines) == 2 && lines[1] != "nameserver 192.0.2.53\n" {
		t.Errorf("command's /etc/resolv.conf = %q, want the generated file", lines[1])
	}
	if hostAfter, _ := os.ReadFile("/etc/resolv.conf"); !bytes.Equal(hostBefore, hostAfter) {
		t.Errorf("host /etc/resolv.conf changed to %q", hostAfter)
	}
}

func TestWaitStatus(t *testing.T) {
	roottest.Require(t)
	leakcheck.Check(t)
	for _, tc := range []struct {
		argv []string
		want int
	}{
		{[]string{"sh", "-c", "exit 3"}, 3},
		{[]string{"sh", "-c", "kill -KILL $$"}, 128 + int(syscall.SIGKILL)},
		{[]string{"/nonexistent/command"}, 127},
		{[]string{"/etc/passwd"}, 126}, // exists, not executable
		{[]string{"/"}, 126},           // a directory
	} {
		p, out := startCmd(t, "", tc.argv...)
		p.Release()
		if got := p.Wait(); got != tc.want {
			t.Errorf("%q: Wait() = %d, want %d; output %q", tc.argv, got, tc.want, out)
		}
	}
}

// TestNothingOutlivesTheCommand: a background process the command leaves
// behind dies with it (the PID namespace's init exits), and the
// namespaces go once the Process is closed.
func TestNothingOutlivesTheCommand(t *testing.T) {
	roottest.Require(t)
	leakcheck.Check(t)
	p, out := startCmd(t, "", "sh", "-c", "sleep 300 </dev/null >/dev/null 2>&1 & readlink /proc/self/ns/net")
	p.Release()
	if st := p.Wait(); st != 0 {
		t.Fatalf("Wait() = %d; output %q", st, out)
	}
	ns := strings.TrimSpace(out.String())
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := inNamespace(ns)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes %v still in %s after the command exited", left, ns)
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.Close()
}

// inNamespace lists the live (not zombie) processes whose network
// namespace is ns ("net:[N]").
func inNamespace(ns string) []string {
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if l, err := os.Readlink("/proc/" + e.Name() + "/ns/net"); err == nil && l == ns {
			if stat, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil && !strings.Contains(string(stat), ") Z ") {
				pids = append(pids, e.Name())
			}
		}
	}
	return pids
}

func TestCloseBeforeRelease(t *testing.T) {
	roottest.Require(t)
	leakcheck.Check(t)
	marker := t.TempDir() + "/ran"
	p, _ := startCmd(t, "", "touch", marker)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the command ran although the process was closed before Release")
	}
}
