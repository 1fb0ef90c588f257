//go:build linux

package sockapi

import (
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
)

// addrUse says what an address is for, since Linux checks addresses
// differently in bind, connect and sendto.
type addrUse int

const (
	forBind addrUse = iota
	forConnect
	forSend
)

// checkSockaddr is what x/sys/unix checks of an address before the
// system call, so both implementations check it first, before the
// descriptor: a port outside 0..65535 is EINVAL (x/sys's
// SockaddrInet4.sockaddr), where a plain conversion to the 16-bit port
// would bind or send to another port than the caller asked for. It
// returns a nil pointer of a sockaddr type as nil, which bind and
// connect refuse as the kernel refuses a NULL address (EINVAL) and
// sendto takes as no address; x/sys would dereference it.
func checkSockaddr(sa unix.Sockaddr) (unix.Sockaddr, error) {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		if a == nil {
			return nil, nil
		}
		if a.Port < 0 || a.Port > 0xffff {
			return nil, unix.EINVAL
		}
	case *unix.SockaddrInet6:
		if a == nil {
			return nil, nil
		}
		if a.Port < 0 || a.Port > 0xffff {
			return nil, unix.EINVAL
		}
	}
	return sa, nil
}

// fullAddr converts sa to a gVisor address for sk.
//
// An AF_INET socket takes only *unix.SockaddrInet4 (anything else is
// EAFNOSUPPORT, from inet_bind, tcp_v4_connect, udp_sendmsg). An AF_INET6
// socket takes *unix.SockaddrInet6, whose v4-mapped addresses gVisor
// handles as Linux does on dual-stack sockets; a *unix.SockaddrInet4 is
// too short a sockaddr for it (EINVAL), except that UDP connect and sendto
// accept it on a dual-stack socket (__ip6_datagram_connect, udpv6_sendmsg
// hand it to the IPv4 code), where it becomes v4-mapped.
//
// The unspecified address becomes the empty address, which is what gVisor
// takes to mean "any".
func (sk *socket) fullAddr(sa unix.Sockaddr, use addrUse) (tcpip.FullAddress, error) {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		if sk.family == unix.AF_INET {
			return tcpip.FullAddress{Addr: addr4(a.Addr), Port: uint16(a.Port)}, nil
		}
		if sk.proto == unix.IPPROTO_ICMPV6 && use == forConnect {
			// ip6_datagram_connect_v6_only, ping's connect.
			return tcpip.FullAddress{}, unix.EAFNOSUPPORT
		}
		if sk.proto != unix.IPPROTO_UDP || use == forBind {
			return tcpip.FullAddress{}, unix.EINVAL
		}
		if sk.ep().SocketOptions().GetV6Only() {
			if use == forConnect {
				return tcpip.FullAddress{}, unix.EAFNOSUPPORT
			}
			return tcpip.FullAddress{}, unix.ENETUNREACH
		}
		return tcpip.FullAddress{Addr: mapped(a.Addr), Port: uint16(a.Port)}, nil
	case *unix.SockaddrInet6:
		if sk.family != unix.AF_INET6 {
			return tcpip.FullAddress{}, unix.EAFNOSUPPORT
		}
		fa := tcpip.FullAddress{Port: uint16(a.Port)}
		if a.Addr != ([16]byte{}) {
			fa.Addr = tcpip.AddrFrom16(a.Addr)
		}
		if isLinkLocal(a.Addr) {
			// Only an address that needs a scope takes sin6_scope_id
			// (as an interface index); without one, inet6_bind,
			// tcp_v6_connect and udpv6_sendmsg say EINVAL. Other
			// addresses ignore it, where gVisor would take it as a NIC.
			if a.ZoneId == 0 {
				return tcpip.FullAddress{}, unix.EINVAL
			}
			fa.NIC = tcpip.NICID(a.ZoneId)
		}
		if isV4Mapped(a.Addr) && sk.ep().SocketOptions().GetV6Only() {
			// An IPV6_V6ONLY socket has no IPv4 side: inet6_bind says
			// EINVAL, connect and sendto find no route (ENETUNREACH).
			// gVisor says EHOSTUNREACH for all three.
			if use == forBind {
				return tcpip.FullAddress{}, unix.EINVAL
			}
			return tcpip.FullAddress{}, unix.ENETUNREACH
		}
		return fa, nil
	case nil:
		return tcpip.FullAddress{}, unix.EINVAL
	default:
		return tcpip.FullAddress{}, unix.EAFNOSUPPORT
	}
}

// isLinkLocal reports whether a is in fe80::/10.
func isLinkLocal(a [16]byte) bool { return a[0] == 0xfe && a[1]&0xc0 == 0x80 }

func isV4Mapped(a [16]byte) bool {
	return a[10] == 0xff && a[11] == 0xff && [10]byte(a[:10]) == [10]byte{}
}

func addr4(b [4]byte) tcpip.Address {
	if b == ([4]byte{}) {
		return tcpip.Address{}
	}
	return tcpip.AddrFrom4(b)
}

func mapped(b [4]byte) tcpip.Address {
	var a [16]byte
	a[10], a[11] = 0xff, 0xff
	copy(a[12:], b[:])
	return tcpip.AddrFrom16(a)
}

// sockaddr converts a gVisor address to what getsockname(2) and friends
// return for sk's family: on an AF_INET6 socket an IPv4 address appears
// v4-mapped (::ffff:a.b.c.d) and an empty one as ::, as Linux reports
// them; on an AF_INET socket an empty address is 0.0.0.0.
func (sk *socket) sockaddr(fa tcpip.FullAddress) unix.Sockaddr {
	if sk.family == unix.AF_INET {
		sa := &unix.SockaddrInet4{Port: int(fa.Port)}
		if fa.Addr.Len() == 4 {
			sa.Addr = fa.Addr.As4()
		}
		return sa
	}
	sa := &unix.SockaddrInet6{Port: int(fa.Port)}
	switch fa.Addr.Len() {
	case 4:
		sa.Addr = mapped(fa.Addr.As4()).As16()
	case 16:
		sa.Addr = fa.Addr.As16()
		// Linux sets sin6_scope_id only for link-local addresses.
		if sa.Addr[0] == 0xfe && sa.Addr[1]&0xc0 == 0x80 {
			sa.ZoneId = uint32(fa.NIC)
		}
	}
	return sa
}
