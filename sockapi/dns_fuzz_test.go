//go:build linux

package sockapi

import (
	"github.com/ustack/ustack/internal/leakcheck"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"
)

// FuzzParseReply feeds arbitrary bytes to the response parser as the
// answer to a fixed A or AAAA query: it must never panic, and whatever it
// accepts must answer that query with addresses of the asked family.
func FuzzParseReply(f *testing.F) {
	leakcheck.Check(f)
	qA := dnsmessage.Question{Name: dnsmessage.MustNewName("www.test."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}
	qAAAA := qA
	qAAAA.Type = dnsmessage.TypeAAAA
	d := &testDNS{records: map[string][]dnsmessage.Resource{}, rcodes: map[string]dnsmessage.RCode{}}
	d.add("www.test.", "CNAME web.test.", "A 192.0.2.1", "AAAA 2001:db8::1")
	d.add("web.test.", "A 192.0.2.2", "AAAA 2001:db8::2", "CNAME www.test.")
	for _, q := range []dnsmessage.Question{qA, qAAAA} {
		req, err := newQuery(0x1234, q)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(d.answer(req, "tcp"), q.Type == dnsmessage.TypeAAAA)
	}
	f.Add([]byte{0x12, 0x34, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0}, false)
	f.Fuzz(func(t *testing.T, msg []byte, aaaa bool) {
		q := qA
		if aaaa {
			q = qAAAA
		}
		r, err := parseReply(msg, 0x1234, q)
		if err != nil {
			return
		}
		for _, a := range r.addrs {
			if a.Is4() == aaaa {
				t.Fatalf("parseReply(%x) for %v returned address %v", msg, q.Type, a)
			}
		}
		if (r.truncated || r.rcode != dnsmessage.RCodeSuccess) && len(r.addrs) > 0 {
			t.Fatalf("parseReply(%x) used the answers of a truncated or failed reply", msg)
		}
	})
}

// FuzzGetaddrinfo drives the engine with arbitrary arguments over the
// hosts table (no DNS): it must not panic, must fail only with a known
// EAI code, and its results must agree with the hints.
func FuzzGetaddrinfo(f *testing.F) {
	leakcheck.Check(f)
	f.Add("127.0.0.1", "80", 0, 0, 0, 0)
	f.Add("fe80::1%lo", "ssh", AI_CANONNAME, unix.AF_INET6, unix.SOCK_STREAM, 0)
	f.Add("", "65536", AI_PASSIVE|AI_ADDRCONFIG, 0, 0, unix.IPPROTO_UDP)
	f.Add("localhost", "-1", AI_V4MAPPED|AI_ALL, unix.AF_INET6, unix.SOCK_RAW, 99)
	f.Add("0x7f.1", " +22", AI_NUMERICHOST|AI_NUMERICSERV, unix.AF_INET, 0, unix.IPPROTO_SCTP)
	st := newStackWithNIC(f, "192.0.2.1/24")
	s := New(st)
	known := map[int]bool{EAI_BADFLAGS: true, EAI_NONAME: true, EAI_FAMILY: true,
		EAI_SOCKTYPE: true, EAI_SERVICE: true, EAI_ADDRFAMILY: true}
	f.Fuzz(func(t *testing.T, node, service string, flags, family, socktype, protocol int) {
		hints := &AddrInfo{Flags: flags, Family: family, Socktype: socktype, Protocol: protocol}
		res, err := s.Getaddrinfo(node, service, hints)
		if err != nil {
			if code := eaiOf(t, err); !known[code] || res != nil {
				t.Fatalf("Getaddrinfo(%q, %q, %+v) = %v, %v", node, service, hints, res, err)
			}
			return
		}
		if len(res) == 0 {
			t.Fatalf("Getaddrinfo(%q, %q, %+v) = no results and no error", node, service, hints)
		}
		for i, ai := range res {
			fam := familyOfSockaddr(ai.Addr)
			if ai.Family != fam || family != unix.AF_UNSPEC && fam != family ||
				socktype != 0 && ai.Socktype != socktype || ai.Flags != flags ||
				i > 0 && ai.Canonname != "" || i == 0 && (ai.Canonname != "") != (flags&AI_CANONNAME != 0) {
				t.Fatalf("Getaddrinfo(%q, %q, %+v) result %d = %+v", node, service, hints, i, ai)
			}
		}
	})
}
