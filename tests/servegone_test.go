package tests

import (
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/internal/roottest"
)

// TestServeDeviceDeleted: when the device is deleted under a running
// serve (`ip link del`), serve must not stay "ready" with no device (the
// vnet driver did) or spin on the failed reads (the water driver burnt
// 40% of a CPU): it says the device is gone and exits 1.
func TestServeDeviceDeleted(t *testing.T) {
	leakcheck.Check(t)
	for _, d := range drivers {
		t.Run(string(d), func(t *testing.T) {
			ns := roottest.Netns(t)
			p := startServe(t, ns, "--tun-driver", string(d))
			ns.Run("ip", "link", "del", devName)
			if code := p.wait(t, 10*time.Second); code != 1 {
				t.Errorf("ustack serve after ip link del %s exited %d, want 1:\n%s", devName, code, p.out.String())
			}
			if out := p.out.String(); !strings.Contains(out, "ustack serve: device "+devName+" gone") {
				t.Errorf("ustack serve output does not say the device is gone:\n%s", out)
			}
		})
	}
}
