//go:build linux

package sockapi

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Names for the constants a transcript shows, so that a failing
// comparison reads as calls rather than numbers.

func domName(d int) string {
	switch d {
	case unix.AF_INET:
		return "AF_INET"
	case unix.AF_INET6:
		return "AF_INET6"
	case unix.AF_UNSPEC:
		return "AF_UNSPEC"
	}
	return fmt.Sprint(d)
}

func typName(t int) string {
	var parts []string
	switch t &^ (unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC) {
	case unix.SOCK_STREAM:
		parts = append(parts, "SOCK_STREAM")
	case unix.SOCK_DGRAM:
		parts = append(parts, "SOCK_DGRAM")
	case unix.SOCK_RAW:
		parts = append(parts, "SOCK_RAW")
	default:
		parts = append(parts, fmt.Sprint(t&^(unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)))
	}
	if t&unix.SOCK_NONBLOCK != 0 {
		parts = append(parts, "SOCK_NONBLOCK")
	}
	if t&unix.SOCK_CLOEXEC != 0 {
		parts = append(parts, "SOCK_CLOEXEC")
	}
	return strings.Join(parts, "|")
}

var msgFlags = []struct {
	v int
	n string
}{
	{unix.MSG_OOB, "MSG_OOB"}, {unix.MSG_PEEK, "MSG_PEEK"}, {unix.MSG_DONTWAIT, "MSG_DONTWAIT"},
	{unix.MSG_WAITALL, "MSG_WAITALL"}, {unix.MSG_TRUNC, "MSG_TRUNC"}, {unix.MSG_NOSIGNAL, "MSG_NOSIGNAL"},
	{unix.MSG_MORE, "MSG_MORE"}, {unix.MSG_ERRQUEUE, "MSG_ERRQUEUE"},
}

func msgName(f int) string {
	if f == 0 {
		return "0"
	}
	var parts []string
	for _, m := range msgFlags {
		if f&m.v != 0 {
			parts = append(parts, m.n)
			f &^= m.v
		}
	}
	if f != 0 {
		parts = append(parts, fmt.Sprintf("%#x", f))
	}
	return strings.Join(parts, "|")
}

func howName(h int) string {
	switch h {
	case unix.SHUT_RD:
		return "SHUT_RD"
	case unix.SHUT_WR:
		return "SHUT_WR"
	case unix.SHUT_RDWR:
		return "SHUT_RDWR"
	}
	return fmt.Sprint(h)
}

var optNames = map[[2]int]string{
	{unix.SOL_SOCKET, unix.SO_REUSEADDR}:        "SO_REUSEADDR",
	{unix.SOL_SOCKET, unix.SO_REUSEPORT}:        "SO_REUSEPORT",
	{unix.SOL_SOCKET, unix.SO_KEEPALIVE}:        "SO_KEEPALIVE",
	{unix.SOL_SOCKET, unix.SO_RCVBUF}:           "SO_RCVBUF",
	{unix.SOL_SOCKET, unix.SO_SNDBUF}:           "SO_SNDBUF",
	{unix.SOL_SOCKET, unix.SO_TYPE}:             "SO_TYPE",
	{unix.SOL_SOCKET, unix.SO_ACCEPTCONN}:       "SO_ACCEPTCONN",
	{unix.SOL_SOCKET, unix.SO_DOMAIN}:           "SO_DOMAIN",
	{unix.SOL_SOCKET, unix.SO_PROTOCOL}:         "SO_PROTOCOL",
	{unix.SOL_SOCKET, unix.SO_ERROR}:            "SO_ERROR",
	{unix.SOL_SOCKET, unix.SO_LINGER}:           "SO_LINGER",
	{unix.SOL_SOCKET, unix.SO_BROADCAST}:        "SO_BROADCAST",
	{unix.SOL_SOCKET, unix.SO_RCVTIMEO}:         "SO_RCVTIMEO",
	{unix.SOL_SOCKET, unix.SO_RCVLOWAT}:         "SO_RCVLOWAT",
	{unix.SOL_SOCKET, unix.SO_SNDLOWAT}:         "SO_SNDLOWAT",
	{unix.SOL_SOCKET, unix.SO_SNDTIMEO}:         "SO_SNDTIMEO",
	{unix.IPPROTO_TCP, unix.TCP_NODELAY}:        "TCP_NODELAY",
	{unix.IPPROTO_TCP, unix.TCP_CORK}:           "TCP_CORK",
	{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE}:       "TCP_KEEPIDLE",
	{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL}:      "TCP_KEEPINTVL",
	{unix.IPPROTO_TCP, unix.TCP_KEEPCNT}:        "TCP_KEEPCNT",
	{unix.IPPROTO_TCP, unix.TCP_MAXSEG}:         "TCP_MAXSEG",
	{unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT}:   "TCP_USER_TIMEOUT",
	{unix.IPPROTO_IP, unix.IP_TTL}:              "IP_TTL",
	{unix.IPPROTO_IP, unix.IP_TOS}:              "IP_TOS",
	{unix.IPPROTO_IPV6, unix.IPV6_V6ONLY}:       "IPV6_V6ONLY",
	{unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS}: "IPV6_UNICAST_HOPS",
}

func optName(level, opt int) string {
	if n, ok := optNames[[2]int{level, opt}]; ok {
		return n
	}
	return fmt.Sprintf("level%d/opt%d", level, opt)
}

var pollFlags = []struct {
	v uint32
	n string
}{
	{unix.POLLIN, "IN"}, {unix.POLLPRI, "PRI"}, {unix.POLLOUT, "OUT"}, {unix.POLLERR, "ERR"},
	{unix.POLLHUP, "HUP"}, {unix.POLLNVAL, "NVAL"}, {0x40, "RDNORM"},
	{0x80, "RDBAND"}, {0x100, "WRNORM"}, {0x200, "WRBAND"},
	{unix.POLLRDHUP, "RDHUP"}, {unix.EPOLLEXCLUSIVE, "EXCLUSIVE"}, {unix.EPOLLONESHOT, "ONESHOT"}, {unix.EPOLLET, "ET"},
}

// pollName names poll and epoll event masks alike (their bits agree).
func pollName(m uint32) string {
	if m == 0 {
		return "0"
	}
	var parts []string
	for _, f := range pollFlags {
		if m&f.v != 0 {
			parts = append(parts, f.n)
			m &^= f.v
		}
	}
	if m != 0 {
		parts = append(parts, fmt.Sprintf("%#x", m))
	}
	return strings.Join(parts, "|")
}

func epollOpName(op int) string {
	switch op {
	case unix.EPOLL_CTL_ADD:
		return "ADD"
	case unix.EPOLL_CTL_MOD:
		return "MOD"
	case unix.EPOLL_CTL_DEL:
		return "DEL"
	}
	return fmt.Sprint(op)
}
