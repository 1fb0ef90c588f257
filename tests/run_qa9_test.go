package tests

import (
	"net"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/roottest"
)

// TestRunForwardV6ClientToV4OnlyServer: with a server inside bound to
// 0.0.0.0 only (python3 -m http.server's default), a host client over
// IPv6 through a wildcard -p (curl http://[::1]:PORT/, or localhost
// resolving to ::1 first) was reset; now its connection is tried on
// IPv4 inside and served, arriving from the gateway 10.0.2.2.
func TestRunForwardV6ClientToV4OnlyServer(t *testing.T) {
	bin := runBinary(t)
	roottest.RequireCommand(t, "socat")
	port := runFreePort(t, "tcp", ":0")
	cmd, out := runStart(t, bin, "run", "-p", port+":8080", "--",
		"socat", "TCP4-LISTEN:8080,reuseaddr,fork", "SYSTEM:echo v4only from $SOCAT_PEERADDR")
	for _, tc := range []struct{ network, addr string }{{"tcp4", "127.0.0.1"}, {"tcp6", "::1"}} {
		runEventually(t, tc.network+" client through -p "+port, func() error {
			return runDialExpect(&net.Dialer{Timeout: 2 * time.Second}, tc.network, net.JoinHostPort(tc.addr, port), "v4only from 10.0.2.2")
		})
	}
	if st := runStop(t, cmd); st != 128+15 {
		t.Errorf("ustack exited %d after SIGTERM, want 143 (socat killed by it); output %q", st, out)
	}
}
