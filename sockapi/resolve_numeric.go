//go:build linux

package sockapi

import (
	"math"
	"net/netip"
	"strings"
)

// inetAtonExact parses s as inet_aton(3) does, and as glibc's
// getaddrinfo does through __inet_aton_exact: one to four parts separated
// by dots, each decimal, octal (leading 0) or hex (leading 0x); the last
// part fills the remaining bytes ("127.1" is 127.0.0.1). Unlike
// inet_aton, nothing may follow the address, not even a space.
func inetAtonExact(s string) (netip.Addr, bool) {
	var parts []uint64
	for i := 0; ; {
		v, n, ok := atonPart(s[i:])
		if !ok {
			return netip.Addr{}, false
		}
		parts = append(parts, v)
		i += n
		if i == len(s) {
			break
		}
		if s[i] != '.' || len(parts) == 4 {
			return netip.Addr{}, false
		}
		i++
	}
	var val uint64
	for i, p := range parts[:len(parts)-1] {
		if p > 0xff {
			return netip.Addr{}, false
		}
		val |= p << (24 - 8*i)
	}
	last := parts[len(parts)-1]
	if last > math.MaxUint32>>(8*(len(parts)-1)) {
		return netip.Addr{}, false
	}
	val |= last
	return netip.AddrFrom4([4]byte{byte(val >> 24), byte(val >> 16), byte(val >> 8), byte(val)}), true
}

// atonPart parses one inet_aton part at the start of s, returning its
// value, its length and whether it was well formed. Values saturate above
// 2^32, which every caller rejects.
func atonPart(s string) (v uint64, n int, ok bool) {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, 0, false
	}
	base := uint64(10)
	if s[0] == '0' {
		base, n = 8, 1
		if len(s) > 1 && (s[1] == 'x' || s[1] == 'X') {
			base, n = 16, 2
			if len(s) == 2 || !isHexDigit(s[2]) {
				return 0, 0, false // "0x" needs a hex digit
			}
		}
	}
	for ; n < len(s); n++ {
		d, isDigit := digitVal(s[n])
		if !isDigit || d >= base {
			if base == 8 && isDigit && d < 10 {
				return 0, 0, false // 08 and 09 are not octal
			}
			break
		}
		v = min(v*base+d, 1<<33)
	}
	return v, n, true
}

func isHexDigit(c byte) bool {
	_, ok := digitVal(c)
	return ok
}

func digitVal(c byte) (uint64, bool) {
	switch {
	case c >= '0' && c <= '9':
		return uint64(c - '0'), true
	case c >= 'a' && c <= 'f':
		return uint64(c-'a') + 10, true
	case c >= 'A' && c <= 'F':
		return uint64(c-'A') + 10, true
	}
	return 0, false
}

// parseIPv6 parses s as inet_pton(AF_INET6) does, with an optional
// "%scope" suffix left for the caller.
func parseIPv6(s string) (addr netip.Addr, scope string, hasScope bool, ok bool) {
	host := s
	if i := strings.IndexByte(s, '%'); i >= 0 {
		host, scope, hasScope = s[:i], s[i+1:], true
	}
	if !strings.Contains(host, ":") {
		return netip.Addr{}, "", false, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is6() || a.Zone() != "" {
		return netip.Addr{}, "", false, false
	}
	return a, scope, hasScope, true
}

// strtoul is C's strtoul(s, &end, 10) on a 64-bit system: leading white
// space, an optional sign, decimal digits; it saturates at 2^64-1 and
// negates for '-'. It returns the value and whether the whole of s was
// consumed, which is how glibc's getaddrinfo decides that a service is
// numeric.
func strtoul(s string) (uint64, bool) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	start := i
	var v uint64
	overflow := false
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		d := uint64(s[i] - '0')
		if v > (math.MaxUint64-d)/10 {
			overflow = true
		}
		v = v*10 + d
	}
	if i == start {
		return 0, s == "" // no digits: end points at s itself
	}
	if overflow {
		return math.MaxUint64, i == len(s)
	}
	if neg {
		v = -v
	}
	return v, i == len(s)
}

// scopeID parses the part after '%' of a numeric IPv6 host as glibc's
// __inet6_scopeid_pton does: an interface name for link-local and
// multicast link- or node-local addresses, else a decimal number that
// fits in 32 bits.
func scopeID(a netip.Addr, scope string, ifIndex func(string) (int, bool)) (uint32, bool) {
	if a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() {
		if n, ok := ifIndex(scope); ok && n != 0 {
			return uint32(n), true
		}
	}
	if scope == "" {
		return 0, false
	}
	v, whole := strtoul(scope)
	if !whole || v > math.MaxUint32 {
		return 0, false
	}
	return uint32(v), true
}
