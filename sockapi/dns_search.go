//go:build linux

package sockapi

import (
	"context"
	"strings"

	"golang.org/x/net/dns/dnsmessage"
)

// search resolves name through the search list as glibc's res_search
// does, asking for A and/or AAAA records of each candidate name:
//   - a name with at least Ndots dots, or a trailing dot, is first tried
//     as it is;
//   - a name without a trailing dot is then tried with each search
//     domain appended, going on after NXDOMAIN, "no data" or SERVFAIL and
//     stopping at any other failure (a server that never answers);
//   - a name not yet tried as it is is tried last.
//
// The failure reported is that of the first as-is try if there was one,
// else "no data" if any candidate had it, else "try again" if any had
// SERVFAIL, else that of the last try.
func (c *dnsClient) search(ctx context.Context, name string, want4, want6 bool) (hostAnswer, error) {
	st := &searchState{c: c, ctx: ctx, want4: want4, want6: want6, saved: hOK}
	dots := strings.Count(name, ".")
	trailing := strings.HasSuffix(name, ".")
	triedAsIs, rootOnList := false, false
	if dots >= orDefault(c.cfg.Ndots, defaultNdots) || trailing {
		if ans, ok := st.try(name); ok {
			return ans, nil
		}
		st.saved, triedAsIs = st.last, true
	}
	for _, d := range c.cfg.Search {
		if trailing {
			break
		}
		fqdn := name + "." + strings.TrimPrefix(d, ".")
		if strings.TrimPrefix(d, ".") == "" {
			fqdn, rootOnList = name, true
		}
		if ans, ok := st.try(fqdn); ok {
			return ans, nil
		}
		if !st.goOn() {
			break
		}
	}
	if !triedAsIs && !rootOnList {
		if ans, ok := st.try(name); ok {
			return ans, nil
		}
	}
	return hostAnswer{}, eai(eaiOfHErrno(st.failure()))
}

// searchState is what res_search remembers across its tries.
type searchState struct {
	c            *dnsClient
	ctx          context.Context
	want4, want6 bool

	saved, last  hErrno // the first as-is try's failure; the last try's
	lastServfail bool   // the last try failed on SERVFAIL answers
	gotNoData    bool   // some try found the name without the records
	gotServfail  bool   // some try failed on SERVFAIL answers
}

func (st *searchState) try(fqdn string) (hostAnswer, bool) {
	ans, h, servfail := st.c.lookupName(st.ctx, fqdn, st.want4, st.want6)
	st.last, st.lastServfail = h, servfail
	st.gotNoData = st.gotNoData || h == hNoData
	st.gotServfail = st.gotServfail || h == hTryAgain && servfail
	return ans, h == hOK
}

// goOn reports whether the search list walk continues after a failed
// try: after NXDOMAIN, "no data" or SERVFAIL, not after silence,
// REFUSED, NOTIMP or FORMERR.
func (st *searchState) goOn() bool {
	return st.last == hNotFound || st.last == hNoData || st.last == hTryAgain && st.lastServfail
}

// failure is the h_errno res_search ends with.
func (st *searchState) failure() hErrno {
	switch {
	case st.saved != hOK:
		return st.saved
	case st.gotNoData:
		return hNoData
	case st.gotServfail:
		return hTryAgain
	}
	return st.last
}

// eaiOfHErrno maps the resolver's final h_errno to getaddrinfo's code,
// as glibc's gaih_inet does: HOST_NOT_FOUND (and NO_RECOVERY, which
// leaves no address) is EAI_NONAME, NO_DATA EAI_NODATA, TRY_AGAIN
// EAI_AGAIN.
func eaiOfHErrno(h hErrno) int {
	switch h {
	case hNoData:
		return EAI_NODATA
	case hTryAgain:
		return EAI_AGAIN
	}
	return EAI_NONAME
}

// lookupName queries one fully qualified candidate for A then AAAA
// records, as glibc's gethostbyname4 asks for both. The name resolves
// when either query returns addresses; otherwise the A query's failure
// is reported unless it was "no data". AAAA is not asked once A found
// the name does not exist or no server answered.
func (c *dnsClient) lookupName(ctx context.Context, fqdn string, want4, want6 bool) (hostAnswer, hErrno, bool) {
	if !strings.HasSuffix(fqdn, ".") {
		fqdn += "."
	}
	var ans hostAnswer
	st, servfail := hNoData, false
	for _, t := range []struct {
		want  bool
		qtype dnsmessage.Type
	}{{want4, dnsmessage.TypeA}, {want6, dnsmessage.TypeAAAA}} {
		if !t.want {
			continue
		}
		res := c.query(ctx, fqdn, t.qtype)
		if res.status == hOK {
			ans.addrs = append(ans.addrs, res.reply.addrs...)
			if ans.canon == "" {
				ans.canon = res.reply.canon
			}
			continue
		}
		if st == hNoData {
			st, servfail = res.status, res.servfail
		}
		if res.status == hNotFound || res.status == hTryAgain && !res.servfail {
			break
		}
	}
	if len(ans.addrs) > 0 {
		return ans, hOK, false
	}
	return hostAnswer{}, st, servfail
}
