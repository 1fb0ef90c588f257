package relay

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
)

// TestDNSUpstreamUndialableFailsOver: a DNS upstream the host cannot even
// send to (here a link-local address without its zone: connect says
// EINVAL; likewise an IPv6 nameserver on a host without IPv6, which
// says EADDRNOTAVAIL, or one with no route) was kept as the current
// upstream for good: the failed dial was never counted against it, so
// every query of CMD failed while the host's own resolver, moving to the
// next nameserver, answered. The forwarder now moves on at once and
// sends the query to the next upstream.
func TestDNSUpstreamUndialableFailsOver(t *testing.T) {
	leakcheck.Check(t)
	live := udpEcho(t, "udp4", "127.0.0.1:0")
	undialable := netip.MustParseAddrPort("[fe80::1]:53")
	h := newHarness(t, Config{DNSUpstreams: []netip.AddrPort{undialable, live}})
	for i, dns := range []netip.Addr{DefaultDNS4, DefaultDNS6} {
		dst := netip.AddrPortFrom(dns, 53)
		if got, err := h.udpExchange(t, dst, "query"); err != nil || got != "query" {
			t.Errorf("query %d to %v = %q, %v; want it answered by the upstream that works", i, dst, got, err)
		}
	}
	if up := h.r.dnsUpstream(); up != live {
		t.Errorf("current upstream %v, want %v", up, live)
	}
}

// TestDNSUpstreamUndialableFailsOverTCP: the same over TCP (a query
// retried after a truncated answer): the connection to the forwarder
// reaches the next upstream instead of failing (EINVAL was left
// unanswered, as a blackhole route is, though the forwarder is there,
// and the connection waited for the namespace's SYN retransmission).
func TestDNSUpstreamUndialableFailsOverTCP(t *testing.T) {
	leakcheck.Check(t)
	live := echoServer(t, "tcp4", "127.0.0.1:0")
	undialable := netip.MustParseAddrPort("[fe80::1]:53")
	h := newHarness(t, Config{DNSUpstreams: []netip.AddrPort{undialable, live}, DialTimeout: 2 * time.Second})
	start := time.Now()
	c, err := h.dial(t, netip.AddrPortFrom(DefaultDNS4, 53).String())
	if err != nil {
		t.Fatalf("TCP query to the forwarder: %v; want it relayed to the upstream that works", err)
	}
	if d := time.Since(start); d > 900*time.Millisecond { // beats the 1 s SYN retransmission
		t.Errorf("connect to the forwarder took %v (a SYN retransmission); want it relayed at once", d.Round(time.Millisecond))
	}
	defer c.Close()
	roundTrip(t, c, 100)
}

// TestDNSNoDialableUpstreamRefused: when no DNS upstream can be dialled
// at all, a query to the forwarder is refused (ICMP port unreachable:
// the resolver moves on at once), as before the route errors were
// passed on; the forwarder is ustack's own service, not a destination
// behind a route, so neither silence (a blackhole's EINVAL) nor a soft
// "unreachable" the resolver ignores until its timeout.
func TestDNSNoDialableUpstreamRefused(t *testing.T) {
	leakcheck.Check(t)
	h := newHarness(t, Config{DNSUpstreams: []netip.AddrPort{netip.MustParseAddrPort("[fe80::1]:53")}})
	start := time.Now()
	_, err := h.udpExchange(t, netip.AddrPortFrom(DefaultDNS4, 53), "query")
	if err == nil || !strings.Contains(err.Error(), "refused") || time.Since(start) > 900*time.Millisecond {
		t.Errorf("query with no upstream the host can dial: %v after %v; want refused at once", err, time.Since(start).Round(time.Millisecond))
	}
}
