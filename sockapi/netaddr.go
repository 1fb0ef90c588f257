//go:build linux

package sockapi

import (
	"net"
	"net/netip"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Conversions between the Go net adapters' addresses (net.Addr, netip)
// and sockaddrs. IPv6 zones are NIC names of the Sockets' stack, or NIC
// numbers, as interface names and indexes are on Linux.

// netAddrPort returns sa's address and port. An IPv6 zone id becomes
// the NIC's name.
func (s *Sockets) netAddrPort(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		a := netip.AddrFrom16(sa.Addr)
		if sa.ZoneId != 0 {
			a = a.WithZone(s.netZoneName(sa.ZoneId))
		}
		return netip.AddrPortFrom(a, uint16(sa.Port))
	}
	return netip.AddrPort{}
}

// netIPPort is (*net.UDPAddr).AddrPort or (*net.TCPAddr).AddrPort with
// the checks package net makes on the way to a sockaddr: an IP of neither
// 4 nor 16 bytes is no address of the family (ipToSockaddr), a port
// outside 0..65535 is EINVAL from call (the syscall package's sockaddr).
// AddrPort alone makes the first the wildcard and wraps the port.
func netIPPort(call string, family int, ip net.IP, port int, zone string) (netip.AddrPort, error) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok && len(ip) != 0 {
		e := "non-IPv4 address"
		if family == unix.AF_INET6 {
			e = "non-IPv6 address"
		}
		return netip.AddrPort{}, &net.AddrError{Err: e, Addr: ip.String()}
	}
	if port < 0 || port > 0xffff {
		return netip.AddrPort{}, os.NewSyscallError(call, unix.EINVAL)
	}
	if ok {
		a = a.WithZone(zone)
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}

// netTCPAddr and netUDPAddr convert a sockaddr as the net package does: nil for
// none, a 4-byte IP for AF_INET, a 16-byte one for AF_INET6.
func (s *Sockets) netTCPAddr(sa unix.Sockaddr) net.Addr {
	if sa == nil {
		return nil
	}
	ap := s.netAddrPort(sa)
	return &net.TCPAddr{IP: ap.Addr().AsSlice(), Port: int(ap.Port()), Zone: ap.Addr().Zone()}
}

func (s *Sockets) netUDPAddr(sa unix.Sockaddr) *net.UDPAddr {
	if sa == nil {
		return nil
	}
	ap := s.netAddrPort(sa)
	return &net.UDPAddr{IP: ap.Addr().AsSlice(), Port: int(ap.Port()), Zone: ap.Addr().Zone()}
}

// netSockaddr returns ap as a sockaddr of family. An IPv4 address becomes
// v4-mapped for AF_INET6; the unspecified IPv4 address becomes "::", as
// the net package does so that a dual-stack listener covers both.
func (s *Sockets) netSockaddr(family int, ap netip.AddrPort) (unix.Sockaddr, error) {
	a := ap.Addr()
	switch family {
	case unix.AF_INET:
		a = a.Unmap()
		if !a.IsValid() {
			a = netip.IPv4Unspecified()
		}
		if !a.Is4() {
			return nil, &net.AddrError{Err: "non-IPv4 address", Addr: a.String()}
		}
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}, nil
	case unix.AF_INET6:
		if !a.IsValid() || a == netip.IPv4Unspecified() {
			a = netip.IPv6Unspecified()
		}
		id, err := s.netZoneID(a.Zone())
		if err != nil {
			return nil, err
		}
		return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16(), ZoneId: id}, nil
	}
	return nil, unix.EAFNOSUPPORT
}

// netZoneName returns the name of NIC id, or its number if it has none.
func (s *Sockets) netZoneName(id uint32) string {
	if s.st != nil {
		for nicID, info := range s.st.GVisor().NICInfo() {
			if uint32(nicID) == id && info.Name != "" {
				return info.Name
			}
		}
	}
	return strconv.FormatUint(uint64(id), 10)
}

// netZoneID returns the NIC number of zone, a NIC name or number; "" is 0.
func (s *Sockets) netZoneID(zone string) (uint32, error) {
	if zone == "" {
		return 0, nil
	}
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n), nil
	}
	if s.st != nil {
		if id, err := s.st.NICID(zone); err == nil {
			return uint32(id), nil
		}
	}
	return 0, &net.AddrError{Err: "unknown zone", Addr: zone}
}
