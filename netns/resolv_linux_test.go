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
