package netns_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/internal/roottest"
	"github.com/ustack/ustack/netns"
)

// TestRemoveResolvConf: the ResolvConf file is gone from the host as
// soon as the command runs, so a caller killed by SIGKILL (no cleanup)
// leaves nothing, and the command still reads it through its bind mount. `ustack run` used to leave one
// /tmp/ustack-resolv-*.conf behind per SIGKILL.
func TestRemoveResolvConf(t *testing.T) {
	roottest.Require(t)
	leakcheck.Check(t)
	resolv := t.TempDir() + "/resolv.conf"
	if err := os.WriteFile(resolv, []byte("nameserver 192.0.2.53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	p, err := netns.Start(netns.ExecConfig{
		Argv:   []string{"sh", "-c", "cat /etc/resolv.conf; test -e " + resolv + " && echo still there"},
		Stdout: &out, Stderr: &out, ResolvConf: resolv,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	if st := p.Wait(); st != 1 || out.String() != "nameserver 192.0.2.53\n" {
		t.Errorf("command: status %d, output %q; want the generated file read and the host's copy gone (status 1)", st, out.String())
	}
	if _, err := os.Stat(resolv); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("generated resolv.conf still on the host once the command ran: stat: %v", err)
	}
}

// TestResolvConfSourceMissingFails: a generated resolv.conf that is
// missing when the child mounts it is an error, not "the host has no
// /etc/resolv.conf": mount(2) says ENOENT for a missing source as for a
// missing target, and the command ran with the host's resolver
// configuration and a warning that blamed the host's file.
func TestResolvConfSourceMissingFails(t *testing.T) {
	roottest.Require(t)
	leakcheck.Check(t)
	if _, err := os.Stat("/etc/resolv.conf"); err != nil {
		t.Skipf("needs a host /etc/resolv.conf: %v", err)
	}
	var out bytes.Buffer
	p, err := netns.Start(netns.ExecConfig{
		Argv:   []string{"true"},
		Stdout: &out, Stderr: &out, ResolvConf: t.TempDir() + "/missing.conf",
	})
	if err != nil {
		return // refused before the command ran: as wanted
	}
	defer p.Close()
	if err := p.Release(); err != nil {
		return
	}
	if st := p.Wait(); st == 0 || bytes.Contains(out.Bytes(), []byte("is missing")) {
		t.Errorf("command with its resolv.conf source missing: status %d, output %q; want it refused, naming the source", st, out.String())
	}
}
