// Package roottest is the one gate for tests that need root, a TUN device
// or a network namespace. Outside CI such a test skips with the reason; with
// CI=true it fails instead, so CI can never pass by skipping.
//
// Netns gives each test a fresh namespace and removes it, and the processes
// the test started in it, when the test ends, even when it fails.
package roottest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/netns"
	"golang.org/x/sys/unix"
)

// InCI reports whether the tests run in CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Require skips t (fails it under CI) unless the process is root and
// /dev/net/tun can be opened.
func Require(t testing.TB) {
	t.Helper()
	if reason := missing(); reason != "" {
		if InCI() {
			t.Fatalf("CI=true but this test cannot run: %s", reason)
		}
		t.Skipf("skipping: %s (run as root; with CI=true this fails instead)", reason)
	}
}

// RequireCommand skips t (fails it under CI) unless every named program is
// on PATH.
func RequireCommand(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if InCI() {
				t.Fatalf("CI=true but %s is not installed (.ci/run installs it)", n)
			}
			t.Skipf("skipping: %s is not installed", n)
		}
	}
}

func missing() string {
	if os.Geteuid() != 0 {
		return "needs root"
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Sprintf("cannot open /dev/net/tun: %v", err)
	}
	unix.Close(fd)
	return ""
}

// nsPrefix starts every namespace Netns makes; the creating process's PID
// follows it, so a later run can tell which are stale.
const nsPrefix = "ustack-test-"

// NS is a network namespace made for one test.
type NS struct {
	Name string // as listed by `ip netns list`
	Path string // /run/netns/Name
	t    testing.TB
}

// Netns creates a fresh network namespace named after the test, with lo
// up, and removes it when the test ends. It calls Require first.
func Netns(t testing.TB) *NS {
	t.Helper()
	Require(t)
	// Namespaces left by test processes that died before their
	// cleanups ran (a timeout panic, a kill): t.Cleanup cannot run then.
	netns.DeleteStale(nsPrefix)
	var b [4]byte
	rand.Read(b[:])
	name := fmt.Sprintf("%s%d-%s", nsPrefix, os.Getpid(), hex.EncodeToString(b[:]))
	path, err := netns.CreateNamed(name)
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	ns := &NS{Name: name, Path: path, t: t}
	t.Cleanup(func() {
		ns.killAll()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete namespace %s: %v", name, err)
		}
	})
	ns.Run("ip", "link", "set", "lo", "up")
	return ns
}

// Command returns a command that runs argv inside the namespace. The test
// owns it: Start it, and it is killed when the test ends if still running.
func (ns *NS) Command(ctx context.Context, argv ...string) *exec.Cmd {
	args := append([]string{"--net=" + ns.Path, "--"}, argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// Run runs argv inside the namespace and fails the test if it fails. It
// returns the combined output.
func (ns *NS) Run(argv ...string) string {
	ns.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := ns.Command(ctx, argv...).CombinedOutput()
	if err != nil {
		ns.t.Fatalf("in %s: %s: %v\n%s", ns.Name, strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// killAll kills every process still inside the namespace.
func (ns *NS) killAll() {
	f, err := os.Open(ns.Path)
	if err != nil {
		return
	}
	defer f.Close()
	netns.KillAll(f)
}
