//go:build linux

package sockapi

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ustack/ustack/internal/leakcheck"
	"github.com/ustack/ustack/stack"
	"golang.org/x/sys/unix"
)

// The expectations in this file are what glibc 2.36's getaddrinfo and
// getnameinfo return for the same arguments (checked with small C
// programs on Debian 12), adjusted only where the hosts table differs.

// newResolverSockets returns Sockets over a fresh loopback-only stack with
// cfg; hosts, if not empty, is written to a hosts file for it.
func newResolverSockets(t testing.TB, hosts string, cfg ResolverConfig) (*Sockets, *stack.Stack) {
	t.Helper()
	st, err := stack.New(stack.Config{})
	if err != nil {
		t.Fatalf("stack.New = %v", err)
	}
	t.Cleanup(st.Close)
	if hosts != "" {
		cfg.HostsFile = filepath.Join(t.TempDir(), "hosts")
		if err := os.WriteFile(cfg.HostsFile, []byte(hosts), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := New(st)
	if err := s.SetResolver(cfg); err != nil {
		t.Fatalf("SetResolver = %v", err)
	}
	return s, st
}

// fmtResults renders results as "socktype/protocol address:port", with
// " canon=NAME" where a canonical name is set and " flags=N" when the
// flags differ from want.
func fmtResults(res []AddrInfo, flags int) []string {
	var out []string
	for _, ai := range res {
		s := fmt.Sprintf("%d/%d %s", ai.Socktype, ai.Protocol, fmtSockaddr(ai.Addr))
		if ai.Canonname != "" {
			s += " canon=" + ai.Canonname
		}
		if ai.Flags != flags {
			s += fmt.Sprintf(" flags=%#x", ai.Flags)
		}
		if fam := familyOfSockaddr(ai.Addr); ai.Family != fam {
			s += fmt.Sprintf(" family=%d", ai.Family)
		}
		out = append(out, s)
	}
	return out
}

func familyOfSockaddr(sa unix.Sockaddr) int {
	if _, ok := sa.(*unix.SockaddrInet4); ok {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

func fmtSockaddr(sa unix.Sockaddr) string {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)).String()
	case *unix.SockaddrInet6:
		a := ntop(netip.AddrFrom16(sa.Addr))
		if sa.ZoneId != 0 {
			a += fmt.Sprintf("%%%d", sa.ZoneId)
		}
		return fmt.Sprintf("[%s]:%d", a, sa.Port)
	}
	return fmt.Sprintf("%T", sa)
}

// eaiOf returns the EAI_* code of err, 0 for nil.
func eaiOf(t testing.TB, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ae *AddrinfoError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an *AddrinfoError", err, err)
	}
	return ae.Code
}

type gaiCase struct {
	name          string
	node, service string
	hints         *AddrInfo // nil: glibc's defaults
	want          []string
	err           int
}

func runGaiCases(t *testing.T, s *Sockets, cases []gaiCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := s.Getaddrinfo(c.node, c.service, c.hints)
			flags := defaultHints.Flags
			if c.hints != nil {
				flags = c.hints.Flags
			}
			got := strings.Join(fmtResults(res, flags), ", ")
			want := strings.Join(c.want, ", ")
			if code := eaiOf(t, err); code != c.err || got != want {
				t.Errorf("Getaddrinfo(%q, %q, %+v) = [%s], EAI %d (%v); want [%s], EAI %d",
					c.node, c.service, c.hints, got, code, err, want, c.err)
			}
		})
	}
}

const (
	stream = unix.SOCK_STREAM
	dgram  = unix.SOCK_DGRAM
	inet   = unix.AF_INET
	inet6  = unix.AF_INET6
)

func h(flags, family, socktype, protocol int) *AddrInfo {
	return &AddrInfo{Flags: flags, Family: family, Socktype: socktype, Protocol: protocol}
}

func TestGetaddrinfoFlagsAndFilters(t *testing.T) {
	leakcheck.Check(t)
	s, _ := newResolverSockets(t, "", ResolverConfig{})
	all3 := func(addr string) []string {
		return []string{"1/6 " + addr, "2/17 " + addr, "3/0 " + addr}
	}
	cases := []gaiCase{
		{"numeric v4 nil hints", "127.0.0.1", "", nil, all3("127.0.0.1:0"), 0},
		{"null node loopback", "", "80", h(0, 0, 0, 0), append(all3("[::1]:80"), all3("127.0.0.1:80")...), 0},
		{"null node passive", "", "80", h(AI_PASSIVE, 0, 0, 0), append(all3("0.0.0.0:80"), all3("[::]:80")...), 0},
		{"null node inet", "", "22", h(0, inet, stream, 0), []string{"1/6 127.0.0.1:22"}, 0},
		{"null node inet6 passive", "", "22", h(AI_PASSIVE, inet6, stream, 0), []string{"1/6 [::]:22"}, 0},
		{"null node and service", "", "", h(0, 0, 0, 0), nil, EAI_NONAME},
		{"canonname without node", "", "http", h(AI_CANONNAME, 0, 0, 0), nil, EAI_BADFLAGS},
		{"unknown flag", "127.0.0.1", "22", h(0x800, 0, 0, 0), nil, EAI_BADFLAGS},
		{"high flag", "127.0.0.1", "22", h(0x1000, 0, stream, 0), nil, EAI_BADFLAGS},
		{"AI_IDN accepted", "127.0.0.1", "22", h(0x40, 0, stream, 0), []string{"1/6 127.0.0.1:22"}, 0},
		{"bad family", "127.0.0.1", "ssh", h(0, 7, 0, 0), nil, EAI_FAMILY},
		{"AF_UNIX family", "127.0.0.1", "", h(0, unix.AF_UNIX, stream, 0), nil, EAI_FAMILY},
		{"localhost", "localhost", "http", h(0, 0, 0, 0), []string{"1/6 [::1]:80", "1/6 127.0.0.1:80"}, 0},
		{"localhost canonname", "LocalHost", "http", h(AI_CANONNAME, 0, stream, 0), []string{"1/6 [::1]:80 canon=localhost", "1/6 127.0.0.1:80"}, 0},
		{"localhost inet6", "localhost", "22", h(0, inet6, stream, 0), []string{"1/6 [::1]:22"}, 0},
		{"ip6-localhost inet", "ip6-localhost", "22", h(0, inet, stream, 0), nil, EAI_NONAME},
		{"unknown name", "nosuch.example", "22", h(0, 0, stream, 0), nil, EAI_NONAME},
		{"numerichost name", "localhost", "22", h(AI_NUMERICHOST, 0, 0, 0), nil, EAI_NONAME},
		{"numeric canonname", "127.0.0.1", "22", h(AI_CANONNAME, 0, stream, 0), []string{"1/6 127.0.0.1:22 canon=127.0.0.1"}, 0},
		{"numeric v6 canonname", "::1", "22", h(AI_CANONNAME, 0, stream, 0), []string{"1/6 [::1]:22 canon=::1"}, 0},

		{"v6", "::1", "ssh", h(0, 0, 0, 0), []string{"1/6 [::1]:22"}, 0},
		{"scope number", "fe80::1%1", "ssh", h(0, 0, 0, 0), []string{"1/6 [fe80::1%1]:22"}, 0},
		{"scope name", "fe80::1%lo", "ssh", h(0, 0, 0, 0), []string{"1/6 [fe80::1%1]:22"}, 0},
		{"unknown scope name", "fe80::1%zzz", "ssh", h(0, 0, 0, 0), nil, EAI_NONAME},
		{"scope name on global", "2001:db8::1%lo", "ssh", h(0, 0, 0, 0), nil, EAI_NONAME},
		{"scope number on global", "2001:db8::1%7", "ssh", h(0, 0, 0, 0), []string{"1/6 [2001:db8::1%7]:22"}, 0},
		{"scope too big", "fe80::1%4294967296", "ssh", h(0, 0, 0, 0), nil, EAI_NONAME},
		{"empty scope", "fe80::1%", "ssh", h(0, 0, 0, 0), nil, EAI_NONAME},
		{"v4-compatible", "::1.2.3.4", "1", h(0, 0, stream, 0), []string{"1/6 [::1.2.3.4]:1"}, 0},

		{"v4 for inet6", "127.0.0.1", "ssh", h(0, inet6, 0, 0), nil, EAI_ADDRFAMILY},
		{"v4 for inet6 mapped", "127.0.0.1", "ssh", h(AI_V4MAPPED, inet6, 0, 0), []string{"1/6 [::ffff:127.0.0.1]:22"}, 0},
		{"v6 for inet", "::1", "22", h(0, inet, stream, 0), nil, EAI_ADDRFAMILY},
		{"mapped for inet", "::ffff:127.0.0.1", "22", h(0, inet, stream, 0), []string{"1/6 127.0.0.1:22"}, 0},
		{"mapped for unspec", "::ffff:127.0.0.1", "22", h(0, 0, stream, 0), []string{"1/6 [::ffff:127.0.0.1]:22"}, 0},
		{"v4mapped ignored for unspec", "localhost", "22", h(AI_V4MAPPED, 0, stream, 0), []string{"1/6 [::1]:22", "1/6 127.0.0.1:22"}, 0},

		{"raw with service", "127.0.0.1", "ssh", h(0, 0, unix.SOCK_RAW, 0), nil, EAI_SERVICE},
		{"raw with port", "127.0.0.1", "22", h(0, 0, unix.SOCK_RAW, 0), nil, EAI_SERVICE},
		{"raw without service", "127.0.0.1", "", h(0, 0, unix.SOCK_RAW, 0), []string{"3/0 127.0.0.1:0"}, 0},
		{"seqpacket ssh", "127.0.0.1", "ssh", h(0, 0, unix.SOCK_SEQPACKET, 0), nil, EAI_SERVICE},
		{"seqpacket", "127.0.0.1", "", h(0, 0, unix.SOCK_SEQPACKET, 0), []string{"5/132 127.0.0.1:0"}, 0},
		{"dccp", "127.0.0.1", "", h(0, 0, unix.SOCK_DCCP, 0), []string{"6/33 127.0.0.1:0"}, 0},
		{"tcp protocol", "127.0.0.1", "ssh", h(0, 0, 0, unix.IPPROTO_TCP), []string{"1/6 127.0.0.1:22"}, 0},
		{"udp protocol ssh", "127.0.0.1", "ssh", h(0, 0, 0, unix.IPPROTO_UDP), nil, EAI_SERVICE},
		{"stream udp", "127.0.0.1", "ssh", h(0, 0, stream, unix.IPPROTO_UDP), nil, EAI_SOCKTYPE},
		{"dgram tcp", "127.0.0.1", "", h(0, 0, dgram, unix.IPPROTO_TCP), nil, EAI_SOCKTYPE},
		{"sctp port", "127.0.0.1", "22", h(0, 0, 0, unix.IPPROTO_SCTP), []string{"1/132 127.0.0.1:22"}, 0},
		{"udplite port", "127.0.0.1", "22", h(0, 0, 0, unix.IPPROTO_UDPLITE), []string{"2/136 127.0.0.1:22"}, 0},
		{"dccp port", "127.0.0.1", "22", h(0, 0, 0, unix.IPPROTO_DCCP), []string{"6/33 127.0.0.1:22"}, 0},
		{"odd protocol with port", "127.0.0.1", "22", h(0, 0, 0, 99), nil, EAI_SERVICE},
		{"odd protocol", "127.0.0.1", "", h(0, 0, 0, 99), []string{"3/99 127.0.0.1:0"}, 0},
		{"negative protocol", "127.0.0.1", "", h(0, 0, 0, -1), []string{"3/-1 127.0.0.1:0"}, 0},
		{"unknown socktype", "127.0.0.1", "", h(0, 0, unix.SOCK_PACKET, 0), nil, EAI_SOCKTYPE},
		{"socktype with flags", "127.0.0.1", "", h(0, 0, stream|unix.SOCK_NONBLOCK, 0), nil, EAI_SOCKTYPE},
		{"dgram protocol udp", "127.0.0.1", "", h(0, 0, dgram, unix.IPPROTO_UDP), []string{"2/17 127.0.0.1:0"}, 0},

		{"named tcp and udp", "127.0.0.1", "domain", h(0, 0, 0, 0), []string{"1/6 127.0.0.1:53", "2/17 127.0.0.1:53"}, 0},
		{"named dgram", "127.0.0.1", "domain", h(0, 0, dgram, 0), []string{"2/17 127.0.0.1:53"}, 0},
		{"named tcp only", "127.0.0.1", "http", h(0, 0, 0, 0), []string{"1/6 127.0.0.1:80"}, 0},
		{"alias", "127.0.0.1", "www", h(0, 0, 0, 0), []string{"1/6 127.0.0.1:80"}, 0},
		{"named udp only", "127.0.0.1", "ntp", h(0, 0, 0, 0), []string{"2/17 127.0.0.1:123"}, 0},
		{"named wrong proto", "127.0.0.1", "http", h(0, 0, 0, unix.IPPROTO_UDP), nil, EAI_SERVICE},
		{"unknown service", "127.0.0.1", "nosuch", h(0, 0, 0, 0), nil, EAI_SERVICE},
		{"service case", "127.0.0.1", "SSH", h(0, 0, 0, 0), nil, EAI_SERVICE},
		{"numericserv name", "127.0.0.1", "ssh", h(AI_NUMERICSERV, 0, 0, 0), nil, EAI_NONAME},
		{"numericserv port", "127.0.0.1", "22", h(AI_NUMERICSERV, 0, 0, 0), all3("127.0.0.1:22"), 0},
		{"port 65536 wraps", "127.0.0.1", "65536", h(0, 0, 0, 0), all3("127.0.0.1:0"), 0},
		{"port -1", "127.0.0.1", "-1", h(0, 0, 0, 0), nil, EAI_SERVICE},
		{"port 2^31", "127.0.0.1", "2147483648", h(0, 0, stream, 0), nil, EAI_SERVICE},
		{"port 2^32", "127.0.0.1", "4294967296", h(0, 0, stream, 0), []string{"1/6 127.0.0.1:0"}, 0},
		{"port overflow", "127.0.0.1", "99999999999999999999999", h(0, 0, stream, 0), nil, EAI_SERVICE},
		{"port leading space", "127.0.0.1", " 22", h(0, 0, stream, 0), []string{"1/6 127.0.0.1:22"}, 0},
		{"port trailing space", "127.0.0.1", "22 ", h(0, 0, stream, 0), nil, EAI_SERVICE},
		{"port plus", "127.0.0.1", "+22", h(0, 0, stream, 0), []string{"1/6 127.0.0.1:22"}, 0},
		{"port hex", "127.0.0.1", "0x10", h(0, 0, stream, 0), nil, EAI_SERVICE},

		{"aton short", "127.1", "22", h(0, 0, stream, 0), []string{"1/6 127.0.0.1:22"}, 0},
		{"aton hex", "0x7f.1", "22", h(0, 0, stream, 0), []string{"1/6 127.0.0.1:22"}, 0},
		{"aton octal", "0177.0.0.1", "22", h(0, 0, stream, 0), []string{"1/6 127.0.0.1:22"}, 0},
		{"aton bad octal", "08.0.0.1", "22", h(AI_NUMERICHOST, 0, stream, 0), nil, EAI_NONAME},
		{"aton five parts", "1.2.3.4.5", "22", h(AI_NUMERICHOST, 0, stream, 0), nil, EAI_NONAME},
		{"aton trailing dot", "1.2.3.", "22", h(AI_NUMERICHOST, 0, stream, 0), nil, EAI_NONAME},
		{"aton part too big", "256.1", "22", h(AI_NUMERICHOST, 0, stream, 0), nil, EAI_NONAME},
		{"aton last part max", "1.16777215", "22", h(AI_NUMERICHOST, 0, stream, 0), []string{"1/6 1.255.255.255:22"}, 0},
		{"aton last part too big", "1.16777216", "22", h(AI_NUMERICHOST, 0, stream, 0), nil, EAI_NONAME},
		{"aton one part", "4294967295", "22", h(AI_NUMERICHOST, 0, stream, 0), []string{"1/6 255.255.255.255:22"}, 0},
		{"aton one part too big", "4294967296", "22", h(AI_NUMERICHOST, 0, stream, 0), nil, EAI_NONAME},
		{"aton bare 0x", "0x", "22", h(AI_NUMERICHOST, 0, stream, 0), nil, EAI_NONAME},
		{"aton trailing space", "127.0.0.1 ", "22", h(0, 0, stream, 0), nil, EAI_NONAME},

		{"addrconfig without addresses", "", "22", h(AI_ADDRCONFIG, 0, stream, 0), []string{"1/6 [::1]:22", "1/6 127.0.0.1:22"}, 0},
		{"addrconfig passive", "", "22", h(AI_ADDRCONFIG|AI_PASSIVE, 0, stream, 0), []string{"1/6 0.0.0.0:22", "1/6 [::]:22"}, 0},
		{"addrconfig inet unconfigured", "127.0.0.1", "22", h(AI_ADDRCONFIG, inet, stream, 0), nil, EAI_NONAME},
		{"addrconfig inet6 unconfigured", "::1", "22", h(AI_ADDRCONFIG, inet6, stream, 0), nil, EAI_NONAME},
	}
	runGaiCases(t, s, cases)
}

func TestGetaddrinfoHostsFamilies(t *testing.T) {
	leakcheck.Check(t)
	hosts := "192.0.2.7 v4only\n192.0.2.8 dual\n2001:db8::8 dual\n2001:db8::9 v6only\n"
	s, _ := newResolverSockets(t, hosts, ResolverConfig{})
	runGaiCases(t, s, []gaiCase{
		{"unspec both", "dual", "22", h(0, 0, stream, 0), []string{"1/6 [2001:db8::8]:22", "1/6 192.0.2.8:22"}, 0},
		{"inet", "dual", "22", h(0, inet, stream, 0), []string{"1/6 192.0.2.8:22"}, 0},
		{"inet6", "dual", "22", h(0, inet6, stream, 0), []string{"1/6 [2001:db8::8]:22"}, 0},
		{"inet6 v4only", "v4only", "22", h(0, inet6, stream, 0), nil, EAI_NONAME},
		{"inet6 v4mapped", "v4only", "22", h(AI_V4MAPPED, inet6, stream, 0), []string{"1/6 [::ffff:192.0.2.7]:22"}, 0},
		{"inet6 v4mapped has v6", "dual", "22", h(AI_V4MAPPED, inet6, stream, 0), []string{"1/6 [2001:db8::8]:22"}, 0},
		{"inet6 v4mapped all", "dual", "22", h(AI_V4MAPPED|AI_ALL, inet6, stream, 0), []string{"1/6 [2001:db8::8]:22", "1/6 [::ffff:192.0.2.8]:22"}, 0},
		{"all without v4mapped", "v4only", "22", h(AI_ALL, inet6, stream, 0), nil, EAI_NONAME},
		{"inet v6only", "v6only", "22", h(0, inet, stream, 0), nil, EAI_NONAME},
		{"no defaults with a file", "localhost", "22", h(0, 0, stream, 0), nil, EAI_NONAME},
	})
}

// TestGetaddrinfoAddrconfig checks AI_ADDRCONFIG on a stack with an IPv4
// address besides loopback: AF_UNSPEC narrows to AF_INET.
func TestGetaddrinfoAddrconfig(t *testing.T) {
	leakcheck.Check(t)
	st := newStackWithNIC(t, "192.0.2.1/24")
	s := New(st)
	runGaiCases(t, s, []gaiCase{
		{"narrowed", "", "22", h(AI_ADDRCONFIG, 0, stream, 0), []string{"1/6 127.0.0.1:22"}, 0},
		{"narrowed numeric", "::1", "22", h(AI_ADDRCONFIG, 0, stream, 0), nil, EAI_ADDRFAMILY},
		{"inet ok", "127.0.0.1", "22", h(AI_ADDRCONFIG, inet, stream, 0), []string{"1/6 127.0.0.1:22"}, 0},
		{"inet6 unconfigured", "::1", "22", h(AI_ADDRCONFIG, inet6, stream, 0), nil, EAI_NONAME},
		{"scope by NIC name", "fe80::1%eth2", "22", h(0, 0, stream, 0), []string{"1/6 [fe80::1%2]:22"}, 0},
	})
}

type gniCase struct {
	name       string
	sa         unix.Sockaddr
	flags      int
	host, serv string
	err        int
}

func v4sa(a string, port int) *unix.SockaddrInet4 {
	return &unix.SockaddrInet4{Port: port, Addr: netip.MustParseAddr(a).As4()}
}

func v6sa(a string, port int, zone uint32) *unix.SockaddrInet6 {
	return &unix.SockaddrInet6{Port: port, ZoneId: zone, Addr: netip.MustParseAddr(a).As16()}
}

func runGniCases(t *testing.T, s *Sockets, cases []gniCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			host, serv, err := s.Getnameinfo(c.sa, c.flags)
			if code := eaiOf(t, err); host != c.host || serv != c.serv || code != c.err {
				t.Errorf("Getnameinfo(%s, %#x) = %q, %q, EAI %d; want %q, %q, EAI %d",
					fmtSockaddr(c.sa), c.flags, host, serv, code, c.host, c.serv, c.err)
			}
		})
	}
}

func TestGetnameinfo(t *testing.T) {
	leakcheck.Check(t)
	s, _ := newResolverSockets(t, "", ResolverConfig{})
	hostname, _ := os.Hostname()
	runGniCases(t, s, []gniCase{
		{"name", v4sa("127.0.0.1", 22), 0, "localhost", "ssh", 0},
		{"numerichost", v4sa("127.0.0.1", 22), NI_NUMERICHOST, "127.0.0.1", "ssh", 0},
		{"numericserv", v4sa("127.0.0.1", 22), NI_NUMERICSERV, "localhost", "22", 0},
		{"dgram", v4sa("127.0.0.1", 53), NI_DGRAM, "localhost", "domain", 0},
		{"tcp 514", v4sa("127.0.0.1", 514), 0, "localhost", "shell", 0},
		{"udp 514", v4sa("127.0.0.1", 514), NI_DGRAM, "localhost", "syslog", 0},
		{"udp-only service over tcp", v4sa("127.0.0.1", 123), 0, "localhost", "123", 0},
		{"unknown port", v4sa("127.0.0.1", 9999), 0, "localhost", "9999", 0},
		{"namereqd found", v4sa("127.0.0.1", 22), NI_NAMEREQD, "localhost", "ssh", 0},
		{"namereqd numerichost", v4sa("127.0.0.1", 22), NI_NAMEREQD | NI_NUMERICHOST, "", "", EAI_NONAME},
		{"unknown address", v4sa("10.9.9.9", 22), 0, "10.9.9.9", "ssh", 0},
		{"unknown address namereqd", v4sa("10.9.9.9", 22), NI_NAMEREQD, "", "", EAI_NONAME},
		{"nofqdn", v4sa("127.0.0.1", 22), NI_NOFQDN, "localhost", "ssh", 0},
		{"idn flags accepted", v4sa("127.0.0.1", 22), 0x80, "localhost", "ssh", 0},
		{"bad flag", v4sa("127.0.0.1", 22), 0x100, "", "", EAI_BADFLAGS},
		{"v6 name", v6sa("::1", 22, 0), 0, "localhost", "ssh", 0},
		{"v6 namereqd unknown", v6sa("2001:db8::1", 22, 0), NI_NAMEREQD, "", "", EAI_NONAME},
		{"link-local scope name", v6sa("fe80::1", 22, 1), NI_NUMERICHOST, "fe80::1%lo", "ssh", 0},
		{"link-local unknown scope", v6sa("fe80::1", 22, 99), NI_NUMERICHOST, "fe80::1%99", "ssh", 0},
		{"multicast link scope", v6sa("ff02::1", 22, 1), NI_NUMERICHOST, "ff02::1%lo", "ssh", 0},
		{"global scope number", v6sa("2001:db8::1", 22, 1), NI_NUMERICHOST, "2001:db8::1%1", "ssh", 0},
		{"mapped not in hosts", v6sa("::ffff:127.0.0.1", 22, 0), 0, "::ffff:127.0.0.1", "ssh", 0},
		{"v4-compatible", v6sa("::1.2.3.4", 22, 0), NI_NUMERICHOST, "::1.2.3.4", "ssh", 0},
		{"compressed", v6sa("2001:db8:0:0:1:0:0:1", 80, 0), NI_NUMERICHOST | NI_NUMERICSERV, "2001:db8::1:0:0:1", "80", 0},
		{"unix", &unix.SockaddrUnix{Name: "/run/x.sock"}, 0, hostname, "/run/x.sock", 0},
		{"unix numerichost", &unix.SockaddrUnix{Name: "/run/x.sock"}, NI_NUMERICHOST, "localhost", "/run/x.sock", 0},
		{"nil", nil, 0, "", "", EAI_FAMILY},
		{"link layer", &unix.SockaddrLinklayer{}, 0, "", "", EAI_FAMILY},
	})
}

func TestAddrinfoErrorText(t *testing.T) {
	leakcheck.Check(t)
	s, _ := newResolverSockets(t, "", ResolverConfig{})
	_, err := s.Getaddrinfo("127.0.0.1", "nosuch", nil)
	if err == nil || err.Error() != "Servname not supported for ai_socktype" {
		t.Errorf("Getaddrinfo(127.0.0.1, nosuch) error = %v, want glibc's EAI_SERVICE text", err)
	}
}
