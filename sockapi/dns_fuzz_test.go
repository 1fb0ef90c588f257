package sockapi

import (
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// FuzzParseReply feeds arbitrary bytes to the response parser as the
// answer to a fixed A or AAAA query: it must never panic, and whatever it
// accepts must answer that query with addresses of the asked family.
func FuzzParseReply(f *testing.F) {
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
