package tests

import (
	"strings"
	"testing"
)

// TestRunDenyDNS: a sandbox denying every destination must not send
// names out through the DNS forwarder. The same upstream that
// TestRunDNS resolves through answers nothing here: with every upstream
// denied, the forwarder refuses the query (port unreachable), so the
// lookup fails at once rather than after the resolver's timeouts. With
// only the LAN denied (--deny 10.0.0.0/8, which covers ustack's own
// 10.0.2.3), DNS through the loopback upstream still works.
func TestRunDenyDNS(t *testing.T) {
	bin := runBinary(t)
	srv := runDNSServer(t, "ustack-deny.test", [4]byte{192, 0, 2, 78})
	res := runUstack(t, bin, "run", "--deny", "0.0.0.0/0", "--deny", "::/0", "--dns-upstream", srv, "--",
		"getent", "ahostsv4", "ustack-deny.test")
	if res.status == 0 || strings.Contains(res.stdout, "192.0.2.78") {
		t.Errorf("lookup with every destination denied: status %d, stdout %q; want it to fail", res.status, res.stdout)
	}
	res = runUstack(t, bin, "run", "--deny", "10.0.0.0/8", "--dns-upstream", srv, "--",
		"getent", "ahostsv4", "ustack-deny.test")
	if res.status != 0 || !strings.Contains(res.stdout, "192.0.2.78") {
		t.Errorf("lookup with only 10.0.0.0/8 denied: status %d, stdout %q, stderr %q; want it resolved", res.status, res.stdout, res.stderr)
	}
}
