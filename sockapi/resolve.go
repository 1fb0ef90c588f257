//go:build linux

package sockapi

import (
	"context"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"
)

// This file is the getaddrinfo(3)/getnameinfo(3) engine shared by the host
// resolver (resolve_host.go) and the userspace one (resolve_user.go). It
// follows glibc 2.36 (sysdeps/posix/getaddrinfo.c, inet/getnameinfo.c) in
// everything around the name lookup itself: flag and family checks and
// their order, numeric hosts and services, the socket-type table, the
// NULL-node addresses, AI_ADDRCONFIG, AI_V4MAPPED/AI_ALL, RFC 3484 sorting
// and the EAI_* code of every failure. Only how names and addresses are
// looked up differs, behind resolverBackend.

// resolverBackend looks up what the engine cannot compute itself.
type resolverBackend interface {
	// lookupHost resolves a non-numeric name to addresses of the wanted
	// families, in the order the source gave them, and its canonical
	// name when canon is set. Failures are *AddrinfoError: EAI_NONAME (no such name),
	// EAI_NODATA (the name exists without such addresses), EAI_AGAIN
	// (temporary failure) or EAI_FAIL.
	lookupHost(ctx context.Context, name string, want4, want6, canon bool) (hostAnswer, error)
	// lookupAddr finds the name of an address; EAI_NONAME if it has none.
	lookupAddr(ctx context.Context, a netip.Addr) (string, error)
	// interfaceIndex and interfaceName map IPv6 scope names and numbers.
	interfaceIndex(name string) (int, bool)
	interfaceName(index int) (string, bool)
	// addrFamilies reports whether a non-loopback IPv4 and IPv6 address
	// is configured, for AI_ADDRCONFIG.
	addrFamilies() (v4, v6 bool)
	// source returns the source address (and its prefix length) that a
	// datagram to dst would leave from, or ok=false when dst is
	// unreachable, for RFC 3484 sorting.
	source(dst netip.AddrPort, zone uint32) (src netip.Prefix, ok bool)
	// domain is the local domain that NI_NOFQDN strips.
	domain() string
	// nodename names this host for AF_UNIX addresses.
	nodename() string
}

// hostAnswer is the result of a name lookup.
type hostAnswer struct {
	canon string
	addrs []netip.Addr
}

// eai returns the getaddrinfo error with code.
func eai(code int) error { return &AddrinfoError{Code: code} }

// eaiCode returns the EAI_* code of err, EAI_SYSTEM for other errors.
func eaiCode(err error) int {
	if e, ok := err.(*AddrinfoError); ok {
		return e.Code
	}
	return EAI_SYSTEM
}

// Flags glibc accepts besides the AI_* constants: AI_IDN, AI_CANONIDN and
// the two deprecated IDN flags. They are accepted and ignored here (names
// are not IDNA-encoded; see docs/resolver.md).
const (
	aiIDNFlags = 0x0040 | 0x0080 | 0x0100 | 0x0200
	aiAllFlags = AI_PASSIVE | AI_CANONNAME | AI_NUMERICHOST | AI_V4MAPPED |
		AI_ALL | AI_ADDRCONFIG | AI_NUMERICSERV | aiIDNFlags
	// NI_IDN and the deprecated NI_IDN_* flags, accepted and ignored.
	niAllFlags = NI_NUMERICHOST | NI_NUMERICSERV | NI_NOFQDN | NI_NAMEREQD |
		NI_DGRAM | 0x20 | 0x40 | 0x80
)

// defaultHints are glibc's hints for a nil hints argument.
var defaultHints = AddrInfo{Flags: AI_V4MAPPED | AI_ADDRCONFIG}

// scopedAddr is an address with its IPv6 scope (zone) ID.
type scopedAddr struct {
	addr  netip.Addr
	scope uint32
}

// getaddrinfo implements getaddrinfo(3) over b. An empty node or service
// stands for C's NULL.
func getaddrinfo(ctx context.Context, b resolverBackend, node, service string, hints *AddrInfo) ([]AddrInfo, error) {
	if node == "" && service == "" {
		return nil, eai(EAI_NONAME)
	}
	if hints == nil {
		hints = &defaultHints
	}
	req := *hints
	if req.Flags&^aiAllFlags != 0 || req.Flags&AI_CANONNAME != 0 && node == "" {
		return nil, eai(EAI_BADFLAGS)
	}
	if req.Family != unix.AF_UNSPEC && req.Family != unix.AF_INET && req.Family != unix.AF_INET6 {
		return nil, eai(EAI_FAMILY)
	}
	if req.Flags&AI_ADDRCONFIG != 0 {
		if err := narrowAddrconfig(b, &req); err != nil {
			return nil, err
		}
	}
	svc, err := parseService(service, req.Flags)
	if err != nil {
		return nil, err
	}
	tuples, err := serviceTuples(svc, req.Socktype, req.Protocol)
	if err != nil {
		return nil, err
	}
	addrs, canon, err := hostAddrs(ctx, b, node, &req)
	if err != nil {
		return nil, err
	}
	if len(addrs) > 1 {
		addrs = sortRFC3484(b, addrs)
	}
	return expand(addrs, tuples, req.Flags, canon), nil
}

// narrowAddrconfig applies AI_ADDRCONFIG as glibc does: with AF_UNSPEC
// and only one family configured, ask for that family alone; asking for a
// family that is not configured fails with EAI_NONAME. Loopback addresses
// do not count.
func narrowAddrconfig(b resolverBackend, req *AddrInfo) error {
	v4, v6 := b.addrFamilies()
	switch {
	case req.Family == unix.AF_UNSPEC && (v4 || v6):
		if v4 != v6 {
			req.Family = unix.AF_INET6
			if v4 {
				req.Family = unix.AF_INET
			}
		}
	case req.Family == unix.AF_INET && !v4, req.Family == unix.AF_INET6 && !v6:
		return eai(EAI_NONAME)
	}
	return nil
}

// expand makes one AddrInfo per address and service tuple, addresses
// outermost, as glibc orders them, with the canonical name on the first.
func expand(addrs []scopedAddr, tuples []servTuple, flags int, canon string) []AddrInfo {
	out := make([]AddrInfo, 0, len(addrs)*len(tuples))
	for _, a := range addrs {
		for _, t := range tuples {
			out = append(out, AddrInfo{
				Flags:    flags,
				Family:   familyOf(a.addr),
				Socktype: t.socktype,
				Protocol: t.protocol,
				Addr:     sockaddrOf(a, t.port),
			})
		}
	}
	if len(out) > 0 && flags&AI_CANONNAME != 0 {
		out[0].Canonname = canon
	}
	return out
}

func familyOf(a netip.Addr) int {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

func sockaddrOf(a scopedAddr, port int) unix.Sockaddr {
	if a.addr.Is4() {
		return &unix.SockaddrInet4{Port: port, Addr: a.addr.As4()}
	}
	return &unix.SockaddrInet6{Port: port, ZoneId: a.scope, Addr: a.addr.As16()}
}

// hostAddrs returns the addresses for node under req, and the canonical
// name when AI_CANONNAME asks for it.
func hostAddrs(ctx context.Context, b resolverBackend, node string, req *AddrInfo) ([]scopedAddr, string, error) {
	if node == "" {
		return nullNodeAddrs(req), "", nil
	}
	if a, ok, err := numericHost(b, node, req); ok || err != nil {
		return []scopedAddr{a}, node, err
	}
	if req.Flags&AI_NUMERICHOST != 0 {
		return nil, "", eai(EAI_NONAME)
	}
	ans, err := lookupFamilies(ctx, b, node, req)
	if err != nil {
		return nil, "", err
	}
	addrs := make([]scopedAddr, len(ans.addrs))
	for i, a := range ans.addrs {
		addrs[i] = scopedAddr{addr: a}
	}
	if ans.canon == "" {
		ans.canon = node
	}
	return addrs, ans.canon, nil
}

// nullNodeAddrs are the addresses for a NULL node: the wildcard with
// AI_PASSIVE, else loopback; IPv6 first as glibc lists them before sorting.
func nullNodeAddrs(req *AddrInfo) []scopedAddr {
	var out []scopedAddr
	passive := req.Flags&AI_PASSIVE != 0
	if req.Family != unix.AF_INET {
		a := netip.IPv6Loopback()
		if passive {
			a = netip.IPv6Unspecified()
		}
		out = append(out, scopedAddr{addr: a})
	}
	if req.Family != unix.AF_INET6 {
		a := netip.AddrFrom4([4]byte{127, 0, 0, 1})
		if passive {
			a = netip.IPv4Unspecified()
		}
		out = append(out, scopedAddr{addr: a})
	}
	return out
}

// numericHost parses node as an IPv4 (inet_aton) or IPv6 (inet_pton,
// with scope) address and fits it to req.Family: an IPv4 address becomes
// v4-mapped for AF_INET6 with AI_V4MAPPED, a v4-mapped one plain IPv4 for
// AF_INET; any other family mismatch is EAI_ADDRFAMILY, a bad scope
// EAI_NONAME. ok is false when node is not numeric.
func numericHost(b resolverBackend, node string, req *AddrInfo) (a scopedAddr, ok bool, err error) {
	if v4, isV4 := inetAtonExact(node); isV4 {
		switch {
		case req.Family != unix.AF_INET6:
			return scopedAddr{addr: v4}, true, nil
		case req.Flags&AI_V4MAPPED != 0:
			return scopedAddr{addr: netip.AddrFrom16(v4.As16())}, true, nil
		}
		return a, false, eai(EAI_ADDRFAMILY)
	}
	v6, scope, hasScope, isV6 := parseIPv6(node)
	if !isV6 {
		return a, false, nil
	}
	switch {
	case req.Family != unix.AF_INET:
		a.addr = v6
	case v6.Is4In6():
		a.addr = v6.Unmap()
	default:
		return a, false, eai(EAI_ADDRFAMILY)
	}
	if hasScope {
		id, good := scopeID(v6, scope, b.interfaceIndex)
		if !good {
			return a, false, eai(EAI_NONAME)
		}
		if a.addr.Is6() {
			a.scope = id
		}
	}
	return a, true, nil
}

// lookupFamilies asks b for node's addresses in the families req wants.
// For AF_INET6 with AI_V4MAPPED, IPv4 addresses are asked for when there
// are no IPv6 ones (or always with AI_ALL) and returned v4-mapped.
func lookupFamilies(ctx context.Context, b resolverBackend, node string, req *AddrInfo) (hostAnswer, error) {
	canon := req.Flags&AI_CANONNAME != 0
	switch req.Family {
	case unix.AF_INET:
		return b.lookupHost(ctx, node, true, false, canon)
	case unix.AF_UNSPEC:
		return b.lookupHost(ctx, node, true, true, canon)
	}
	ans, err := b.lookupHost(ctx, node, false, true, canon)
	if req.Flags&AI_V4MAPPED == 0 || err == nil && len(ans.addrs) > 0 && req.Flags&AI_ALL == 0 {
		return ans, err
	}
	ans4, err4 := b.lookupHost(ctx, node, true, false, canon)
	if err4 != nil {
		if err == nil && len(ans.addrs) > 0 {
			return ans, nil
		}
		return hostAnswer{}, worseLookupError(err, err4)
	}
	if ans.canon == "" {
		ans.canon = ans4.canon
	}
	for _, a := range ans4.addrs {
		ans.addrs = append(ans.addrs, netip.AddrFrom16(a.As16()))
	}
	return ans, nil
}

// worseLookupError picks the error to report when two lookups of the same
// name both failed: a temporary failure outranks "no data", which
// outranks "no such name", as glibc's gaih_inet ranks them.
func worseLookupError(a, b error) error {
	if a == nil {
		return b
	}
	rank := func(err error) int {
		switch eaiCode(err) {
		case EAI_NONAME:
			return 0
		case EAI_NODATA:
			return 1
		case EAI_AGAIN:
			return 2
		}
		return 3
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// getnameinfo implements getnameinfo(3) over b.
func getnameinfo(ctx context.Context, b resolverBackend, sa unix.Sockaddr, flags int) (host, serv string, err error) {
	if flags&^niAllFlags != 0 {
		return "", "", eai(EAI_BADFLAGS)
	}
	var a scopedAddr
	var port int
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		a, port = scopedAddr{addr: netip.AddrFrom4(sa.Addr)}, sa.Port
	case *unix.SockaddrInet6:
		a, port = scopedAddr{addr: netip.AddrFrom16(sa.Addr), scope: sa.ZoneId}, sa.Port
	case *unix.SockaddrUnix:
		return localNameinfo(b, sa, flags)
	default:
		return "", "", eai(EAI_FAMILY)
	}
	if host, err = hostName(ctx, b, a, flags); err != nil {
		return "", "", err
	}
	return host, serviceName(port, flags), nil
}

// hostName is the host half of getnameinfo for an IP address: its name,
// unless NI_NUMERICHOST or the lookup finds none; then the numeric form,
// unless NI_NAMEREQD. A temporary failure is EAI_AGAIN even without
// NI_NAMEREQD, as in glibc's gni_host_inet_name.
func hostName(ctx context.Context, b resolverBackend, a scopedAddr, flags int) (string, error) {
	if flags&NI_NUMERICHOST == 0 {
		name, err := b.lookupAddr(ctx, a.addr)
		if err == nil {
			if flags&NI_NOFQDN != 0 {
				name = stripDomain(name, b.domain())
			}
			return name, nil
		}
		if eaiCode(err) != EAI_NONAME {
			return "", err
		}
	}
	if flags&NI_NAMEREQD != 0 {
		return "", eai(EAI_NONAME)
	}
	return numericName(b, a), nil
}

// stripDomain cuts name at the first occurrence of the local domain when
// a dot precedes it, as glibc's NI_NOFQDN does (a plain strstr).
func stripDomain(name, domain string) string {
	if domain == "" {
		return name
	}
	for i := 0; i+len(domain) <= len(name); i++ {
		if name[i:i+len(domain)] == domain {
			if i > 0 && name[i-1] == '.' {
				return name[:i-1]
			}
			return name
		}
	}
	return name
}

// numericName formats a as inet_ntop does, with "%scope" for a non-zero
// scope: the interface name for link-local addresses when it has one,
// else the number.
func numericName(b resolverBackend, a scopedAddr) string {
	s := ntop(a.addr)
	if a.addr.Is6() && a.scope != 0 {
		if a.addr.IsLinkLocalUnicast() || a.addr.IsLinkLocalMulticast() {
			if name, ok := b.interfaceName(int(a.scope)); ok {
				return s + "%" + name
			}
		}
		s += "%" + strconv.FormatUint(uint64(a.scope), 10)
	}
	return s
}

// ntop is inet_ntop. It differs from netip's formatting only for
// IPv4-compatible addresses (::a.b.c.d), which glibc prints dotted.
func ntop(a netip.Addr) string {
	if a.Is6() && !a.Is4In6() {
		b := a.As16()
		if [12]byte(b[:12]) == [12]byte{} && (b[12] != 0 || b[13] != 0) {
			return "::" + netip.AddrFrom4([4]byte(b[12:])).String()
		}
	}
	return a.String()
}

// serviceName is the service half of getnameinfo.
func serviceName(port, flags int) string {
	if flags&NI_NUMERICSERV == 0 {
		proto := "tcp"
		if flags&NI_DGRAM != 0 {
			proto = "udp"
		}
		if name, ok := serviceByPort(port, proto); ok {
			return name
		}
	}
	return strconv.Itoa(port)
}

// localNameinfo is getnameinfo for an AF_UNIX address, as glibc answers
// it: the node name (or "localhost" with NI_NUMERICHOST) and the path.
func localNameinfo(b resolverBackend, sa *unix.SockaddrUnix, flags int) (string, string, error) {
	host := "localhost"
	if flags&NI_NUMERICHOST == 0 {
		host = b.nodename()
	} else if flags&NI_NAMEREQD != 0 {
		return "", "", eai(EAI_NONAME)
	}
	return host, sa.Name, nil
}
