//go:build linux

package sockapi

import (
	"fmt"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ustack/ustack/internal/leakcheck"
	"golang.org/x/net/dns/dnsmessage"
)

// The EAI codes expected here are what glibc 2.36 returned against a DNS
// server with the same behaviour, run in a private network namespace
// with its own /etc/resolv.conf (see docs/resolver.md).

// dnsSetup starts DNS servers on a fresh loopback stack at addrs and
// returns Sockets resolving through them with cfg (Nameservers set to
// addrs, Timeout 200ms and Attempts 1 unless cfg says otherwise).
func dnsSetup(t *testing.T, cfg ResolverConfig, addrs ...string) (*Sockets, []*testDNS) {
	t.Helper()
	s, st := newResolverSockets(t, "", ResolverConfig{})
	var servers []*testDNS
	for _, a := range addrs {
		d := startDNS(t, st.GVisor(), a)
		servers = append(servers, d)
		cfg.Nameservers = append(cfg.Nameservers, d.addr)
	}
	cfg.Timeout = orDefault(cfg.Timeout, 200*time.Millisecond)
	cfg.Attempts = orDefault(cfg.Attempts, 1)
	if err := s.SetResolver(cfg); err != nil {
		t.Fatal(err)
	}
	return s, servers
}

func wantQueries(t *testing.T, d *testDNS, want ...string) {
	t.Helper()
	if got := d.queries(); !reflect.DeepEqual(got, want) {
		t.Errorf("server %v got queries %q, want %q", d.addr, got, want)
	}
}

func TestDNSAAndAAAA(t *testing.T) {
	leakcheck.Check(t)
	s, ds := dnsSetup(t, ResolverConfig{}, "127.0.0.1:53")
	d := ds[0]
	d.add("www.test.", "A 192.0.2.10", "AAAA 2001:db8::10")
	d.add("loop.test.", "A 127.0.0.5", "AAAA ::1")
	d.add("alias.test.", "CNAME www.test.")
	runGaiCases(t, s, []gaiCase{
		// Neither address is reachable from a loopback-only stack, so
		// RFC 3484 precedence puts IPv6 first.
		{"both", "www.test", "80", h(0, 0, stream, 0), []string{"1/6 [2001:db8::10]:80", "1/6 192.0.2.10:80"}, 0},
		{"inet", "www.test", "80", h(0, inet, stream, 0), []string{"1/6 192.0.2.10:80"}, 0},
		{"inet6", "www.test", "80", h(0, inet6, stream, 0), []string{"1/6 [2001:db8::10]:80"}, 0},
		{"reachable", "loop.test", "80", h(0, 0, stream, 0), []string{"1/6 [::1]:80", "1/6 127.0.0.5:80"}, 0},
		{"cname canonname", "alias.test", "80", h(AI_CANONNAME, inet, stream, 0), []string{"1/6 192.0.2.10:80 canon=www.test"}, 0},
		{"case", "WWW.Test", "80", h(AI_CANONNAME, inet, stream, 0), []string{"1/6 192.0.2.10:80 canon=WWW.Test"}, 0},
	})
	d.queries()
	if _, err := s.Getaddrinfo("www.test", "", h(0, 0, stream, 0)); err != nil {
		t.Fatal(err)
	}
	wantQueries(t, d, "udp A www.test.", "udp AAAA www.test.")
}

func TestDNSErrors(t *testing.T) {
	leakcheck.Check(t)
	s, ds := dnsSetup(t, ResolverConfig{}, "127.0.0.1:53")
	d := ds[0]
	d.add("v4.test.", "A 192.0.2.1")
	d.add("v6sf.test.", "A 192.0.2.3")
	d.setRcodeFor("v6sf.test.", dnsmessage.TypeAAAA, dnsmessage.RCodeServerFailure)
	for name, rc := range map[string]dnsmessage.RCode{
		"nodata.test.": dnsmessage.RCodeSuccess,
		"sf.test.":     dnsmessage.RCodeServerFailure,
		"ref.test.":    dnsmessage.RCodeRefused,
		"ni.test.":     dnsmessage.RCodeNotImplemented,
		"fe.test.":     dnsmessage.RCodeFormatError,
	} {
		d.setRcode(name, rc)
	}
	runGaiCases(t, s, []gaiCase{
		{"nxdomain", "nx.test", "", h(0, 0, stream, 0), nil, EAI_NONAME},
		{"nodata", "nodata.test", "", h(0, 0, stream, 0), nil, EAI_NODATA},
		{"no AAAA", "v4.test", "", h(0, inet6, stream, 0), nil, EAI_NODATA},
		{"no AAAA v4mapped", "v4.test", "", h(AI_V4MAPPED, inet6, stream, 0), []string{"1/6 [::ffff:192.0.2.1]:0"}, 0},
		{"servfail", "sf.test", "", h(0, 0, stream, 0), nil, EAI_AGAIN},
		{"refused", "ref.test", "", h(0, 0, stream, 0), nil, EAI_AGAIN},
		{"notimp", "ni.test", "", h(0, 0, stream, 0), nil, EAI_AGAIN},
		{"A answered, AAAA servfail", "v6sf.test", "", h(0, 0, stream, 0), []string{"1/6 192.0.2.3:0"}, 0},
		{"formerr", "fe.test", "", h(0, 0, stream, 0), nil, EAI_NONAME},
		{"bad name", "bad..name", "", h(0, 0, stream, 0), nil, EAI_NONAME},
		{"long label", strings.Repeat("x", 64) + ".test", "", h(0, 0, stream, 0), nil, EAI_NONAME},
	})
	// AAAA is not asked after NXDOMAIN, REFUSED or NOTIMP for A (the
	// answer is decided), and nothing is sent for names that cannot be.
	wantQueries(t, d, "udp A nx.test.", "udp A nodata.test.", "udp AAAA nodata.test.",
		"udp AAAA v4.test.", "udp AAAA v4.test.", "udp A v4.test.", "udp A sf.test.", "udp AAAA sf.test.",
		"udp A ref.test.", "udp A ni.test.", "udp A v6sf.test.", "udp AAAA v6sf.test.", "udp A fe.test.", "udp AAAA fe.test.")
	d.setSilent(true)
	runGaiCases(t, s, []gaiCase{{"timeout", "to.test", "", h(0, 0, stream, 0), nil, EAI_AGAIN}})
	// A timed-out A query is not followed by an AAAA query: glibc asks
	// both at once and reports the pair as timed out.
	wantQueries(t, d, "udp A to.test.")
}

func TestDNSOverIPv6(t *testing.T) {
	leakcheck.Check(t)
	s, ds := dnsSetup(t, ResolverConfig{}, "[::1]:53", "[::1%lo]:5353")
	ds[0].setSilent(true)
	ds[1].add("www.test.", "A 192.0.2.10")
	runGaiCases(t, s, []gaiCase{{"over ::1", "www.test", "", h(0, inet, stream, 0), []string{"1/6 192.0.2.10:0"}, 0}})
	wantQueries(t, ds[0], "udp A www.test.")
	wantQueries(t, ds[1], "udp A www.test.")
}

func TestDNSRetryNextServer(t *testing.T) {
	leakcheck.Check(t)
	s, ds := dnsSetup(t, ResolverConfig{Attempts: 2}, "127.0.0.1:53", "127.0.0.1:5353")
	ds[0].setSilent(true)
	ds[1].add("www.test.", "A 192.0.2.10")
	runGaiCases(t, s, []gaiCase{{"second server", "www.test", "", h(0, inet, stream, 0), []string{"1/6 192.0.2.10:0"}, 0}})
	wantQueries(t, ds[0], "udp A www.test.")
	wantQueries(t, ds[1], "udp A www.test.")

	// Every server silent: each is tried Attempts times, in turn.
	ds[1].setSilent(true)
	runGaiCases(t, s, []gaiCase{{"all silent", "www.test", "", h(0, inet, stream, 0), nil, EAI_AGAIN}})
	wantQueries(t, ds[0], "udp A www.test.", "udp A www.test.")
	wantQueries(t, ds[1], "udp A www.test.", "udp A www.test.")

	// SERVFAIL passes the query on to the next server.
	ds[0].setSilent(false)
	ds[1].setSilent(false)
	ds[0].setRcode("www.test.", dnsmessage.RCodeServerFailure)
	runGaiCases(t, s, []gaiCase{{"servfail then answer", "www.test", "", h(0, inet, stream, 0), []string{"1/6 192.0.2.10:0"}, 0}})
	wantQueries(t, ds[0], "udp A www.test.")
	wantQueries(t, ds[1], "udp A www.test.")
}

func TestDNSConnectionRefused(t *testing.T) {
	leakcheck.Check(t)
	// Nothing listens on port 54: the stack answers with ICMP port
	// unreachable, and the resolver moves on without waiting out the
	// 1-minute timeout (a test deadline would catch it).
	s, ds := dnsSetup(t, ResolverConfig{Timeout: time.Minute}, "127.0.0.1:5353")
	cfg := s.resolv
	cfg.Nameservers = append([]netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:54")}, cfg.Nameservers...)
	if err := s.SetResolver(cfg); err != nil {
		t.Fatal(err)
	}
	ds[0].add("www.test.", "A 192.0.2.10")
	runGaiCases(t, s, []gaiCase{{"refused then answer", "www.test", "", h(0, inet, stream, 0), []string{"1/6 192.0.2.10:0"}, 0}})
	cfg.Nameservers = cfg.Nameservers[:1]
	if err := s.SetResolver(cfg); err != nil {
		t.Fatal(err)
	}
	runGaiCases(t, s, []gaiCase{{"only refused", "www.test", "", h(0, inet, stream, 0), nil, EAI_AGAIN}})
}

func TestDNSRotate(t *testing.T) {
	leakcheck.Check(t)
	s, ds := dnsSetup(t, ResolverConfig{Rotate: true}, "127.0.0.1:53", "127.0.0.1:5353")
	for _, d := range ds {
		d.add("www.test.", "A 192.0.2.10")
	}
	for i := 0; i < 4; i++ {
		if _, err := s.Getaddrinfo("www.test", "", h(0, inet, stream, 0)); err != nil {
			t.Fatalf("Getaddrinfo(www.test) = %v", err)
		}
	}
	if n0, n1 := len(ds[0].queries()), len(ds[1].queries()); n0 != 2 || n1 != 2 {
		t.Errorf("with Rotate, 4 queries reached the servers %d and %d times, want 2 and 2", n0, n1)
	}
}

func TestDNSTruncatedFallsBackToTCP(t *testing.T) {
	leakcheck.Check(t)
	s, ds := dnsSetup(t, ResolverConfig{}, "127.0.0.1:53")
	var rrs, want []string
	for i := 1; i <= 40; i++ {
		a := netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
		rrs = append(rrs, "A "+a.String())
		want = append(want, "1/6 "+a.String()+":0")
	}
	ds[0].add("big.test.", rrs...)
	runGaiCases(t, s, []gaiCase{{"40 addresses", "big.test", "", h(0, inet, stream, 0), want, 0}})
	wantQueries(t, ds[0], "udp A big.test.", "tcp A big.test.")
}

func TestDNSSearch(t *testing.T) {
	leakcheck.Check(t)
	s, ds := dnsSetup(t, ResolverConfig{Search: []string{"a.test", "b.test"}}, "127.0.0.1:53")
	d := ds[0]
	d.add("www.b.test.", "A 192.0.2.2")
	d.add("ok.test.", "A 192.0.2.3")
	d.add("x.y.b.test.", "A 192.0.2.4")
	d.setRcode("www.a.test.", dnsmessage.RCodeServerFailure)
	d.setRcode("ref.a.test.", dnsmessage.RCodeRefused)
	d.setRcode("ref.", dnsmessage.RCodeRefused)
	d.setRcode("sf.test.", dnsmessage.RCodeServerFailure)
	cases := []struct {
		name    string
		node    string
		ndots   int
		err     int
		queries []string
	}{
		{"short name searches, servfail goes on", "www", 0, 0, []string{"A www.a.test.", "A www.b.test."}},
		{"dotted name as is first", "ok.test", 0, 0, []string{"A ok.test."}},
		{"trailing dot only as is", "www.", 0, EAI_NONAME, []string{"A www."}},
		{"ndots 2 searches first", "x.y", 2, 0, []string{"A x.y.a.test.", "A x.y.b.test."}},
		{"not found anywhere", "nx", 0, EAI_NONAME, []string{"A nx.a.test.", "A nx.b.test.", "A nx."}},
		{"refused stops the search", "ref", 0, EAI_AGAIN, []string{"A ref.a.test.", "A ref."}},
		{"as-is failure is reported", "sf.test", 0, EAI_AGAIN, []string{"A sf.test.", "A sf.test.a.test.", "A sf.test.b.test."}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := s.resolv
			cfg.Ndots = c.ndots
			if err := s.SetResolver(cfg); err != nil {
				t.Fatal(err)
			}
			_, err := s.Getaddrinfo(c.node, "", h(0, inet, stream, 0))
			if code := eaiOf(t, err); code != c.err {
				t.Errorf("Getaddrinfo(%q) error %v, want EAI %d", c.node, err, c.err)
			}
			var want []string
			for _, q := range c.queries {
				want = append(want, "udp "+q)
			}
			wantQueries(t, d, want...)
		})
	}
}

func TestDNSIgnoresBadReplies(t *testing.T) {
	leakcheck.Check(t)
	s, ds := dnsSetup(t, ResolverConfig{}, "127.0.0.1:53")
	d := ds[0]
	d.add("www.test.", "A 192.0.2.10")
	d.add("other.test.", "A 192.0.2.66")
	good := func(req []byte) []byte { return d.answer(req, "raw") }
	d.setUDPRaw(func(req []byte) [][]byte {
		var out [][]byte
		wrongID := good(req)
		wrongID[0] ^= 0xff
		out = append(out, wrongID, []byte{1, 2, 3}, req) // a bad ID, garbage, the query echoed
		var m dnsmessage.Message
		m.Unpack(req)
		m.Questions[0].Name = dnsmessage.MustNewName("other.test.")
		other, _ := m.Pack()
		wrongQ := good(other)
		wrongQ[0], wrongQ[1] = req[0], req[1]
		out = append(out, wrongQ)
		cut := good(req)
		out = append(out, cut[:len(cut)-2]) // answer cut short
		return append(out, good(req))
	})
	runGaiCases(t, s, []gaiCase{{"good reply last", "www.test", "", h(0, inet, stream, 0), []string{"1/6 192.0.2.10:0"}, 0}})
}

func TestDNSGetnameinfo(t *testing.T) {
	leakcheck.Check(t)
	s, ds := dnsSetup(t, ResolverConfig{Search: []string{"example.test"}}, "127.0.0.1:53")
	d := ds[0]
	d.add("10.2.0.192.in-addr.arpa.", "PTR www.example.test.")
	d.add("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", "PTR six.example.test.")
	d.setRcode("99.2.0.192.in-addr.arpa.", dnsmessage.RCodeServerFailure)
	runGniCases(t, s, []gniCase{
		{"ptr", v4sa("192.0.2.10", 80), 0, "www.example.test", "http", 0},
		{"ptr nofqdn", v4sa("192.0.2.10", 80), NI_NOFQDN, "www", "http", 0},
		{"ptr v6", v6sa("2001:db8::1", 443, 0), 0, "six.example.test", "https", 0},
		{"ptr v4-mapped", v6sa("::ffff:192.0.2.10", 80, 0), 0, "www.example.test", "http", 0},
		{"no ptr", v4sa("192.0.2.11", 80), 0, "192.0.2.11", "http", 0},
		{"no ptr namereqd", v4sa("192.0.2.11", 80), NI_NAMEREQD, "", "", EAI_NONAME},
		{"servfail", v4sa("192.0.2.99", 80), 0, "", "", EAI_AGAIN},
		{"hosts first", v4sa("127.0.0.1", 80), 0, "localhost", "http", 0},
		{"numerichost asks nothing", v4sa("192.0.2.10", 80), NI_NUMERICHOST, "192.0.2.10", "http", 0},
	})
	const v4 = "udp PTR 10.2.0.192.in-addr.arpa."
	wantQueries(t, d, v4, v4, "udp PTR 1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", v4,
		"udp PTR 11.2.0.192.in-addr.arpa.", "udp PTR 11.2.0.192.in-addr.arpa.", "udp PTR 99.2.0.192.in-addr.arpa.")
	d.setSilent(true)
	runGniCases(t, s, []gniCase{{"timeout", v4sa("192.0.2.12", 80), 0, "", "", EAI_AGAIN}})
}

func TestDNSHostsFileFirst(t *testing.T) {
	leakcheck.Check(t)
	s, st := newResolverSockets(t, "192.0.2.50 www.test\n", ResolverConfig{})
	d := startDNS(t, st.GVisor(), "127.0.0.1:53")
	d.add("www.test.", "A 192.0.2.10")
	d.add("dns.test.", "A 192.0.2.11")
	cfg := s.resolv
	cfg.Nameservers = []netip.AddrPort{d.addr}
	if err := s.SetResolver(cfg); err != nil {
		t.Fatal(err)
	}
	runGaiCases(t, s, []gaiCase{
		{"from hosts", "www.test", "", h(0, inet, stream, 0), []string{"1/6 192.0.2.50:0"}, 0},
		{"from dns", "dns.test", "", h(0, inet, stream, 0), []string{"1/6 192.0.2.11:0"}, 0},
	})
	wantQueries(t, d, "udp A dns.test.")
	// The family asked for is missing from the hosts file: DNS answers.
	runGaiCases(t, s, []gaiCase{{"inet6 to dns", "www.test", "", h(0, inet6, stream, 0), nil, EAI_NODATA}})
	wantQueries(t, d, "udp AAAA www.test.")
}

func TestReverseName(t *testing.T) {
	leakcheck.Check(t)
	for _, c := range []struct{ addr, want string }{
		{"192.0.2.10", "10.2.0.192.in-addr.arpa."},
		{"::ffff:192.0.2.10", "10.2.0.192.in-addr.arpa."},
		// RFC 3596 section 2.5's example.
		{"4321:0:1:2:3:4:567:89ab", "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa."},
	} {
		if got := reverseName(netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("reverseName(%s) = %q, want %q", c.addr, got, c.want)
		}
	}
}

// TestDNSConcurrent resolves from many goroutines at once while the
// configuration changes: each lookup uses its own endpoints and a
// snapshot of the configuration (run with -race).
func TestDNSConcurrent(t *testing.T) {
	leakcheck.Check(t)
	s, ds := dnsSetup(t, ResolverConfig{Search: []string{"test"}}, "127.0.0.1:53")
	for i := 0; i < 8; i++ {
		ds[0].add("h"+strconv.Itoa(i)+".test.", "A 192.0.2."+strconv.Itoa(i+1))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 10; j++ {
				res, err := s.Getaddrinfo("h"+strconv.Itoa(i), "80", h(0, inet, stream, 0))
				if err != nil {
					errs <- err
					return
				}
				if got, want := fmtSockaddr(res[0].Addr), "192.0.2."+strconv.Itoa(i+1)+":80"; got != want {
					errs <- fmt.Errorf("h%d resolved to %s, want %s", i, got, want)
					return
				}
			}
		}()
	}
	cfg := s.resolv
	for j := 0; j < 10; j++ {
		cfg.Rotate = j%2 == 0
		if err := s.SetResolver(cfg); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
