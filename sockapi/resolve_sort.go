//go:build linux

package sockapi

import (
	"math/bits"
	"net/netip"
)

// sortRFC3484 orders addresses as glibc's getaddrinfo does (rfc3484_sort
// with its built-in gai.conf defaults): it finds the source address each
// destination would use, then applies RFC 3484 section 6's rules 1
// (usable), 2 (matching scope), 5 (matching label), 6 (precedence), 8
// (smaller scope), 9 (longest matching prefix) and 10 (keep order).
// Rules 3, 4 and 7 need per-address flags (deprecated, home, native
// transport) that neither backend tracks; no address carries them, so
// they never decide.
func sortRFC3484(b resolverBackend, addrs []scopedAddr) []scopedAddr {
	ents := make([]*sortEntry, len(addrs))
	for i, a := range addrs {
		ents[i] = &sortEntry{a: a, index: i}
		ents[i].src, ents[i].usable = b.source(netip.AddrPortFrom(a.addr, 0), a.scope)
	}
	msort(ents, make([]*sortEntry, len(ents)), func(x, y *sortEntry) int {
		if c := compareRFC3484(x, y); c != 0 {
			return c
		}
		return x.index - y.index // rule 10
	})
	out := make([]scopedAddr, len(ents))
	for i, e := range ents {
		out[i] = e.a
	}
	return out
}

type sortEntry struct {
	a      scopedAddr
	index  int
	src    netip.Prefix
	usable bool
}

// msort is glibc's qsort for small arrays (msort_with_tmp): a top-down
// merge sort that splits at n/2 and takes from the left half on ties.
// The RFC 3484 comparison is not transitive (rule 9 only compares
// addresses of one family), so the result depends on the algorithm; using
// glibc's makes it the same as glibc's.
func msort(a, tmp []*sortEntry, cmp func(x, y *sortEntry) int) {
	if len(a) <= 1 {
		return
	}
	n1 := len(a) / 2
	msort(a[:n1], tmp, cmp)
	msort(a[n1:], tmp, cmp)
	l, r, out := a[:n1], a[n1:], tmp[:0]
	for len(l) > 0 && len(r) > 0 {
		if cmp(l[0], r[0]) <= 0 {
			out, l = append(out, l[0]), l[1:]
		} else {
			out, r = append(out, r[0]), r[1:]
		}
	}
	out = append(out, l...)
	copy(a, out) // what is left of r is already in place
}

// compareRFC3484 returns <0 when x goes first, >0 when y does, 0 when the
// rules do not decide.
func compareRFC3484(x, y *sortEntry) int {
	if x.usable != y.usable { // rule 1
		return preferIf(x.usable)
	}
	dx, dy := addrScope(x.a.addr), addrScope(y.a.addr)
	if x.usable {
		mx, my := dx == addrScope(x.src.Addr()), dy == addrScope(y.src.Addr())
		if mx != my { // rule 2
			return preferIf(mx)
		}
		mx = policyLabel(x.a.addr) == policyLabel(x.src.Addr())
		my = policyLabel(y.a.addr) == policyLabel(y.src.Addr())
		if mx != my { // rule 5
			return preferIf(mx)
		}
	}
	if px, py := policyPrecedence(x.a.addr), policyPrecedence(y.a.addr); px != py { // rule 6
		return preferIf(px > py)
	}
	if dx != dy { // rule 8
		return preferIf(dx < dy)
	}
	if x.usable && x.a.addr.Is4() == y.a.addr.Is4() { // rule 9
		if lx, ly := matchLen(x), matchLen(y); lx != ly {
			return preferIf(lx > ly)
		}
	}
	return 0
}

func preferIf(x bool) int {
	if x {
		return -1
	}
	return 1
}

// matchLen is rule 9's common prefix length of destination and source.
// For IPv4 glibc counts it only inside the source's subnet: outside it a
// common prefix means nothing, so it is 0 there.
func matchLen(e *sortEntry) int {
	d, s := e.a.addr.As16(), e.src.Addr().As16()
	n := 0
	for i := range d {
		x := d[i] ^ s[i]
		n += bits.LeadingZeros8(x)
		if x != 0 {
			break
		}
	}
	if e.a.addr.Is4() {
		n -= 96
		if n < e.src.Bits() {
			return 0
		}
	}
	return n
}

// addrScope is glibc's get_scope: IPv4 loopback and link-local are scope
// 2, other IPv4 14; IPv6 multicast carries its scope, loopback and
// link-local are 2, site-local 5, the rest 14.
func addrScope(a netip.Addr) int {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		if b[0] == 127 || b[0] == 169 && b[1] == 254 {
			return 2
		}
		return 14
	}
	b := a.As16()
	switch {
	case a.IsMulticast():
		return int(b[1] & 0xf)
	case a.IsLinkLocalUnicast(), a.IsLoopback():
		return 2
	case b[0] == 0xfe && b[1]&0xc0 == 0xc0:
		return 5
	}
	return 14
}

type policyEntry struct {
	prefix netip.Prefix
	value  int
}

// glibc's default label and precedence tables (those of RFC 3484 plus
// ULA and Teredo labels), matched longest prefix first; IPv4 addresses
// are matched in their v4-mapped form.
var (
	defaultLabels = []policyEntry{
		{netip.MustParsePrefix("::1/128"), 0},
		{netip.MustParsePrefix("::ffff:0:0/96"), 4},
		{netip.MustParsePrefix("::/96"), 3},
		{netip.MustParsePrefix("2001::/32"), 7},
		{netip.MustParsePrefix("2002::/16"), 2},
		{netip.MustParsePrefix("fec0::/10"), 5},
		{netip.MustParsePrefix("fc00::/7"), 6},
		{netip.MustParsePrefix("::/0"), 1},
	}
	defaultPrecedence = []policyEntry{
		{netip.MustParsePrefix("::1/128"), 50},
		{netip.MustParsePrefix("::ffff:0:0/96"), 10},
		{netip.MustParsePrefix("::/96"), 20},
		{netip.MustParsePrefix("2002::/16"), 30},
		{netip.MustParsePrefix("::/0"), 40},
	}
)

func policyLabel(a netip.Addr) int      { return policyLookup(defaultLabels, a) }
func policyPrecedence(a netip.Addr) int { return policyLookup(defaultPrecedence, a) }

func policyLookup(table []policyEntry, a netip.Addr) int {
	a16 := netip.AddrFrom16(a.As16())
	for _, e := range table {
		if e.prefix.Contains(a16) {
			return e.value
		}
	}
	return 0
}
