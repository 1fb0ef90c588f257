package relay

import (
	"fmt"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// openEcho opens a connected ping socket to k.dst: an unprivileged
// ICMP socket (socket(2) with IPPROTO_ICMP, allowed by
// net.ipv4.ping_group_range), or, where that is refused and the process
// holds CAP_NET_RAW, a raw ICMP socket. A valid src is bound as the
// source address first (Config.Outbound4/6).
func openEcho(k echoKey, src netip.Addr) (*echoFlow, error) {
	var family, proto int
	var sa, local unix.Sockaddr
	if k.dst.Is4() {
		family, proto = unix.AF_INET, unix.IPPROTO_ICMP
		sa = &unix.SockaddrInet4{Addr: k.dst.As4()}
		if src.Is4() {
			local = &unix.SockaddrInet4{Addr: src.As4()}
		}
	} else {
		family, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
		sa = &unix.SockaddrInet6{Addr: k.dst.As16()}
		if src.Is6() {
			local = &unix.SockaddrInet6{Addr: src.As16()}
		}
	}
	f := &echoFlow{key: k}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		var rerr error
		fd, rerr = unix.Socket(family, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
		if rerr != nil {
			return nil, fmt.Errorf("ping socket: %w (check sysctl net.ipv4.ping_group_range); raw socket: %w", err, rerr)
		}
		f.raw = true // the caller picks f.ident (pickRawIdent)
	}
	if local != nil {
		if err := unix.Bind(fd, local); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("bind ping socket to %v: %w", src, err)
		}
	}
	if err := unix.Connect(fd, sa); err != nil {
		unix.Close(fd)
		return nil, &routeError{fmt.Errorf("connect ping socket to %v: %w", k.dst, err)}
	}
	f.sock = os.NewFile(uintptr(fd), "icmp")
	return f, nil
}
