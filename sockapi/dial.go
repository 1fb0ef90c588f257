//go:build linux

package sockapi

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Dialer connects to addresses over the userspace stack of a Sockets, as
// net.Dialer does over the kernel. Its DialContext fits
// http.Transport.DialContext, so an http.Client runs over the stack
// unchanged.
type Dialer struct {
	// Sockets is the socket layer the connections are made on. Required.
	Sockets *Sockets
	// Timeout bounds each dial, name resolution included; 0 means none.
	// As in net.Dialer, a name's addresses tried one after another share
	// it (see DialContext).
	Timeout time.Duration
	// Deadline, if not zero, is the time by which a dial fails.
	Deadline time.Time
	// LocalAddr, if not nil, is the address to bind before connecting: a
	// *net.TCPAddr for tcp networks, a *net.UDPAddr for udp ones.
	LocalAddr net.Addr
	// KeepAlive is the keep-alive period of TCP connections, as
	// net.Dialer's: 0 means 15s, a negative value turns keep-alives off.
	KeepAlive time.Duration
	// FallbackDelay is, as net.Dialer's, how long a "tcp" dial to a name
	// with both IPv4 and IPv6 addresses waits for the addresses of the
	// first one's family before it races the others too (RFC 6555 Fast
	// Fallback): 0 means 300ms, a negative value turns the race off so
	// that the addresses are tried one after another.
	FallbackDelay time.Duration
}

// Dial is DialContext with context.Background().
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects to address on network: "tcp", "tcp4", "tcp6",
// "udp", "udp4" or "udp6". address is "host:port", where host is an IP
// literal (an IPv6 one in brackets, with an optional %zone naming a NIC)
// or a name resolved through the Sockets' Getaddrinfo (hosts table, then
// DNS over the stack), and port a number or a service name; an empty or
// unspecified host means this host, as connect(2) to INADDR_ANY does on
// Linux.
//
// Several resolved addresses are dialled as net.Dialer dials them. With a
// deadline, addresses tried one after another each get a share of the
// time left (see attemptDeadline), so that one address that never answers
// cannot use it all. For network "tcp" with addresses of both families,
// those of the first address's family are tried first and, after
// FallbackDelay (or at once if they all fail), the others in parallel; the
// first connection made wins and the other attempt is cancelled and
// closed before DialContext returns. If every address fails, the error is
// the first address's.
//
// Cancelling ctx, or its deadline, aborts every connect in progress; a
// DNS lookup ends at ctx's deadline. A TCP connection is a *TCPConn, a UDP
// one a *UDPConn.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if d.Sockets == nil {
		return nil, errors.New("sockapi: Dialer.Sockets is nil")
	}
	nw, err := parseNetSpec(network)
	if err != nil {
		return nil, netOpErr("dial", network, d.LocalAddr, nil, err)
	}
	ctx, cancel := d.context(ctx)
	defer cancel()
	local, err := dialLocalAddr(nw, d.LocalAddr)
	if err != nil {
		return nil, netOpErr("dial", network, d.LocalAddr, nil, err)
	}
	remotes, err := d.Sockets.netResolve(ctx, nw, address, false)
	if err != nil {
		return nil, netOpErr("dial", network, d.LocalAddr, nil, err)
	}
	primaries, fallbacks := remotes, []netip.AddrPort(nil)
	if d.FallbackDelay >= 0 && nw.name == "tcp" {
		primaries, fallbacks = partitionFamily(remotes)
	}
	fd, err := d.dialParallel(ctx, nw, local, primaries, fallbacks)
	if err != nil {
		return nil, err
	}
	return d.Sockets.wrapConnected(fd, nw, d.KeepAlive), nil
}

// context returns ctx bounded by the Dialer's Timeout and Deadline.
func (d *Dialer) context(ctx context.Context) (context.Context, context.CancelFunc) {
	dl := d.Deadline
	if d.Timeout > 0 {
		if t := time.Now().Add(d.Timeout); dl.IsZero() || t.Before(dl) {
			dl = t
		}
	}
	if dl.IsZero() {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, dl)
}

// dialOne connects one socket from local (if valid) to remote and
// returns its descriptor.
func (s *Sockets) dialOne(ctx context.Context, nw netSpec, local, remote netip.AddrPort) (int, error) {
	family := unix.AF_INET6
	if remote.Addr().Unmap().Is4() && nw.family != unix.AF_INET6 {
		family = unix.AF_INET
	}
	fd, err := s.netOpenSocket(nw, family, false)
	if err != nil {
		return -1, nw.dialErr(local, remote, err)
	}
	if err := s.dialConnect(ctx, fd, nw, family, local, remote); err != nil {
		s.Close(fd)
		return -1, nw.dialErr(local, remote, err)
	}
	return fd, nil
}

// dialConnect binds fd to local if it is valid, then connects it to remote,
// waiting until the connection is established or ctx is done.
func (s *Sockets) dialConnect(ctx context.Context, fd int, nw netSpec, family int, local, remote netip.AddrPort) error {
	if local.IsValid() {
		lsa, err := s.netSockaddr(family, local)
		if err != nil {
			return err
		}
		if err := s.Bind(fd, lsa); err != nil {
			return os.NewSyscallError("bind", err)
		}
	}
	rsa, err := s.netSockaddr(family, remote)
	if err != nil {
		return err
	}
	dl, _ := ctx.Deadline()
	err = s.connect(fd, rsa, waitOpts{deadline: dl, cancel: ctx.Done()})
	switch err {
	case nil:
		return nil
	case unix.EINTR, unix.EINPROGRESS, unix.EALREADY:
		// Cancelled (EINTR), or the deadline passed with the handshake
		// still in progress, as a blocking connect(2) reports its timeout.
		if err := ctx.Err(); err != nil {
			return netContextErr(err)
		}
		if err != unix.EINTR {
			return netDialTimeoutError{}
		}
	}
	return os.NewSyscallError("connect", err)
}

// wrapConnected wraps a connected descriptor in a TCPConn or UDPConn,
// with keep-alives on a TCP one as keepAlive says (see Dialer.KeepAlive).
func (s *Sockets) wrapConnected(fd int, nw netSpec, keepAlive time.Duration) net.Conn {
	lsa, _ := s.Getsockname(fd)
	rsa, _ := s.Getpeername(fd)
	if nw.proto == "udp" {
		return &UDPConn{fd: newNetFD(s, fd, nw.name, s.netUDPAddrOrNil(lsa), s.netUDPAddrOrNil(rsa))}
	}
	// As the net package does, send small writes at once (TCP_NODELAY):
	// Go programs such as net/http expect it. A failure only costs latency.
	s.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	c := &TCPConn{fd: newNetFD(s, fd, nw.name, s.netTCPAddr(lsa), s.netTCPAddr(rsa))}
	if keepAlive >= 0 {
		// As the net package: keep-alives detect dead peers; a failure
		// to set them is not the connection's failure.
		c.SetKeepAlive(true)
		c.SetKeepAlivePeriod(keepAlive)
	}
	return c
}

// netUDPAddrOrNil returns sa as a net.Addr holding a *net.UDPAddr, or a nil
// interface (not a typed nil) for none.
func (s *Sockets) netUDPAddrOrNil(sa unix.Sockaddr) net.Addr {
	if a := s.netUDPAddr(sa); a != nil {
		return a
	}
	return nil
}

// netOpenSocket creates a socket of nw's protocol with the
// defaults the net package sets: IPV6_V6ONLY on AF_INET6 (off only for a
// dual-stack listener), SO_BROADCAST on IPv4 UDP sockets and SO_REUSEADDR
// on TCP listeners.
func (s *Sockets) netOpenSocket(nw netSpec, family int, listener bool) (int, error) {
	sotype := unix.SOCK_STREAM
	if nw.proto == "udp" {
		sotype = unix.SOCK_DGRAM
	}
	fd, err := s.Socket(family, sotype|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	type opt struct{ level, name, value int }
	var opts []opt
	if family == unix.AF_INET6 {
		opts = append(opts, opt{unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, netBool(nw.family == unix.AF_INET6)})
	}
	if sotype == unix.SOCK_DGRAM && family == unix.AF_INET {
		opts = append(opts, opt{unix.SOL_SOCKET, unix.SO_BROADCAST, 1})
	}
	if listener && sotype == unix.SOCK_STREAM {
		opts = append(opts, opt{unix.SOL_SOCKET, unix.SO_REUSEADDR, 1})
	}
	for _, o := range opts {
		if err := s.SetsockoptInt(fd, o.level, o.name, o.value); err != nil {
			s.Close(fd)
			return -1, os.NewSyscallError("setsockopt", err)
		}
	}
	return fd, nil
}

// netSpec is a parsed network name.
type netSpec struct {
	name   string // as given: "tcp", "udp6", ...
	proto  string // "tcp" or "udp"
	family int    // unix.AF_INET or AF_INET6 for a "4" or "6" suffix, else 0
}

func parseNetSpec(name string) (netSpec, error) {
	switch name {
	case "tcp", "udp":
		return netSpec{name: name, proto: name}, nil
	case "tcp4", "udp4":
		return netSpec{name: name, proto: name[:3], family: unix.AF_INET}, nil
	case "tcp6", "udp6":
		return netSpec{name: name, proto: name[:3], family: unix.AF_INET6}, nil
	}
	return netSpec{}, net.UnknownNetworkError(name)
}

// netAddr returns ap as nw's kind of net.Addr, or nil if ap is invalid.
func (nw netSpec) netAddr(ap netip.AddrPort) net.Addr {
	if !ap.IsValid() {
		return nil
	}
	if nw.proto == "udp" {
		return net.UDPAddrFromAddrPort(ap)
	}
	return net.TCPAddrFromAddrPort(ap)
}

func (nw netSpec) dialErr(local, remote netip.AddrPort, err error) error {
	return netOpErr("dial", nw.name, nw.netAddr(local), nw.netAddr(remote), err)
}

// dialLocalAddr checks that a Dialer's LocalAddr suits nw.
func dialLocalAddr(nw netSpec, a net.Addr) (netip.AddrPort, error) {
	switch a := a.(type) {
	case nil:
		return netip.AddrPort{}, nil
	case *net.TCPAddr:
		if nw.proto == "tcp" {
			if a == nil {
				return netip.AddrPort{}, nil
			}
			return netIPPort("bind", nw.family, a.IP, a.Port, a.Zone)
		}
	case *net.UDPAddr:
		if nw.proto == "udp" {
			if a == nil {
				return netip.AddrPort{}, nil
			}
			return netIPPort("bind", nw.family, a.IP, a.Port, a.Zone)
		}
	}
	return netip.AddrPort{}, &net.AddrError{Err: "mismatched local address type", Addr: a.String()}
}

// netDialTimeoutError is the error of a dial whose deadline passed, as the
// net package reports it (net.go, timeoutError): "i/o timeout", a
// net.Error whose Timeout is true, matching context.DeadlineExceeded. Not
// os.ErrDeadlineExceeded, which net keeps for a conn's own deadlines.
type netDialTimeoutError struct{}

func (netDialTimeoutError) Error() string   { return "i/o timeout" }
func (netDialTimeoutError) Timeout() bool   { return true }
func (netDialTimeoutError) Temporary() bool { return true }
func (netDialTimeoutError) Is(target error) bool {
	return target == context.DeadlineExceeded
}

// netCanceledError is a cancelled context's error as the net package
// reports it (net.go, canceledError): "operation was canceled", matching
// context.Canceled.
type netCanceledError struct{}

func (netCanceledError) Error() string        { return "operation was canceled" }
func (netCanceledError) Is(target error) bool { return target == context.Canceled }

// netContextErr maps a context's error as the net package does (mapErr).
func netContextErr(err error) error {
	switch err {
	case context.DeadlineExceeded:
		return netDialTimeoutError{}
	case context.Canceled:
		return netCanceledError{}
	}
	return err
}

// netLookupContextErr is a lookup ended by its context, as the net
// package reports it: a *net.DNSError naming the host and wrapping the
// mapped context error ("lookup example.com: i/o timeout").
func netLookupContextErr(err error, host string) error {
	err = netContextErr(err)
	_, timeout := err.(netDialTimeoutError)
	return &net.DNSError{Err: err.Error(), Name: host, IsTimeout: timeout, IsTemporary: timeout, UnwrapErr: err}
}

// netResolve turns "host:port" into the addresses to dial, or for a listener
// (listen true) the one to bind; an invalid address in the result means
// the wildcard. Addresses of the wrong family for nw are dropped.
func (s *Sockets) netResolve(ctx context.Context, nw netSpec, address string, listen bool) ([]netip.AddrPort, error) {
	if address == "" {
		// net.Listen takes "" as the wildcard and a chosen port; Dial
		// says "missing address".
		if !listen {
			return nil, &net.AddrError{Err: "missing address"}
		}
		address = ":0"
	}
	host, service, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := s.netLookupPort(ctx, nw, service)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	if host == "" {
		addrs = []netip.Addr{{}}
	} else if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else if addrs, err = s.netLookupHost(ctx, nw, host); err != nil {
		return nil, err
	}
	var out []netip.AddrPort
	for _, a := range addrs {
		if a, ok := nw.suitable(a, listen); ok {
			out = append(out, netip.AddrPortFrom(a, port))
		}
	}
	if len(out) == 0 {
		return nil, &net.AddrError{Err: "no suitable address found", Addr: host}
	}
	if listen {
		// net.ListenConfig.Listen takes addrs.first(isIPv4): a name
		// with both families is listened on at its first IPv4 address.
		first := out[0]
		for _, ap := range out {
			if ap.Addr().Is4() {
				first = ap
				break
			}
		}
		out = []netip.AddrPort{first}
	}
	return out, nil
}

// suitable reports whether a may be used on nw, and returns it as used.
// An invalid or unspecified address dialled means this host, as on Linux
// where connect(2) to the unspecified address reaches the loopback
// interface; for a listener it stays the wildcard.
func (nw netSpec) suitable(a netip.Addr, listen bool) (netip.Addr, bool) {
	if !listen && (!a.IsValid() || a.IsUnspecified()) {
		if nw.family == unix.AF_INET6 || a.Is6() && !a.Is4In6() {
			return netip.IPv6Loopback(), true
		}
		return netip.AddrFrom4([4]byte{127, 0, 0, 1}), true
	}
	if !a.IsValid() {
		return a, true
	}
	switch nw.family {
	case unix.AF_INET:
		return a.Unmap(), a.Unmap().Is4()
	case unix.AF_INET6:
		return a, a.Is6() && !a.Is4In6()
	}
	if a.Is4In6() {
		return a.Unmap(), true
	}
	return a, true
}

// netLookupPort parses a port number or looks up a service name, as
// net.LookupPort does: a decimal number with an optional sign is a port,
// "invalid port" outside 0..65535. (Left to getaddrinfo, whose strtoul
// wraps, "99999" would be port 34463.)
func (s *Sockets) netLookupPort(ctx context.Context, nw netSpec, service string) (uint16, error) {
	if service == "" {
		return 0, nil
	}
	if n, numeric := parseNetPort(service); numeric {
		if n < 0 || n > 0xffff {
			return 0, &net.AddrError{Err: "invalid port", Addr: service}
		}
		return uint16(n), nil
	}
	ais, err := s.netLookupAddrinfo(ctx, "", service, &AddrInfo{Flags: AI_PASSIVE, Family: unix.AF_INET, Socktype: nw.socktype()})
	if err == nil && len(ais) > 0 {
		return s.netAddrPort(ais[0].Addr).Port(), nil
	}
	return 0, &net.DNSError{Err: "unknown port", Name: nw.name + "/" + service, IsNotFound: true}
}

// parseNetPort reads service as package net's parsePort does: an optional
// sign and decimal digits make a number (clamped far beyond any port);
// anything else is a name to look up.
func parseNetPort(service string) (port int, numeric bool) {
	digits, neg := service, false
	if len(digits) > 0 && (digits[0] == '+' || digits[0] == '-') {
		neg, digits = digits[0] == '-', digits[1:]
	}
	if digits == "" {
		return 0, false
	}
	n := 0
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = min(n*10+int(c-'0'), 1<<30)
	}
	if neg {
		n = -n
	}
	return n, true
}

// netLookupHost resolves a host name through the Sockets' Getaddrinfo, in
// the order it returns (RFC 6724's, as glibc sorts).
func (s *Sockets) netLookupHost(ctx context.Context, nw netSpec, host string) ([]netip.Addr, error) {
	ais, err := s.netLookupAddrinfo(ctx, host, "", &AddrInfo{Family: nw.family, Socktype: nw.socktype()})
	if err := ctx.Err(); err != nil {
		return nil, netLookupContextErr(err, host)
	}
	if dl, ok := ctx.Deadline(); ok && err != nil && !time.Now().Before(dl) {
		// The resolver's own timer ran out at ctx's deadline a moment
		// before ctx's did: a timeout all the same.
		return nil, netLookupContextErr(context.DeadlineExceeded, host)
	}
	if err != nil {
		dnsErr := &net.DNSError{Err: err.Error(), Name: host}
		var eai *AddrinfoError
		if errors.As(err, &eai) {
			dnsErr.IsNotFound = eai.Code == EAI_NONAME || eai.Code == EAI_NODATA
			dnsErr.IsTemporary = eai.Code == EAI_AGAIN
		}
		return nil, dnsErr
	}
	var addrs []netip.Addr
	for _, ai := range ais {
		if ap := s.netAddrPort(ai.Addr); ap.IsValid() {
			addrs = append(addrs, ap.Addr())
		}
	}
	return addrs, nil
}

func (nw netSpec) socktype() int {
	if nw.proto == "udp" {
		return unix.SOCK_DGRAM
	}
	return unix.SOCK_STREAM
}
