package tests

import (
	"encoding/binary"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ustack/ustack/internal/roottest"
)

// TestRunFirstIPv6Answered starts ustack run again and again with a
// command whose very first IPv6 packet must be answered on the first try:
// an ICMPv6 echo (one probe), a TCP connect that gives up before the
// kernel sends its SYN again (1 s), a DNS query over IPv6 that waits less
// than a resolver's retry. The namespace's kernel used to drop that first
// reply (Ip6InAddrErrors) in about one run in twenty on a busy machine,
// when CMD started before the kernel had put its IPv6 address's local
// route back after bringing tap0 up; ustack run now waits for it
// (netns.WaitLocal, whose own test makes the late route deterministic).
func TestRunFirstIPv6Answered(t *testing.T) {
	bin := runBinary(t)
	roottest.RequireCommand(t, "ping", "socat", "od")
	port := runHTTPServer(t, "tcp6", "[::1]:0", http.NotFoundHandler())
	dns := runDNSServer(t, "ustack-run.test", [4]byte{192, 0, 2, 78})
	var query strings.Builder
	for _, b := range runDNSQuery("ustack-run.test") {
		fmt.Fprintf(&query, `\%03o`, b)
	}
	probes := []struct {
		name string
		argv []string
		want string // in stdout
	}{
		{"ping", []string{"ping", "-6", "-n", "-c", "1", "-W", "1", "fd00::2"}, "1 received"},
		{"tcp", []string{"sh", "-c", "socat -u OPEN:/dev/null TCP6:[fd00::2]:" + port + ",connect-timeout=0.9 && echo connected"}, "connected"},
		{"dns", []string{"sh", "-c", "printf '" + query.String() + "' | socat -t 0.9 - UDP6:[fd00::3]:53 | od -An -v -tx1 | tr -d ' \\n'"}, "c000024e"},
	}
	// Each run is a fresh namespace; the DNS probe waits out socat's 0.9 s,
	// so it runs less often.
	for i, runs := range []int{8, 6, 2} {
		p := probes[i]
		for n := 0; n < runs; n++ {
			args := append([]string{"run", "--allow-host-loopback", "--dns-upstream", dns, "--"}, p.argv...)
			res := runUstack(t, bin, args...)
			if res.status != 0 || !strings.Contains(res.stdout, p.want) {
				t.Fatalf("run %d of %s, first IPv6 packet of a new namespace: status %d, stdout %q, stderr %q; want %q on the first try",
					n+1, p.name, res.status, res.stdout, res.stderr, p.want)
			}
		}
	}
}

// runDNSQuery builds a recursive query for name's A record (RFC 1035 §4.1).
func runDNSQuery(name string) []byte {
	q := []byte{0x75, 0x73, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
	for _, l := range strings.Split(name, ".") {
		q = append(q, byte(len(l)))
		q = append(q, l...)
	}
	q = append(q, 0)
	return binary.BigEndian.AppendUint32(q, 1<<16|1) // QTYPE A, QCLASS IN
}
