package roottest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ustack/ustack/netns"
)

func TestNetnsRemovedAtCleanup(t *testing.T) {
	var path string
	t.Run("inner", func(t *testing.T) {
		ns := Netns(t)
		path = ns.Path
		if out := ns.Run("ip", "-o", "link", "show", "lo"); !strings.Contains(out, "LOWER_UP") {
			t.Errorf("lo in new namespace: %q, want it up", out)
		}
	})
	if path == "" {
		return // skipped
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("after the test, %s: stat = %v, want not exist", path, err)
	}
}

func TestSweepStaleRemovesDeadOwnersNamespaces(t *testing.T) {
	Require(t)
	// A PID that is surely dead: a child we started and waited for.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("%s%d-deadbeef", nsPrefix, cmd.Process.Pid)
	if _, err := netns.CreateNamed(name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netns.DeleteNamed(name) })
	netns.DeleteStale(nsPrefix)
	if _, err := os.Stat(filepath.Join(netns.RunDir, name)); !os.IsNotExist(err) {
		t.Errorf("DeleteStale left %s (owner %d is dead)", name, cmd.Process.Pid)
	}
}
