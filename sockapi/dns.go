//go:build linux

package sockapi

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// This file builds DNS queries and reads DNS responses; dns_client.go
// moves them over the userspace stack. Messages are built and parsed with
// golang.org/x/net/dns/dnsmessage, which bounds every read by the message
// length, so a hostile or broken answer is an error here, never a panic.

// errBadReply is a response that does not answer our query or cannot be
// parsed. Over UDP it is ignored, as glibc's send_dg ignores answers whose
// ID or question do not match, and the wait continues.
var errBadReply = errors.New("dns: malformed or mismatched response")

// newQuery builds a recursive query for name and type with the given ID,
// without EDNS0, as glibc sends by default.
func newQuery(id uint16, q dnsmessage.Question) ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), dnsmessage.Header{ID: id, RecursionDesired: true})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	return b.Finish()
}

// dnsReply is what one response says about one query.
type dnsReply struct {
	rcode     dnsmessage.RCode
	truncated bool
	canon     string       // the owner name of the records used, after CNAMEs
	addrs     []netip.Addr // A or AAAA answers
	ptr       string       // the first PTR answer
}

// parseReply checks that msg is a response to q sent with id, then reads
// its answer section the way glibc's getanswer_r does: records are used
// only when their owner is the name being resolved, which starts as the
// question's name and moves along each CNAME; records of other types or
// classes are skipped.
func parseReply(msg []byte, id uint16, q dnsmessage.Question) (dnsReply, error) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil || h.ID != id || !h.Response || h.OpCode != 0 {
		return dnsReply{}, errBadReply
	}
	r := dnsReply{rcode: h.RCode, truncated: h.Truncated}
	qs, err := p.AllQuestions()
	if err != nil || len(qs) != 1 || !sameQuestion(qs[0], q) {
		return dnsReply{}, errBadReply
	}
	if h.Truncated || h.RCode != dnsmessage.RCodeSuccess {
		return r, nil // a truncated answer is retried over TCP whole
	}
	owner := q.Name.String()
	for {
		ah, err := p.AnswerHeader()
		if err == dnsmessage.ErrSectionDone {
			break
		}
		if err != nil {
			return dnsReply{}, errBadReply
		}
		if err := r.addAnswer(&p, ah, q.Type, &owner); err != nil {
			return dnsReply{}, errBadReply
		}
	}
	r.canon = strings.TrimSuffix(owner, ".")
	return r, nil
}

// addAnswer uses or skips one answer record whose header is ah.
func (r *dnsReply) addAnswer(p *dnsmessage.Parser, ah dnsmessage.ResourceHeader, qtype dnsmessage.Type, owner *string) error {
	if ah.Class != dnsmessage.ClassINET || !asciiEqualFold(ah.Name.String(), *owner) {
		return p.SkipAnswer()
	}
	switch {
	case ah.Type == dnsmessage.TypeCNAME && qtype != dnsmessage.TypeCNAME:
		c, err := p.CNAMEResource()
		*owner = c.CNAME.String()
		return err
	case ah.Type != qtype:
		return p.SkipAnswer()
	case ah.Type == dnsmessage.TypeA:
		a, err := p.AResource()
		r.addrs = append(r.addrs, netip.AddrFrom4(a.A))
		return err
	case ah.Type == dnsmessage.TypeAAAA:
		a, err := p.AAAAResource()
		r.addrs = append(r.addrs, netip.AddrFrom16(a.AAAA))
		return err
	case ah.Type == dnsmessage.TypePTR:
		ptr, err := p.PTRResource()
		if r.ptr == "" {
			r.ptr = strings.TrimSuffix(ptr.PTR.String(), ".")
		}
		return err
	}
	return p.SkipAnswer()
}

// sameQuestion compares questions as glibc's res_queriesmatch does: type
// and class exactly, the name without regard to ASCII case.
func sameQuestion(a, b dnsmessage.Question) bool {
	return a.Type == b.Type && a.Class == b.Class && asciiEqualFold(a.Name.String(), b.Name.String())
}

// reverseName is the PTR query name for a: d.c.b.a.in-addr.arpa. for
// IPv4 (and v4-mapped IPv6, which glibc's nss_dns unmaps), nibbles under
// ip6.arpa. for IPv6.
func reverseName(a netip.Addr) string {
	a = a.Unmap()
	var sb strings.Builder
	b := a.AsSlice()
	if a.Is4() {
		for i := len(b) - 1; i >= 0; i-- {
			sb.WriteString(strconv.Itoa(int(b[i])))
			sb.WriteByte('.')
		}
		sb.WriteString("in-addr.arpa.")
		return sb.String()
	}
	const hex = "0123456789abcdef"
	for i := len(b) - 1; i >= 0; i-- {
		sb.WriteByte(hex[b[i]&0xf])
		sb.WriteByte('.')
		sb.WriteByte(hex[b[i]>>4])
		sb.WriteByte('.')
	}
	sb.WriteString("ip6.arpa.")
	return sb.String()
}

// asciiEqualFold compares DNS names as RFC 4343 says: ASCII letters
// without regard to case, every other byte exactly.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
