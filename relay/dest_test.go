package relay

import (
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
)

// udpCountingEcho is udpEcho that also counts the datagrams it received,
// to tell whether anything reached it at all.
func udpCountingEcho(t *testing.T, network, addr string) (netip.AddrPort, *atomic.Int64) {
	t.Helper()
	pc, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			m, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			n.Add(1)
			pc.WriteTo(buf[:m], from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().(*net.UDPAddr).AddrPort(), &n
}

func prefixes(ss ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		ps[i] = netip.MustParsePrefix(s)
	}
	return ps
}

// TestDenyDNSUpstream: Deny applies to where a DNS query really goes. A
// sandbox denying every destination must not be able to send names out
// through the DNS forwarder (DNS exfiltration): with every upstream
// denied, queries to 10.0.2.3:53 are refused like any denied destination
// (UDP: port unreachable; TCP: reset) and nothing reaches the upstream.
func TestDenyDNSUpstream(t *testing.T) {
	leakcheck.Check(t)
	// One upstream answering on both UDP and TCP, at the same port.
	tcpUp := echoServer(t, "tcp4", "127.0.0.1:0")
	up, got := udpCountingEcho(t, "udp4", tcpUp.String())
	for _, deny := range [][]netip.Prefix{
		prefixes("0.0.0.0/0", "::/0"),
		prefixes("127.0.0.0/8"),
	} {
		t.Run(deny[0].String(), func(t *testing.T) {
			got.Store(0)
			h := newHarness(t, Config{Deny: deny, DNSUpstreams: []netip.AddrPort{up}})
			for _, dns := range []netip.Addr{DefaultDNS4, DefaultDNS6} {
				dst := netip.AddrPortFrom(dns, 53)
				if reply, err := h.udpExchange(t, dst, "secret-data.example.com"); err == nil {
					t.Errorf("DNS query to %v with Deny %v = %q, want it refused", dst, deny, reply)
				}
				if c, err := h.dial(t, dst.String()); err == nil || !strings.Contains(err.Error(), "refused") {
					if c != nil {
						c.Close()
					}
					t.Errorf("TCP DNS to %v with Deny %v = %v, want connection refused", dst, deny, err)
				}
			}
			if n := got.Load(); n != 0 {
				t.Errorf("the denied upstream %v received %d datagrams, want 0", up, n)
			}
			if st := h.r.Stats(); st.Denied != 4 || st.DNSQueries != 0 || st.TCPRelayed != 0 {
				t.Errorf("Stats() = %+v, want 4 denied, no query sent, nothing relayed", st)
			}
		})
	}
}

// TestDenySkipsDNSUpstream: an upstream in a denied prefix is never used;
// queries go to the allowed ones. The forwarder's own address is not a
// destination: denying a LAN prefix that covers it (10.0.0.0/8, fd00::/8)
// leaves DNS working.
func TestDenySkipsDNSUpstream(t *testing.T) {
	leakcheck.Check(t)
	denied, deniedGot := udpCountingEcho(t, "udp6", "[::1]:0")
	allowed, allowedGot := udpCountingEcho(t, "udp4", "127.0.0.1:0")
	h := newHarness(t, Config{Deny: prefixes("::1/128", "10.0.0.0/8", "fd00::/8"), DNSUpstreams: []netip.AddrPort{denied, allowed}})
	dst := netip.AddrPortFrom(DefaultDNS4, 53)
	if reply, err := h.udpExchange(t, dst, "query"); err != nil || reply != "query" {
		t.Fatalf("DNS query to %v = %q, %v; want it answered by the allowed upstream %v", dst, reply, err, allowed)
	}
	if d, a := deniedGot.Load(), allowedGot.Load(); d != 0 || a != 1 {
		t.Errorf("upstreams received %d (denied %v) and %d (allowed %v) datagrams, want 0 and 1", d, denied, a, allowed)
	}
}

// TestDenyGatewayHostLoopback: the gateway reaches host loopback only
// with AllowHostLoopback, and then Deny still applies both to the address
// the namespace asked for (10.0.2.2) and to the host address it stands
// for (127.0.0.1, ::1).
func TestDenyGatewayHostLoopback(t *testing.T) {
	leakcheck.Check(t)
	srv4 := echoServer(t, "tcp4", "127.0.0.1:0")
	srv6 := echoServer(t, "tcp6", "[::1]:0")
	u4, u4Got := udpCountingEcho(t, "udp4", "127.0.0.1:0")
	for _, deny := range [][]netip.Prefix{
		prefixes("0.0.0.0/0", "::/0"),
		prefixes("127.0.0.0/8", "::1/128"),
	} {
		t.Run(deny[0].String(), func(t *testing.T) {
			h := newHarness(t, Config{AllowHostLoopback: true, Deny: deny})
			for _, dst := range []netip.AddrPort{
				netip.AddrPortFrom(DefaultGateway4, srv4.Port()),
				netip.AddrPortFrom(DefaultGateway6, srv6.Port()),
			} {
				if c, err := h.dial(t, dst.String()); err == nil || !strings.Contains(err.Error(), "refused") {
					if c != nil {
						c.Close()
					}
					t.Errorf("dial %v with Deny %v = %v, want connection refused", dst, deny, err)
				}
			}
			if reply, err := h.udpExchange(t, netip.AddrPortFrom(DefaultGateway4, u4.Port()), "x"); err == nil {
				t.Errorf("UDP to the gateway with Deny %v = %q, want it refused", deny, reply)
			}
			if st := h.r.Stats(); st.Denied != 3 || st.TCPRelayed != 0 || st.UDPFlows != 0 {
				t.Errorf("Stats() = %+v, want 3 denied, nothing relayed", st)
			}
		})
	}
	if n := u4Got.Load(); n != 0 {
		t.Errorf("the host's denied %v received %d datagrams, want 0", u4, n)
	}
}
